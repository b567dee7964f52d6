#!/usr/bin/env bash
# Low-bit accuracy of the vitq method on the integer engine (issue 18's targets), with the
# ablation of its components, beside liu2021 at the same settings:
#   DeiT-Tiny, 100 calibration images of data/imagenet-samples/calib, evaluated on the 400 val
#   images: vitq at W8A8, W6A6, W4A8, W4A4 (and W3A3, reported), liu2021 at W6A6 and W4A4; the
#   ablation (each component off) at W6A6 and W4A4;
#   the CIFAR-10 ViT, 500 calibration images of data/cifar10/calib, evaluated on the 10,000 test
#   images of ../shared/data/cifar10/test (skipped with a message when absent): vitq W6A6, W4A4.
# Every accuracy is the integer engine's (`vitq eval FILE.vitq`), with top-1 agreement, KL and
# logits SQNR against the float model. Calibration time and peak RSS from /usr/bin/time.
# Writes bench/results/lowbit.jsonl and bench/results/lowbit.md. Usage: bench/lowbit.sh [quick]
# (quick: DeiT-Tiny W6A6 and W4A4 only, no ablation, no liu2021, no CIFAR). Each row is kept in
# build/bench-lowbit/NAME.json and not rerun while it exists (delete the folder for a fresh run);
# LIU2021=0 leaves out the (slow) liu2021 rows; ABLATION_BITS (default "6 4") and ABLATION (default
# all seven components) choose the ablation's rows, or ABLATION_ROWS lists them as BITS:COMPONENT
# pairs; CIFAR=0 leaves out the CIFAR-10 rows;
# ONLY_CACHED=1 writes the results from the rows already measured, running nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results/lowbit.jsonl
# shellcheck source=bench/accuracy_rows.sh
source bench/accuracy_rows.sh  # builds unless VITQ_BIN is set; defines V, W, T, TC, TV, run, table
mode=${1:-}
if [ "$mode" = quick ]; then
  run tiny-vitq-w6a6 $T $TC 100 vitq 6 6 $TV
  run tiny-vitq-w4a4 $T $TC 100 vitq 4 4 $TV
else
  for wa in "8 8" "6 6" "4 8" "4 4" "3 3"; do
    set -- $wa
    run "tiny-vitq-w$1a$2" $T $TC 100 vitq "$1" "$2" $TV
  done
  if [ "${LIU2021:-1}" != 0 ]; then
    for b in ${ABLATION_BITS-6 4}; do
      run "tiny-liu2021-w${b}a$b" $T $TC 100 liu2021 "$b" "$b" $TV --coarse-to-fine
    done
  fi
  # The ablation's rows: every component of ABLATION at every width of ABLATION_BITS, or, when
  # ABLATION_ROWS is set, exactly its BITS:COMPONENT pairs (e.g. "8:no-asym 4:uniform-attn").
  pairs=${ABLATION_ROWS:-}
  if [ -z "$pairs" ]; then
    for b in ${ABLATION_BITS-6 4}; do
      for off in ${ABLATION-uniform-attn tensor-log-attn tensor-fc2 image-abits no-gptq no-reparam no-per-channel no-asym}; do
        pairs="$pairs $b:$off"
      done
    done
  fi
  for pair in $pairs; do
    b=${pair%%:*} off=${pair#*:}
    if [ "$off" = uniform-attn ]; then
      run "tiny-vitq-w${b}a$b-$off" $T $TC 100 vitq "$b" "$b" $TV --attn-quantizer uniform
    elif [ "$off" = tensor-log-attn ]; then  # P on one log-sqrt2 grid per tensor, not per row
      run "tiny-vitq-w${b}a$b-$off" $T $TC 100 vitq "$b" "$b" $TV --attn-quantizer log-sqrt2
    elif [ "$off" = tensor-fc2 ]; then  # fc2's input on one searched grid, not per token
      run "tiny-vitq-w${b}a$b-$off" $T $TC 100 vitq "$b" "$b" $TV --fc2-input tensor
    elif [ "$off" = token-fc2 ]; then  # fc2's input per token at 8 bits too (not the default)
      run "tiny-vitq-w${b}a$b-$off" $T $TC 100 vitq "$b" "$b" $TV --fc2-input token
    elif [ "$off" = image-abits ]; then  # the image at the activation bits, not 8
      run "tiny-vitq-w${b}a$b-$off" $T $TC 100 vitq "$b" "$b" $TV --image-bits 0
    else
      run "tiny-vitq-w${b}a$b-$off" $T $TC 100 vitq "$b" "$b" $TV "--$off"
    fi
  done
  CT=../shared/data/cifar10/test
  if [ "${CIFAR:-1}" = 0 ]; then
    echo "bench/lowbit.sh: CIFAR=0, CIFAR-10 rows left out" >&2
  elif [ -d "$CT" ]; then
    for b in 6 4; do
      run "cifar-vitq-w${b}a$b" models/vit-cifar10 data/cifar10/calib 500 vitq "$b" "$b" "$CT"
    done
  else
    echo "bench/lowbit.sh: $CT absent, CIFAR-10 rows skipped" >&2
  fi
fi
mv "$OUT.tmp" "$OUT"
# The command line as run, with the variables that chose the rows.
cmd=$(command_line "bench/lowbit.sh${mode:+ $mode}" CIFAR ABLATION_ROWS ABLATION ABLATION_BITS LIU2021)
table "Low-bit accuracy on the integer engine" "$cmd" "$OUT" >bench/results/lowbit.md
cat bench/results/lowbit.md
