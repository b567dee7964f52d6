#!/usr/bin/env python3
"""Writes tests/data/: small images in every mode vitq decodes, and PIL's results for them.

Run with Debian's python3-pil (apt-get install python3-pil): /usr/bin/python3 tools/make_test_goldens.py
Each image X gets X.rgb: the raw bytes of PIL's Image.open(X).convert("RGB") (what timm feeds its
transform), and resize_<filter>_<w>x<h>.rgb holds PIL's resize of base.png with that filter.
"""
import os
import random

from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
os.makedirs(OUT, exist_ok=True)
rng = random.Random(1234)
W, H = 53, 37


def noise(mode, channels):
    data = bytes(rng.randrange(256) for _ in range(W * H * channels))
    return Image.frombytes(mode, (W, H), data)


def save(img, name, **kw):
    path = os.path.join(OUT, name)
    img.save(path, **kw)
    with open(path + ".rgb", "wb") as f:
        f.write(Image.open(path).convert("RGB").tobytes())


base = noise("RGB", 3)
save(base, "base.png")
save(noise("L", 1), "gray.png")
save(noise("LA", 2), "gray_alpha.png")
save(noise("RGBA", 4), "rgba.png")
pal = noise("RGB", 3).quantize(colors=16)
pal.info["transparency"] = 3
save(pal, "palette.png", transparency=3)
save(base, "color.jpg", quality=90)
save(noise("L", 1), "gray.jpg", quality=90)
save(noise("CMYK", 4), "cmyk.jpg", quality=90)

filters = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
for fname, f in filters.items():
    for (w, h) in [(20, 14), (80, 61), (53, 20), (31, 37)]:
        out = base.resize((w, h), f)
        with open(os.path.join(OUT, f"resize_{fname}_{w}x{h}.rgb"), "wb") as fh:
            fh.write(out.tobytes())
print("wrote", OUT)
