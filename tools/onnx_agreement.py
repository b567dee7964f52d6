#!/usr/bin/env python3
"""Top-1 agreement between ONNX Runtime's predictions (tools/onnx_ort.js predict) and vitq's
(`vitq predict --json --topk 1`) on the images dump_inputs wrote, with each one's top-1 against the
labels. Prints one JSON object. Standard library only.

usage: onnx_agreement.py ITEMS.json ORT.json VITQ.json
"""
import json
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    items = json.load(open(sys.argv[1]))
    ort = json.load(open(sys.argv[2]))
    vitq = {e["image"]: e["predictions"][0]["class"] for e in json.load(open(sys.argv[3]))}
    if len(ort) != len(items):
        sys.exit(f"onnx_agreement: {len(ort)} ONNX Runtime results for {len(items)} images")
    missing = [it["image"] for it in items if it["image"] not in vitq]
    if missing:
        sys.exit(f"onnx_agreement: vitq has no result for {missing[0]}")
    n = len(items)
    agree = sum(vitq[it["image"]] == o["top1"] for it, o in zip(items, ort))
    ort_top1 = sum(it["label"] == o["top1"] for it, o in zip(items, ort))
    vitq_top1 = sum(it["label"] == vitq[it["image"]] for it in items)
    print(json.dumps({"images": n, "agreement": agree / n, "ort_top1": ort_top1 / n,
                      "vitq_top1": vitq_top1 / n}))


if __name__ == "__main__":
    main()
