"""vitq: post-training quantization and integer inference for Vision Transformers.

    import numpy as np, vitq
    report = vitq.quantize("models/deit-tiny", "data/imagenet-samples/calib", out="deit.vitq",
                           method="vitq", wbits=4, abits=4)
    model = vitq.load("deit.vitq")                  # the integer engine
    logits = model.predict(np.asarray(pil_image))   # uint8 HWC, preprocessed as the config says
    print(vitq.evaluate(model, "data/imagenet-samples/val")["top1"])

Errors: FileNotFoundError for a missing path, ValueError for bad input or options (the CLI's
messages), TypeError for an unknown option. The GIL is released while vitq computes.
"""
import os as _os

from ._vitq import Model, __version__, isa, set_threads
from ._vitq import _export, _quantize

__all__ = ["Model", "load", "quantize", "evaluate", "export", "set_threads", "isa", "__version__"]


def load(path, engine="auto", threads=0, keep_float=()):
    """Opens a model directory, .safetensors file or .vitq file.

    engine: "auto" (a .vitq file on the integer engine, a float checkpoint on the fp32 engine),
    "int8", "simulate" (the integer engine's bit-identical float simulation) or "fake-quant".
    threads: > 0 sets the worker threads of everything vitq runs, as set_threads(threads); the
    model runs on the count in force at each call.
    keep_float: name patterns of activation sites to leave float, as `vitq eval --keep-float`
    (only with engine="fake-quant" on a .vitq file; e.g. ["mlp.fc2:in", "attn.pv:a"]).
    """
    if isinstance(keep_float, str):
        keep_float = keep_float.split(",")
    return Model(_os.fspath(path), engine, threads, [str(p) for p in keep_float])


def evaluate(model, data, limit=0, batch=32, skip_bad_images=False, classes=None, quiet=False):
    """Top-1/top-5 of `model` (a Model or a path) on the ImageFolder `data`, as a dict with the
    keys `vitq eval --json` prints, plus "warnings" (one per skipped image)."""
    if not isinstance(model, Model):
        model = load(model)
    return model.evaluate(_os.fspath(data), limit, batch, skip_bad_images,
                          _os.fspath(classes) if classes is not None else "", quiet)


def quantize(model, calib, out, method="vitq", wbits=8, abits=8, calib_size=100, seed=0,
             report=None, mixed_precision=False, target_bits=0, target_size_mb=0.0,
             candidates=None, omega=None, quiet=False, **options):
    """Quantizes the float checkpoint `model` on images drawn from `calib` and writes `out`
    (.vitq, atomically); returns the report as a dict (what `vitq quantize --json` prints).

    options: the CLI's flags under Python names: per_channel, reparam, gptq, asym,
    attn_quantizer, fc2_input, image_bits, reconstruct, recon_iters, recon_batch, recon_drop,
    recon_steps, recon_round_weight, recon_lr, recon_step_lr, recon_augment, resume (vitq);
    sequential,
    ranking, bias_correction, grid, coarse_to_fine, max_rounds (liu2021 and the baselines).
    """
    return _quantize(_os.fspath(model), _os.fspath(calib), _os.fspath(out), method, wbits, abits,
                     calib_size, seed, _os.fspath(report) if report is not None else "",
                     mixed_precision, target_bits, target_size_mb, list(candidates or []),
                     omega or "", quiet, **options)


def export(model, out, format="onnx", approximate=False):
    """Writes `model` as ONNX (what `vitq export` does): format "onnx" takes a .vitq file and
    writes a Q/DQ graph (int8 weights, a QuantizeLinear/DequantizeLinear pair at every activation
    site); "onnx-float" takes any model path (a .vitq file: its dequantized weights). approximate:
    write the grids Q/DQ cannot express (a log-sqrt2 attention grid, per-row P, per-token fc2
    input) as float operations instead of refusing them. Returns what
    `vitq export --json` prints, as a dict."""
    return _export(_os.fspath(model), _os.fspath(out), format, approximate)
