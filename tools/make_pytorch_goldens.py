#!/usr/bin/env python3
"""PyTorch goldens for vitq's float engine and preprocessing, recomputed from the bundled files.

The tests compare vitq with goldens made by the data's publisher (../shared, with timm):
  data/imagenet-samples/reference-deit-tiny/inputs_8x3x224x224_f32.bin   PIL preprocessing
  data/imagenet-samples/reference-deit-tiny/logits_8x1000_f32.bin        DeiT-Tiny logits
  data/imagenet-samples/reference-deit-tiny/predictions.json             top-5 of 400 val images
  models/deit-tiny/testvec/ref_logits_1000_f32.bin                       one input's logits
  models/vit-cifar10/reference_logits.f32                                CIFAR-10 ViT logits
This script recomputes each of them with Debian's python3-torch and python3-pil (a plain
functional timm VisionTransformer, no timm needed) and prints how far the committed file is from
the recomputation, so a golden can be checked or remade here. It also writes the per-block
reference the test Golden.DeitTinyBlocksMatchPyTorch reads, so a mismatch names its block:
  tests/data/deit_tiny_testvec_blocks.json   for the testvec input: the residual stream after the
      embedding and after every block, tokens 0-7 (all 192 features), and each stage's max |x|.
Usage (from the repository root):
  /usr/bin/python3 tools/make_pytorch_goldens.py            check the goldens, write the blocks
  /usr/bin/python3 tools/make_pytorch_goldens.py --rewrite  also overwrite the goldens above
Needs python3-torch, python3-pil, python3-numpy (apt-get install). CIFAR-10 test images are read
from ../shared/data/cifar10/test (skipped with a message when absent).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "data/imagenet-samples/reference-deit-tiny")
TOKENS = 8  # tokens kept per stage in the per-block reference


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", name
        a, b = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(e["shape"]).copy())
    return out


class Vit:
    """timm's VisionTransformer forward (global_pool "token", pre-norm blocks, LayerNorm eps 1e-6)
    as functional float32 ops on the checkpoint's tensors."""

    def __init__(self, model_dir):
        self.w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.config = json.load(open(os.path.join(model_dir, "config.json")))
        self.depth = 1 + max(int(k.split(".")[1]) for k in self.w if k.startswith("blocks."))
        self.dim = self.w["cls_token"].shape[-1]
        args = self.config.get("model_args", {})
        self.heads = args["num_heads"] if "num_heads" in args else {192: 3, 384: 6, 768: 12}[self.dim]

    def embed(self, x):
        w = self.w
        p = w["patch_embed.proj.weight"]
        x = F.conv2d(x, p, w["patch_embed.proj.bias"], stride=p.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([w["cls_token"].expand(x.shape[0], -1, -1), x], dim=1)
        return x + w["pos_embed"]

    def block(self, i, x):
        w, d, h = self.w, self.dim, self.heads
        p = "blocks.%d." % i
        b, t, _ = x.shape
        y = F.layer_norm(x, (d,), w[p + "norm1.weight"], w[p + "norm1.bias"], eps=1e-6)
        qkv = F.linear(y, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"])
        qkv = qkv.reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // h) ** -0.5, dim=-1)
        o = (attn @ v).transpose(1, 2).reshape(b, t, d)
        x = x + F.linear(o, w[p + "attn.proj.weight"], w[p + "attn.proj.bias"])
        y = F.layer_norm(x, (d,), w[p + "norm2.weight"], w[p + "norm2.bias"], eps=1e-6)
        y = F.gelu(F.linear(y, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"]))
        return x + F.linear(y, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])

    def head(self, x):
        w = self.w
        x = F.layer_norm(x, (self.dim,), w["norm.weight"], w["norm.bias"], eps=1e-6)
        return F.linear(x[:, 0], w["head.weight"], w["head.bias"])

    def forward(self, x, stages=None):
        x = self.embed(x)
        if stages is not None:
            stages.append(x)
        for i in range(self.depth):
            x = self.block(i, x)
            if stages is not None:
                stages.append(x)
        return self.head(x)


def preprocess(path, cfg):
    """timm's eval transform for a PIL image: bicubic resize of the shorter side to
    floor(size / crop_pct), center crop (torchvision's rounding), /255, mean/std."""
    pc = cfg["pretrained_cfg"]
    size = pc["input_size"][-1]
    scale = int(math.floor(size / pc["crop_pct"]))
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = scale, int(scale * h / w)
    else:
        nw, nh = int(scale * w / h), scale
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = (a - np.array(pc["mean"], np.float32)) / np.array(pc["std"], np.float32)
    return torch.from_numpy(a.transpose(2, 0, 1).copy())


def read_f32(path):
    return np.fromfile(path, dtype="<f4")


def compare(name, path, mine, rewrite):
    mine = np.ascontiguousarray(mine, dtype="<f4")
    old = read_f32(path)
    if old.size != mine.size:
        print("%s: %s holds %d values, recomputed %d" % (name, path, old.size, mine.size))
    else:
        print("%s: max |committed - recomputed| = %.3g (max |value| %.3g)"
              % (name, float(np.abs(old - mine.ravel()).max()), float(np.abs(mine).max())))
    if rewrite:
        mine.tofile(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rewrite", action="store_true", help="overwrite the goldens with the recomputation")
    args = ap.parse_args()
    torch.set_grad_enabled(False)

    deit = Vit(os.path.join(ROOT, "models/deit-tiny"))
    files = json.load(open(os.path.join(REF, "inputs_files.json")))
    x8 = torch.stack([preprocess(os.path.join(ROOT, "data/imagenet-samples/val", f), deit.config)
                      for f in files])
    compare("preprocessing (8 JPEGs)", os.path.join(REF, "inputs_8x3x224x224_f32.bin"), x8.numpy(),
            args.rewrite)
    # The logits from the committed inputs, so they test the model alone.
    inputs = torch.from_numpy(read_f32(os.path.join(REF, "inputs_8x3x224x224_f32.bin")).reshape(8, 3, 224, 224))
    compare("DeiT-Tiny logits (8 inputs)", os.path.join(REF, "logits_8x1000_f32.bin"),
            deit.forward(inputs).numpy(), args.rewrite)

    tv = os.path.join(ROOT, "models/deit-tiny/testvec")
    x = torch.from_numpy(read_f32(os.path.join(tv, "input_3x224x224_f32.bin")).reshape(1, 3, 224, 224))
    stages = []
    logits = deit.forward(x, stages)
    compare("DeiT-Tiny testvec logits", os.path.join(tv, "ref_logits_1000_f32.bin"), logits.numpy(),
            args.rewrite)
    blocks = {
        "source": "tools/make_pytorch_goldens.py (PyTorch %s, float32)" % torch.__version__,
        "input": "models/deit-tiny/testvec/input_3x224x224_f32.bin",
        "tokens": TOKENS,
        "stages": [{"name": "embed" if i == 0 else "blocks.%d" % (i - 1),
                    "max_abs": float(s.abs().max()),
                    "values": [round(float(v), 9) for v in s[0, :TOKENS].reshape(-1)]}
                   for i, s in enumerate(stages)],
        "logits": [round(float(v), 9) for v in logits[0]],
    }
    out = os.path.join(ROOT, "tests/data/deit_tiny_testvec_blocks.json")
    with open(out, "w") as f:
        json.dump(blocks, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d stages x %d tokens)" % (out, len(stages), TOKENS))

    # The 400 bundled val images: top-1 and the top-5 classes per image.
    pred_path = os.path.join(REF, "predictions.json")
    pred = json.load(open(pred_path))
    same, correct = 0, 0
    for i in range(0, len(pred["predictions"]), 16):
        chunk = pred["predictions"][i:i + 16]
        xb = torch.stack([preprocess(os.path.join(ROOT, "data/imagenet-samples/val", p["file"]),
                                     deit.config) for p in chunk])
        top5 = deit.forward(xb).topk(5, dim=1).indices.tolist()
        for p, t in zip(chunk, top5):
            same += p["top5"][0] == t[0]
            correct += p["label"] == t[0]
            if args.rewrite:
                p["top5"] = t
    n = len(pred["predictions"])
    print("400 val images: recomputed top-1 %.4f (committed %.4f), same top-1 class on %d/%d"
          % (correct / n, pred["top1"], same, n))
    if args.rewrite:
        pred["top1"] = correct / n
        json.dump(pred, open(pred_path, "w"), indent=1)

    cifar_dir = os.path.join(ROOT, "../shared/data/cifar10/test/airplane")
    if not os.path.isdir(cifar_dir):
        print("CIFAR-10 ViT: skipped (%s not found)" % cifar_dir)
        return
    cifar = Vit(os.path.join(ROOT, "models/vit-cifar10"))
    xc = torch.stack([preprocess(os.path.join(cifar_dir, "%04d.png" % i), cifar.config)
                      for i in range(64)])
    compare("CIFAR-10 ViT logits (64 images)", os.path.join(ROOT, "models/vit-cifar10/reference_logits.f32"),
            cifar.forward(xc).numpy(), args.rewrite)


if __name__ == "__main__":
    sys.exit(main())
