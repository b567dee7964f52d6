#!/usr/bin/env bash
# Quick start 1: install, build, then the default job on the bundled DeiT-Tiny and images:
# float accuracy and speed, liu2021 W8A8 quantization, and the quantized model's accuracy on the
# integer engine, its agreement with the float model, size and speed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
V=./build/vitq
MODEL=models/deit-tiny
OUT=${VITQ_DEMO_OUT:-build/demo}
mkdir -p "$OUT"
echo "== float model"
$V info $MODEL
$V eval $MODEL --data data/imagenet-samples/val
echo
echo "== liu2021 W8A8 on 32 calibration images (data/imagenet-samples/calib)"
$V quantize $MODEL --calib data/imagenet-samples/calib --method liu2021 --wbits 8 --abits 8 --calib-size 32 \
  --out "$OUT/deit-tiny-w8a8.vitq" --report "$OUT/deit-tiny-w8a8.report.json"
echo
echo "== quantized model on the integer engine, against the float model"
$V eval "$OUT/deit-tiny-w8a8.vitq" --data data/imagenet-samples/val --reference $MODEL
echo
echo "== speed at batch 1: float vs integer engine"
$V bench $MODEL --seconds 3
$V bench "$OUT/deit-tiny-w8a8.vitq" --seconds 3
