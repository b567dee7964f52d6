#!/usr/bin/env python3
"""Writes the small seed corpora of the libFuzzer harnesses into fuzz/corpus/<target>/.

Run from the repository root: python3 fuzz/make_seeds.py. Standard library only; the image
seeds are copies of the small test images in tests/data.
"""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    put("fuzz_safetensors", "f32.safetensors",
        safetensors({"w": ("F32", [2, 2], f32), "b": ("F16", [2], struct.pack("<2H", 0x3C00, 0xC000))},
                    {"format": "pt"}))
    put("fuzz_safetensors", "mixed.safetensors",
        safetensors({"q": ("I8", [2, 3], bytes([1, 255, 3, 4, 5, 6])),
                     "s": ("BF16", [1], struct.pack("<H", 0x3F80)),
                     "p": ("U8", [0], b""), "i": ("I32", [1], struct.pack("<i", 7))}))

    timm = {"architecture": "vit_test", "num_classes": 10,
            "model_args": {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2,
                           "num_heads": 2, "mlp_ratio": 2.0, "qkv_bias": True},
            "pretrained_cfg": {"input_size": [3, 32, 32], "crop_pct": 0.875,
                               "interpolation": "bicubic", "crop_mode": "center",
                               "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
            "label_names": [str(i) for i in range(10)]}
    put("fuzz_timm_config", "model_args.json", json.dumps(timm))
    with open(os.path.join(ROOT, "models", "deit-tiny", "config.json"), "rb") as f:
        put("fuzz_timm_config", "deit_tiny.json", f.read())
    squash = dict(timm, pretrained_cfg=dict(timm["pretrained_cfg"], crop_mode="squash",
                                            interpolation="bilinear", crop_pct=1.0))
    put("fuzz_timm_config", "squash.json", json.dumps(squash))

    hf = {"model_type": "vit", "architectures": ["ViTForImageClassification"], "hidden_size": 32,
          "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
          "image_size": 32, "patch_size": 8, "num_channels": 3, "qkv_bias": True,
          "hidden_act": "gelu", "layer_norm_eps": 1e-12,
          "id2label": {"0": "a", "1": "b", "2": "c"}, "num_labels": 3}
    pre_shortest = {"do_resize": True, "size": {"shortest_edge": 36}, "do_center_crop": True,
                    "crop_size": {"height": 32, "width": 32}, "resample": 3,
                    "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
                    "image_std": [0.5, 0.5, 0.5], "rescale_factor": 1 / 255}
    pre_hw = {"do_resize": True, "size": {"height": 32, "width": 32}, "resample": 2,
              "image_mean": 0.5, "image_std": 0.5}
    deit = dict(hf, model_type="deit", architectures=["DeiTForImageClassificationWithTeacher"])
    put("fuzz_hf_config", "vit_no_pre.json", json.dumps(hf))
    put("fuzz_hf_config", "vit_pre.json", json.dumps(hf) + "\0" + json.dumps(pre_hw))
    put("fuzz_hf_config", "deit_pre.json", json.dumps(deit) + "\0" + json.dumps(pre_shortest))
    put("fuzz_preprocessor_config", "shortest_edge.json", json.dumps(pre_shortest))
    put("fuzz_preprocessor_config", "height_width.json", json.dumps(pre_hw))
    put("fuzz_preprocessor_config", "int_size.json",
        json.dumps({"size": 32, "do_normalize": False, "resample": 0}))

    model = {"architecture": "vit_test", "img_size": 32, "patch_size": 8, "in_chans": 3,
             "embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_hidden": 64, "num_classes": 3,
             "qkv_bias": True, "dist_token": False, "head_dist": False, "ln_eps": 1e-6,
             "layout": "timm",
             "preprocess": {"crop_height": 32, "crop_width": 32, "resize_shorter": 36,
                            "resize_height": 0, "resize_width": 0, "interpolation": "bicubic",
                            "crop_offset_round": True, "mean": [0.5, 0.5, 0.5],
                            "std": [0.25, 0.25, 0.25]},
             "class_names": ["a", "b", "c"]}
    site = {"bits": 8, "symmetric": True, "signed": True, "granularity": "per_tensor",
            "axis": 0, "scale": [0.01], "zero_point": [0]}
    plan = {"format": "vitq.plan", "version": 1, "method": "minmax", "options": {"wbits": 8},
            "provenance": {"seed": 0, "calib_dir": "calib", "calib_size": 4,
                           "calib_hash": "0123456789abcdef", "tool_version": "0.1.0",
                           "architecture": "vit_test"},
            "sites": {"blocks.0.attn.qkv:w": site, "blocks.0.attn.qkv:in": site,
                      "head:w": dict(site, granularity="per_channel", scale=[0.1, 0.2, 0.3],
                                     zero_point=[0, 0, 0])},
            "biases": {}, "report": {"ops": [{"name": "x", "seconds": 1.0}]}}
    put("fuzz_vitq_metadata", "model_and_plan.json", json.dumps(model) + "\0" + json.dumps(plan))

    for target, names in [("fuzz_jpeg", ["color.jpg", "gray.jpg", "cmyk.jpg"]),
                          ("fuzz_png", ["palette.png", "gray.png", "gray_alpha.png", "base.png",
                                        "rgba.png"])]:
        os.makedirs(os.path.join(OUT, target), exist_ok=True)
        for name in names:
            shutil.copy(os.path.join(ROOT, "tests", "data", name), os.path.join(OUT, target, name))

    # Inputs the harnesses once failed on (tests/data/fuzz/<format>-<what>.<ext>) stay seeds, so
    # every fuzz run, the CI smoke run included, replays them under the sanitizers.
    regress = os.path.join(ROOT, "tests", "data", "fuzz")
    for name in sorted(os.listdir(regress)) if os.path.isdir(regress) else []:
        target = "fuzz_" + name.split("-")[0]
        os.makedirs(os.path.join(OUT, target), exist_ok=True)
        shutil.copy(os.path.join(regress, name), os.path.join(OUT, target, "regression-" + name))

    put("fuzz_classes", "imagenet_style.txt",
        "\x01n01440764 tench, Tinca tinca\nn01443537 goldfish\n\nn01484850 great white shark\n")
    put("fuzz_classes", "folders.txt", "\x00airplane\nautomobile\nbird\ncat\n")


if __name__ == "__main__":
    main()
