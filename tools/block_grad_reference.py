#!/usr/bin/env python3
"""PyTorch autograd reference for vitq's block backward pass (src/search/block_train.cc).

Block 0 of the bundled DeiT-Tiny (models/deit-tiny/model.safetensors) in float64, with AdaRound's
soft weights W = s * clamp(floor(W0 / s) + h(v), -8, 7) on all four linear layers (s = per-row
max|W0| / 7, v a fixed formula), activation quantizers off, loss = sum(out * g) for fixed x and g.
Writes every 211th value of out, d loss / d x and d loss / d v of each layer, and their norms, to
tests/data/block0_grad_reference.json; the test BlockTrain.MatchesPyTorchAutogradOnDeitTinyBlock0
recomputes them in C++. Needs Debian's python3-torch and python3-numpy:
  /usr/bin/python3 tools/block_grad_reference.py
"""
import json
import math
import os
import struct

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRIDE = 211


def read_safetensors(path, names):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name in names:
            e = header[name]
            assert e["dtype"] == "F32", name
            a, b = e["data_offsets"]
            f.seek(base + a)
            out[name] = np.frombuffer(f.read(b - a), dtype="<f4").reshape(e["shape"]).astype(np.float64)
        return out


def rect_sigmoid(v):
    return torch.clamp(torch.sigmoid(v) * 1.2 - 0.1, 0.0, 1.0)


def main():
    p = "blocks.0."
    names = [p + n for n in ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
                             "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
                             "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")]
    w = read_safetensors(os.path.join(ROOT, "models/deit-tiny/model.safetensors"), names)
    t, d, heads = 197, 192, 3
    hd = d // heads
    idx = np.arange(t * d, dtype=np.float64)
    x = torch.tensor(2.0 * np.sin(0.007 * idx + 0.3)).reshape(1, t, d).requires_grad_(True)
    g = torch.tensor(np.cos(0.0013 * idx + 0.1)).reshape(1, t, d)
    layers = {}
    for li, n in enumerate(("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")):
        w0 = torch.tensor(w[p + n + ".weight"])
        s = w0.abs().amax(dim=1, keepdim=True) / 7.0
        fl = torch.floor(w0 / s)
        k = torch.arange(w0.numel(), dtype=torch.float64).reshape(w0.shape)
        v = (2.0 * torch.sin(0.37 * k + 1.0 + li)).requires_grad_(True)
        layers[n] = (s, fl, v, torch.tensor(w[p + n + ".bias"]))

    def linear(n, a):
        s, fl, v, b = layers[n]
        wq = s * torch.clamp(fl + rect_sigmoid(v), -8.0, 7.0)
        return a @ wq.T + b

    def ln(a, gname):
        return torch.nn.functional.layer_norm(a, (d,), torch.tensor(w[p + gname + ".weight"]),
                                              torch.tensor(w[p + gname + ".bias"]), eps=1e-6)

    qkv = linear("attn.qkv", ln(x, "norm1")).reshape(1, t, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k_, v_ = qkv[0], qkv[1], qkv[2]
    attn = torch.softmax(q @ k_.transpose(-2, -1) / math.sqrt(hd), dim=-1)
    o = (attn @ v_).transpose(1, 2).reshape(1, t, d)
    y1 = x + linear("attn.proj", o)
    h = linear("mlp.fc1", ln(y1, "norm2"))
    out = y1 + linear("mlp.fc2", torch.nn.functional.gelu(h))
    (out * g).sum().backward()

    def sample(a):
        a = a.detach().reshape(-1).numpy()
        return {"values": [float(f) for f in a[::STRIDE]], "norm": float(np.linalg.norm(a))}

    ref = {"made_by": "tools/block_grad_reference.py", "torch": torch.__version__,
           "stride": STRIDE, "out": sample(out), "dx": sample(x.grad)}
    for n, (s, fl, v, b) in layers.items():
        ref["dv." + n] = sample(v.grad)
    path = os.path.join(ROOT, "tests/data/block0_grad_reference.json")
    with open(path, "w") as f:
        json.dump(ref, f, indent=0)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
