"""vitq.export against `vitq export`: the same file bytes and figures, the same errors."""
import os

import pytest

import vitq

from paths import ROOT, cli

CIFAR = os.path.join(ROOT, "models", "vit-cifar10")
CIFAR_CALIB = os.path.join(ROOT, "data", "cifar10", "calib")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("e") / "cifar-w8a8.vitq")
    vitq.quantize(CIFAR, CIFAR_CALIB, out, method="minmax", calib_size=8, quiet=True)
    return out


def test_export_writes_what_the_cli_writes(quantized, tmp_path):
    info = vitq.export(quantized, tmp_path / "q.onnx")
    assert info["format"] == "onnx" and info["opset"] == 17
    # Six blocks: 8 activation sites each, plus the patch embedding's and the head's inputs.
    assert info["qdq_sites"] == 6 * 8 + 2 and info["int8_weights"] == 6 * 4 + 2
    assert info["bytes"] == os.path.getsize(tmp_path / "q.onnx")
    r = cli("export", quantized, "--out", str(tmp_path / "cli.onnx"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "q.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    f = vitq.export(CIFAR, tmp_path / "f.onnx", format="onnx-float")
    assert f["qdq_sites"] == 0 and f["bytes"] > info["bytes"]


def test_export_errors_match_the_cli(quantized, tmp_path):
    with pytest.raises(ValueError, match="onnx-float"):
        vitq.export(CIFAR, tmp_path / "x.onnx")
    r = cli("export", CIFAR, "--out", str(tmp_path / "x.onnx"))
    assert r.returncode == 3 and "onnx-float" in r.stderr
    with pytest.raises(ValueError, match="format"):
        vitq.export(quantized, tmp_path / "x.onnx", format="tflite")
    with pytest.raises(FileNotFoundError):
        vitq.export(tmp_path / "missing.vitq", tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError):
        vitq.export(quantized, tmp_path / "no" / "x.onnx")
    broken = tmp_path / "broken.vitq"
    broken.write_bytes(open(quantized, "rb").read()[:4096])
    with pytest.raises(ValueError, match="broken.vitq"):
        vitq.export(broken, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
