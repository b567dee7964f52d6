#!/usr/bin/env bash
# fp32 speed of vitq's float engine beside ONNX Runtime and PyTorch (../shared/peers), in one run.
# usage: bench/fp32.sh [ARCH...]   (default: deit_tiny/small/base_patch16_224)
# Writes bench/results/fp32.jsonl (one JSON line per engine/arch/batch) and bench/results/fp32.md.
# Random-weight checkpoints from `vitq init`; 2 threads; batch 1 and 32; median call time; every
# cell measured REPEATS times (VITQ_BENCH_REPEATS, default 3), engines interleaved, the table
# shows the median of the repeats.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHS=("$@")
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(deit_tiny_patch16_224 deit_small_patch16_224 deit_base_patch16_224)
PEERS=../shared/peers/run.sh
CACHE=${VITQ_BENCH_CACHE:-$HOME/.cache/vitq-bench}
OUT=bench/results/fp32.jsonl
THREADS=2
REPEATS=${VITQ_BENCH_REPEATS:-3}  # interleaved repeats per cell; the table takes their median
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p "$CACHE" bench/results
: >"$OUT.tmp"
for arch in "${ARCHS[@]}"; do
  [ -f "$CACHE/$arch/model.safetensors" ] || ./build/vitq init --arch "$arch" --out "$CACHE/$arch" >&2
  for batch in 1 32; do
   for rep in $(seq "$REPEATS"); do
    echo "[fp32.sh] $arch batch $batch repeat $rep/$REPEATS" >&2
    ./build/vitq bench "$CACHE/$arch" --batch "$batch" --threads $THREADS --json |
      /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); d["engine"]="vitq_fp32"; d["arch"]=d.pop("architecture"); print(json.dumps(d))' >>"$OUT.tmp"
    if [ -x "$PEERS" ] || [ -f "$PEERS" ]; then
      VITQ_PEERS_THREADS=$THREADS bash "$PEERS" "$arch" "$batch" ort_fp32,torch_fp32 >>"$OUT.tmp" ||
        echo "peers failed for $arch batch $batch (see above)" >&2
    else
      echo "skipping peers: $PEERS not found" >&2
    fi
   done
  done
done
mv "$OUT.tmp" "$OUT"
/usr/bin/python3 bench/summarize.py "$OUT" vitq_fp32 ort_fp32,torch_fp32 >bench/results/fp32.md
cat bench/results/fp32.md
