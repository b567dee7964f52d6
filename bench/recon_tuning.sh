#!/usr/bin/env bash
# How the reconstruction defaults were chosen: on the calibration loss only (no evaluation image
# is used). The CIFAR-10 ViT, W4A4, 100 calibration images of data/cifar10/calib; for each
# setting the kept block loss of every block (`vitq quantize --report`, reconstruction[].loss_final:
# mean over tokens of the squared output error against the float model, inputs from the quantized
# prefix). The last block's loss carries every earlier block's error: lower is better.
# Writes bench/results/recon-tuning.md. Usage: bench/recon_tuning.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/vitq_bin.sh
source bench/vitq_bin.sh  # V: VITQ_BIN, or build/vitq after setup and build
W=build/bench-recon-tuning
mkdir -p "$W" bench/results
SETTINGS=(
  "lr 1e-3 (AdaRound's), steps 1e-3|--reconstruct --recon-lr 0.001 --recon-step-lr 0.001"
  "lr 0.03, steps 1e-3|--reconstruct --recon-lr 0.03 --recon-step-lr 0.001"
  "lr 0.03, steps 1e-3, regularizer 0.1|--reconstruct --recon-lr 0.03 --recon-step-lr 0.001 --recon-round-weight 0.1"
  "lr 0.03, steps 1e-3, 600 steps|--reconstruct --recon-lr 0.03 --recon-step-lr 0.001 --recon-iters 600"
  "lr 0.1, steps 1e-3|--reconstruct --recon-lr 0.1 --recon-step-lr 0.001"
  "lr 0.3, steps 1e-3|--reconstruct --recon-lr 0.3 --recon-step-lr 0.001"
  "lr 0.1, steps 0.01 (default)|--reconstruct"
  "lr 0.1, steps 0.03|--reconstruct --recon-step-lr 0.03"
)
{
  echo "# Reconstruction settings on the calibration loss"
  echo
  echo "Made by \`bench/recon_tuning.sh\` ($(date -u +%Y-%m-%d), $(lscpu | sed -n 's/^Model name: *//p'), 2 threads):"
  echo "the CIFAR-10 ViT at W4A4, 100 calibration images of data/cifar10/calib, 300 steps of 8 images"
  echo "per block unless stated; each block's kept loss (mean over tokens of the squared output error"
  echo "against the float model). No evaluation image is used."
  echo
  echo "| setting | block 0 | block 1 | block 2 | block 3 | block 4 | block 5 (last) | seconds |"
  echo "|---|---|---|---|---|---|---|---|"
  i=0
  for s in "${SETTINGS[@]}"; do
    label=${s%%|*}
    flags=${s#*|}
    i=$((i + 1))
    # shellcheck disable=SC2086
    $V quantize models/vit-cifar10 --calib data/cifar10/calib --calib-size 100 --wbits 4 --abits 4 \
      --out "$W/$i.vitq" --report "$W/$i.json" -q --threads 2 $flags >/dev/null
    /usr/bin/python3 - "$W/$i.json" "$label" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rec = r.get("reconstruction", [])
cells = ["%.2f" % b["loss_final"] for b in rec] if rec else ["–"] * 6
print("| %s | %s | %.0f |" % (sys.argv[2], " | ".join(cells), r["seconds"]["total"]))
PY
  done
} >bench/results/recon-tuning.md.tmp
mv bench/results/recon-tuning.md.tmp bench/results/recon-tuning.md
cat bench/results/recon-tuning.md
