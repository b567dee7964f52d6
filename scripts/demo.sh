#!/usr/bin/env bash
# Quick start 1: install, build, then the default job on the bundled DeiT-Tiny and images:
# the float model's accuracy and speed; the paper's method (liu2021) and vitq's own method side
# by side at W8A8 and W4A4 (accuracy on the integer engine, agreement with the float model, KL,
# size, calibration time); then vitq W8A8 and W4A4 files written, evaluated and timed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
V=./build/vitq
MODEL=models/deit-tiny
CALIB=data/imagenet-samples/calib
VAL=data/imagenet-samples/val
OUT=${VITQ_DEMO_OUT:-build/demo}
mkdir -p "$OUT"
echo "== float model"
$V info $MODEL
$V eval $MODEL --data $VAL
echo
echo "== liu2021 (the paper) and vitq (this project's method), 32 calibration images, every row on the integer engine"
$V compare $MODEL --calib $CALIB --data $VAL --calib-size 32 --methods liu2021+coarse,vitq --bits 8,4
echo
for b in 8 4; do
  echo "== vitq W${b}A${b} on 100 calibration images, written to $OUT/deit-tiny-w${b}a${b}.vitq"
  $V quantize $MODEL --calib $CALIB --wbits $b --abits $b \
    --out "$OUT/deit-tiny-w${b}a${b}.vitq" --report "$OUT/deit-tiny-w${b}a${b}.report.json"
  $V eval "$OUT/deit-tiny-w${b}a${b}.vitq" --data $VAL --reference $MODEL
  echo
done
echo "== speed at batch 1: float engine, then the integer engine at W8A8 and W4A4"
$V bench $MODEL --seconds 3
$V bench "$OUT/deit-tiny-w8a8.vitq" --seconds 3
$V bench "$OUT/deit-tiny-w4a4.vitq" --seconds 3
