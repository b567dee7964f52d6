#!/usr/bin/env bash
# Speed and memory of vitq's integer engine (W8A8) beside its fp32 engine and ONNX Runtime's int8
# CPU run (../shared/peers), in one run.
# usage: bench/int8.sh [ARCH...]   (default: deit_tiny/small/base_patch16_224)
# Writes bench/results/int8.jsonl (one JSON line per engine/arch/batch), bench/results/int8.md
# (the table, with the ratios) and bench/results/int8-memory.json (peak RSS of `vitq bench` on
# the fp32 checkpoint and on the W8A8 file, per arch, batch 1).
# Models: random-weight checkpoints from `vitq init`, quantized with minmax W8A8 on 32 images of
# data/imagenet-samples/calib. 2 threads; batch 1 and 32; median call time; every cell measured
# REPEATS times (VITQ_BENCH_REPEATS, default 3), engines interleaved, the table shows the median.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHS=("$@")
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(deit_tiny_patch16_224 deit_small_patch16_224 deit_base_patch16_224)
PEERS=../shared/peers/run.sh
CACHE=${VITQ_BENCH_CACHE:-$HOME/.cache/vitq-bench}
OUT=bench/results/int8.jsonl
MEM=bench/results/int8-memory.json
THREADS=2
REPEATS=${VITQ_BENCH_REPEATS:-3}  # interleaved repeats per cell; the table takes their median
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p "$CACHE" bench/results
: >"$OUT.tmp"
echo "[" >"$MEM.tmp"
tag() {  # adds engine and arch fields to a `vitq bench --json` object
  /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); d["engine"]=sys.argv[1]; d["arch"]=d.pop("architecture"); print(json.dumps(d))' "$1"
}
peak_kib() {  # peak RSS (KiB) of a command, from GNU time
  /usr/bin/time -f "%M" -o "$CACHE/time.txt" "$@" >/dev/null 2>&1
  cat "$CACHE/time.txt"
}
first=1
for arch in "${ARCHS[@]}"; do
  [ -f "$CACHE/$arch/model.safetensors" ] || ./build/vitq init --arch "$arch" --out "$CACHE/$arch" >&2
  Q="$CACHE/$arch-w8a8-minmax.vitq"
  [ -f "$Q" ] || ./build/vitq quantize "$CACHE/$arch" --calib data/imagenet-samples/calib \
    --method minmax --wbits 8 --abits 8 --calib-size 32 --out "$Q" --quiet >&2
  for batch in 1 32; do
   for rep in $(seq "$REPEATS"); do
    echo "[int8.sh] $arch batch $batch repeat $rep/$REPEATS" >&2
    ./build/vitq bench "$Q" --batch "$batch" --threads $THREADS --json | tag vitq_int8 >>"$OUT.tmp"
    ./build/vitq bench "$CACHE/$arch" --batch "$batch" --threads $THREADS --json | tag vitq_fp32 >>"$OUT.tmp"
    if [ -f "$PEERS" ]; then
      VITQ_PEERS_THREADS=$THREADS bash "$PEERS" "$arch" "$batch" ort_int8_static,ort_int8_dynamic >>"$OUT.tmp" ||
        echo "peers failed for $arch batch $batch (see above)" >&2
    else
      echo "skipping peers: $PEERS not found" >&2
    fi
   done
  done
  fp32_kib=$(peak_kib ./build/vitq bench "$CACHE/$arch" --batch 1 --threads $THREADS --seconds 1 --warmup 0)
  int8_kib=$(peak_kib ./build/vitq bench "$Q" --batch 1 --threads $THREADS --seconds 1 --warmup 0)
  [ $first = 1 ] || echo "," >>"$MEM.tmp"
  first=0
  printf '{"arch": "%s", "batch": 1, "fp32_peak_rss_kib": %s, "int8_peak_rss_kib": %s, "ratio": %s, "fp32_file_bytes": %s, "int8_file_bytes": %s}' \
    "$arch" "$fp32_kib" "$int8_kib" "$(/usr/bin/python3 -c "print(round($int8_kib/$fp32_kib, 3))")" \
    "$(stat -c %s "$CACHE/$arch/model.safetensors")" "$(stat -c %s "$Q")" >>"$MEM.tmp"
done
echo "]" >>"$MEM.tmp"
mv "$OUT.tmp" "$OUT"
mv "$MEM.tmp" "$MEM"
/usr/bin/python3 bench/summarize.py "$OUT" vitq_int8 ort_int8_static,ort_int8_dynamic,vitq_fp32 >bench/results/int8.md
{
  echo
  echo "Peak RSS of \`vitq bench\` at batch 1 (from \`bench/results/int8-memory.json\`):"
  echo
  /usr/bin/python3 bench/memory_table.py "$MEM"
} >>bench/results/int8.md
cat bench/results/int8.md
