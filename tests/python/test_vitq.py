"""The Python module vitq against the CLI, the committed PyTorch goldens and PyTorch itself.

Run by ctest (python_tests) on the build tree's package (PYTHONPATH=build/python); VITQ_BINARY
names the CLI built beside it.
"""
import json
import os
import sys
import threading
import time

import numpy as np
import pytest

import vitq

from paths import CALIB, MODEL, REF, ROOT, VAL, cli

LOGITS_BOUND = 1e-4  # as tests/golden_test.cc: float32 engines summing in different orders


def reference_inputs():
    x = np.fromfile(os.path.join(REF, "inputs_8x3x224x224_f32.bin"), dtype="<f4")
    logits = np.fromfile(os.path.join(REF, "logits_8x1000_f32.bin"), dtype="<f4")
    files = json.load(open(os.path.join(REF, "inputs_files.json")))
    return x.reshape(8, 3, 224, 224), logits.reshape(8, 1000), files


@pytest.fixture(scope="module")
def float_model():
    return vitq.load(MODEL)


@pytest.fixture(scope="module")
def w8a8(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("q") / "deit-w8a8.vitq")
    report = vitq.quantize(MODEL, CALIB, out, method="minmax", wbits=8, abits=8, calib_size=4,
                           quiet=True)
    return out, report


def test_module_describes_itself(float_model):
    assert vitq.__version__ == cli("--version").stdout.split()[-1]
    assert vitq.isa()
    assert float_model.engine == "fp32"
    assert float_model.input_shape == (3, 224, 224)
    assert float_model.num_classes == 1000
    assert float_model.class_names[0] == "tench"
    info = float_model.info()
    assert info == json.loads(cli("info", MODEL, "--json").stdout)


def test_float_logits_match_the_pytorch_goldens(float_model):
    x, want, _ = reference_inputs()
    got = float_model.predict(x, batch=3)  # batches of 3, 3 and 2
    assert got.dtype == np.float32 and got.shape == (8, 1000)
    assert np.abs(got - want).max() <= LOGITS_BOUND
    one = float_model.predict(x[5])  # [3, H, W]: one image
    assert one.shape == (1, 1000)
    np.testing.assert_array_equal(one[0], float_model.predict(x[5:6])[0])


def test_uint8_images_are_preprocessed_like_the_cli(float_model):
    pil = pytest.importorskip("PIL.Image", reason="python3-pil is not installed")
    x, want, files = reference_inputs()
    images = [np.asarray(pil.open(os.path.join(VAL, f)).convert("RGB")) for f in files]
    got = float_model.predict(images)  # a list of HWC images of different sizes
    assert np.abs(got - want).max() <= LOGITS_BOUND
    # The same decoded pixels as a grey image and as RGBA: PIL's convert("RGB") rules.
    grey = np.asarray(pil.open(os.path.join(VAL, files[0])).convert("L"))
    np.testing.assert_array_equal(
        float_model.predict(grey[:, :, None]),
        float_model.predict(np.repeat(grey[:, :, None], 3, axis=2)))
    rgba = np.concatenate([images[1], np.full(images[1].shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(float_model.predict(rgba), float_model.predict(images[1]))
    # And what the CLI prints for the files.
    out = json.loads(cli("predict", MODEL, *[os.path.join(VAL, f) for f in files], "--json",
                         "--topk", "1", "--quiet").stdout)
    assert [r["predictions"][0]["class"] for r in out] == list(got.argmax(axis=1))


def test_evaluate_gives_the_cli_figures(float_model):
    r = vitq.evaluate(float_model, VAL, limit=24, batch=8, quiet=True)
    c = json.loads(cli("eval", MODEL, "--data", VAL, "--limit", "24", "--batch", "8", "--json",
                       "--quiet").stdout)
    assert set(r) == set(c) | {"warnings"}
    for key in set(c) - {"seconds", "images_per_second", "threads"}:
        assert r[key] == c[key], key
    assert r["warnings"] == []
    assert vitq.evaluate(MODEL, VAL, limit=8, quiet=True)["images"] == 8  # a path works too


def test_quantize_writes_a_file_the_integer_engine_runs(w8a8, float_model):
    path, report = w8a8
    assert report["out"] == path and report["method"] == "minmax"
    assert report["wbits"] == 8 and report["calib_images"] == 4
    assert len(report["ops"]) == 74
    # The same job through the CLI writes the same bytes.
    cli_out = path + ".cli.vitq"
    r = cli("quantize", MODEL, "--calib", CALIB, "--method", "minmax", "--calib-size", "4",
            "--out", cli_out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert open(path, "rb").read() == open(cli_out, "rb").read()
    q = vitq.load(path)
    assert q.engine == "int8"
    assert q.info()["quantized_bytes"] > 0 and q.info()["integer_engine"] is True
    x, _, _ = reference_inputs()
    logits = q.predict(x)
    # The engine's float simulation is bit-identical to it.
    np.testing.assert_array_equal(logits, vitq.load(path, engine="simulate").predict(x))
    agree = (logits.argmax(1) == float_model.predict(x).argmax(1)).mean()
    assert agree >= 0.75


def test_keep_float_leaves_activation_sites_float_on_the_fake_quant_path(w8a8, float_model):
    path, _ = w8a8
    x, _, _ = reference_inputs()
    ref = float_model.predict(x)
    fq = vitq.load(path, engine="fake-quant").predict(x)

    def sqnr(y):
        return 10 * np.log10((ref ** 2).sum() / ((ref - y) ** 2).sum())

    # One group float changes the logits; every activation float brings them closer to the float
    # model's (only the weights stay quantized). A comma-separated string works as the CLI's.
    fc2 = vitq.load(path, engine="fake-quant", keep_float=["mlp.fc2:in"]).predict(x)
    assert not np.array_equal(fc2, fq)
    np.testing.assert_array_equal(
        fc2, vitq.load(path, engine="fake-quant", keep_float="mlp.fc2:in").predict(x))
    every = vitq.load(path, engine="fake-quant", keep_float=[":in", ":a", ":b"]).predict(x)
    assert sqnr(every) > sqnr(fq) + 3
    # The CLI's usage errors: another path, or a pattern that matches no activation site.
    with pytest.raises(ValueError, match="fake-quant"):
        vitq.load(path, keep_float=["mlp.fc2:in"])
    with pytest.raises(ValueError, match="nothing:here"):
        vitq.load(path, engine="fake-quant", keep_float=["nothing:here"])


def test_the_gil_is_released_while_vitq_computes(float_model):
    x = np.repeat(reference_inputs()[0], 4, axis=0)  # 32 images: about a second
    counted, marks, done = [0], {}, threading.Event()

    def run():
        marks["before"] = counted[0]
        float_model.predict(x)
        marks["after"] = counted[0]
        done.set()

    # The loop's rate alone: iterations in 50 ms.
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.05:
        n += 1
    t = threading.Thread(target=run)
    t.start()
    while not done.is_set():
        counted[0] += 1
    t.join()
    # Held for the call, the GIL would let this thread run at most one switch interval (5 ms)
    # between the worker's two reads; released, it counts through the whole second of compute.
    assert marks["after"] - marks["before"] > 2 * n


def test_bad_input_raises_clear_errors(tmp_path, float_model, w8a8):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError) as e:
        vitq.load(missing)
    cli_message = cli("info", missing).stderr.strip()
    assert cli_message == "vitq: error: " + str(e.value)
    with pytest.raises(ValueError, match=r"found float64 \[1, 3, 224, 224\]"):
        float_model.predict(np.zeros((1, 3, 224, 224)))
    with pytest.raises(ValueError, match=r"float32 \[N, 3, 224, 224\].*found float32 \[2, 3, 32, 32\]"):
        float_model.predict(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"found uint8 \[4\]"):
        float_model.predict([np.zeros(4, np.uint8)])
    with pytest.raises(ValueError, match="found 2 in \\[10, 10, 2\\]"):
        float_model.predict(np.zeros((10, 10, 2), np.uint8))
    bad = np.zeros((2, 3, 224, 224), np.float32)
    bad[1, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN in image 1"):
        float_model.predict(bad)
    with pytest.raises(ValueError, match="engine='int8'"):
        vitq.load(MODEL, engine="int8")
    # A truncated .vitq names the file, as the CLI does.
    path, _ = w8a8
    cut = str(tmp_path / "cut.vitq")
    with open(path, "rb") as f, open(cut, "wb") as g:
        g.write(f.read()[: os.path.getsize(path) // 2])
    with pytest.raises(ValueError) as e:
        vitq.load(cut)
    assert "cut.vitq" in str(e.value)
    assert cli("info", cut).stderr.strip() == "vitq: error: " + str(e.value)
    # Options: unknown, of another method, out of range; nothing is written.
    out = str(tmp_path / "never.vitq")
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        vitq.quantize(MODEL, CALIB, out, bogus=1)
    with pytest.raises(ValueError, match="gptq applies to method='vitq' only"):
        vitq.quantize(MODEL, CALIB, out, method="liu2021", gptq=False)
    with pytest.raises(ValueError, match="recon_iters configures reconstruct=True"):
        vitq.quantize(MODEL, CALIB, out, recon_iters=5)
    with pytest.raises(ValueError, match="wbits"):
        vitq.quantize(MODEL, CALIB, out, wbits=9)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vitq.quantize(MODEL, CALIB, str(tmp_path / "no-dir" / "x.vitq"), calib_size=1)
    # A calibration folder with an unreadable image: the error names it, no output appears.
    calib = tmp_path / "calib" / "n01440764"
    calib.mkdir(parents=True)
    (calib / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(ValueError, match="broken.JPEG"):
        vitq.quantize(MODEL, str(tmp_path / "calib"), out, method="minmax", calib_size=1,
                      quiet=True)
    assert not os.path.exists(out)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("never")]


def test_float_logits_match_pytorch_in_the_same_process(float_model):
    torch = pytest.importorskip(
        "torch", reason="python3-torch is not installed (apt-get install python3-torch)")
    pytest.importorskip("PIL", reason="python3-pil is not installed")
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        from make_pytorch_goldens import Vit
    finally:
        sys.path.pop(0)
    x, _, _ = reference_inputs()
    with torch.no_grad():
        want = Vit(MODEL).forward(torch.from_numpy(x.copy())).numpy()
    got = float_model.predict(x)
    assert np.abs(got - want).max() <= LOGITS_BOUND
    assert (got.argmax(1) == want.argmax(1)).all()
