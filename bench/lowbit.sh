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
# all five components) choose the ablation's rows; CIFAR=0 leaves out the CIFAR-10 rows;
# ONLY_CACHED=1 writes the results from the rows already measured, running nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VITQ_BIN:-}" ]; then  # VITQ_BIN: an already built vitq (no setup, no build)
  bash scripts/setup.sh
  bash scripts/build.sh
fi
V=${VITQ_BIN:-./build/vitq}
W=build/bench-lowbit
mkdir -p "$W" bench/results
OUT=bench/results/lowbit.jsonl
: >"$OUT.tmp"
run() {  # name model calib n method wbits abits data [extra quantize flags...]
  local name=$1 model=$2 calib=$3 n=$4 method=$5 wb=$6 ab=$7 data=$8
  shift 8
  if [ -s "$W/$name.json" ]; then
    cat "$W/$name.json" >>"$OUT.tmp"
    return
  fi
  [ "${ONLY_CACHED:-0}" = 1 ] && return  # assemble the rows already measured, run nothing
  /usr/bin/time -f '%e %M' -o "$W/$name.time" \
    $V quantize "$model" --calib "$calib" --calib-size "$n" --method "$method" --wbits "$wb" \
    --abits "$ab" --out "$W/$name.vitq" -q --threads 2 "$@" >/dev/null
  $V eval "$W/$name.vitq" --data "$data" --reference "$model" --json -q --threads 2 |
    /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
secs, kb = open(sys.argv[6]).read().split()
print(json.dumps({"name": sys.argv[1], "method": sys.argv[2], "wbits": int(sys.argv[3]),
                  "abits": int(sys.argv[4]), "flags": sys.argv[5], "data": d["data"],
                  "images": d["images"], "top1": d["top1"], "top5": d["top5"],
                  "agreement": d["agreement"], "kl": d["kl"], "logits_sqnr_db": d["logits_sqnr_db"],
                  "engine": d["engine"], "calib_seconds": float(secs),
                  "calib_peak_rss_mb": int(kb) / 1024}))' "$name" "$method" "$wb" "$ab" "$*" "$W/$name.time" >"$W/$name.json"
  cat "$W/$name.json" >>"$OUT.tmp"
  cat "$W/$name.json" >&2
}
T=models/deit-tiny TC=data/imagenet-samples/calib TV=data/imagenet-samples/val
if [ "${1:-}" = quick ]; then
  run tiny-vitq-w6a6 $T $TC 100 vitq 6 6 $TV
  run tiny-vitq-w4a4 $T $TC 100 vitq 4 4 $TV
else
  for wa in "8 8" "6 6" "4 8" "4 4" "3 3"; do
    set -- $wa
    run "tiny-vitq-w$1a$2" $T $TC 100 vitq "$1" "$2" $TV
  done
  for b in ${ABLATION_BITS-6 4}; do
    if [ "${LIU2021:-1}" != 0 ]; then
      run "tiny-liu2021-w${b}a$b" $T $TC 100 liu2021 "$b" "$b" $TV --coarse-to-fine
    fi
    for off in ${ABLATION-uniform-attn no-gptq no-reparam no-per-channel no-asym}; do
      if [ "$off" = uniform-attn ]; then
        run "tiny-vitq-w${b}a$b-$off" $T $TC 100 vitq "$b" "$b" $TV --attn-quantizer uniform
      else
        run "tiny-vitq-w${b}a$b-$off" $T $TC 100 vitq "$b" "$b" $TV "--$off"
      fi
    done
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
/usr/bin/python3 - "$OUT" <<'PY' >bench/results/lowbit.md
import json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print("# Low-bit accuracy on the integer engine\n")
print("Made by `bench/lowbit.sh` on %s, 2 threads. Accuracy is the integer engine's (`vitq eval FILE.vitq`);" % cpu)
print("agreement, KL and SQNR are against the float model's logits on the same images. Calibration")
print("time is the whole `vitq quantize` run (load, calibration images, search, write).\n")
print("| model | method | W/A | flags | images | top-1 | top-5 | agreement | KL | SQNR (dB) | calib (s) | peak RSS (MB) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    model = "DeiT-Tiny" if r["name"].startswith("tiny") else "CIFAR-10 ViT"
    print("| %s | %s | W%dA%d | %s | %d | %.4f | %.4f | %.4f | %.4f | %.1f | %.0f | %.0f |" % (
        model, r["method"], r["wbits"], r["abits"], r["flags"] or "", r["images"], r["top1"], r["top5"],
        r["agreement"], r["kl"], r["logits_sqnr_db"], r["calib_seconds"], r["calib_peak_rss_mb"]))
PY
cat bench/results/lowbit.md
