#!/usr/bin/env bash
# Block reconstruction (`vitq quantize --method vitq --reconstruct`, issue 13) on the integer
# engine, beside vitq's closed form (the same rows as bench/lowbit.sh, shared through its cache):
#   DeiT-Tiny, 100 calibration images of data/imagenet-samples/calib, evaluated on the 400 val
#   images: W4A4, W6A6, W3A3 with the default settings;
#   accuracy against optimizer steps per block at W4A4 (ITERS, default "100"; 300 is the
#   default row); W4A8 and W8A8 with 100 steps (issue 18's 4-bit-weight row within its 5
#   minutes, and what reconstruction adds at 8 bits), W4A8 with the default 300; W4A4 with one augmented copy of each
#   calibration image (--recon-augment 1);
#   the CIFAR-10 ViT, 500 calibration images of data/cifar10/calib, on its 10,000 test images of
#   ../shared/data/cifar10/test (skipped with a message when absent): W4A4, W6A6, W3A3, W4A4 with
#   AdaRound's step size 1e-3 for the rounding instead of the default 0.1, and the ablation at
#   W4A4 (on this model, where a row takes minutes): AdaRound alone (--recon-no-steps
#   --recon-drop 0), + LSQ steps (--recon-drop 0), + QDrop (the default row), + augmentation
#   (--recon-augment 1).
# Writes bench/results/reconstruct.jsonl and bench/results/reconstruct.md. Rows are cached in
# build/bench-lowbit/NAME.json like bench/lowbit.sh's (delete a row's file to rerun it);
# ABLATION=0, ITERS="" and CIFAR=0 leave sections out; ONLY_CACHED=1 runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results/reconstruct.jsonl
# shellcheck source=bench/accuracy_rows.sh
source bench/accuracy_rows.sh  # builds unless VITQ_BIN is set; defines V, W, T, TC, TV, run, table
for b in 4 6 3; do
  run "tiny-vitq-w${b}a$b" $T $TC 100 vitq "$b" "$b" $TV
  run "tiny-rec-w${b}a$b" $T $TC 100 vitq "$b" "$b" $TV --reconstruct
done
for it in ${ITERS-100}; do
  run "tiny-rec-w4a4-it$it" $T $TC 100 vitq 4 4 $TV --reconstruct --recon-iters "$it"
done
run tiny-vitq-w4a8 $T $TC 100 vitq 4 8 $TV
run tiny-rec-w4a8-it100 $T $TC 100 vitq 4 8 $TV --reconstruct --recon-iters 100
run tiny-rec-w4a8 $T $TC 100 vitq 4 8 $TV --reconstruct
run tiny-vitq-w8a8 $T $TC 100 vitq 8 8 $TV
run tiny-rec-w8a8-it100 $T $TC 100 vitq 8 8 $TV --reconstruct --recon-iters 100
run tiny-rec-w4a4-aug1 $T $TC 100 vitq 4 4 $TV --reconstruct --recon-augment 1
CT=../shared/data/cifar10/test
if [ "${CIFAR:-1}" = 0 ]; then
  echo "bench/reconstruct.sh: CIFAR=0, CIFAR-10 rows left out" >&2
elif [ -d "$CT" ]; then
  for b in 4 6 3; do
    run "cifar-vitq-w${b}a$b" models/vit-cifar10 data/cifar10/calib 500 vitq "$b" "$b" "$CT"
    run "cifar-rec-w${b}a$b" models/vit-cifar10 data/cifar10/calib 500 vitq "$b" "$b" "$CT" \
      --reconstruct
  done
  # AdaRound's own step size (1e-3) for the rounding against the default 0.1.
  run cifar-rec-w4a4-lr0.001 models/vit-cifar10 data/cifar10/calib 500 vitq 4 4 "$CT" \
    --reconstruct --recon-lr 0.001
  if [ "${ABLATION:-1}" != 0 ]; then
    C=(models/vit-cifar10 data/cifar10/calib 500 vitq 4 4 "$CT" --reconstruct)
    run cifar-rec-w4a4-adaround "${C[@]}" --recon-no-steps --recon-drop 0
    run cifar-rec-w4a4-lsq "${C[@]}" --recon-drop 0
    run cifar-rec-w4a4-aug1 "${C[@]}" --recon-augment 1
  fi
else
  echo "bench/reconstruct.sh: $CT absent, CIFAR-10 rows skipped" >&2
fi
mv "$OUT.tmp" "$OUT"
# The command line as run, with the variables that chose the rows.
cmd=$(command_line bench/reconstruct.sh CIFAR ABLATION ITERS)
table "Block reconstruction on the integer engine" "$cmd" "$OUT" >bench/results/reconstruct.md
cat bench/results/reconstruct.md
