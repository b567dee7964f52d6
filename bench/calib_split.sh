#!/usr/bin/env bash
# Design choices judged without the evaluation images: DeiT-Tiny calibrated on one half of
# data/imagenet-samples/calib (the even class folders, 50 images) and measured on the other half
# (the odd ones, 50 images, unseen by the calibration), with top-1 agreement, KL and logits SQNR
# against the float model. Each row: a name, W and A bits, the path (engine: the integer engine;
# fake-quant: `vitq eval --fake-quant`) and extra `vitq quantize` flags.
# usage: bench/calib_split.sh [ROWS_FILE]   (default: the rows below)
# Writes bench/results/calib-split.jsonl and bench/results/calib-split.md; VITQ_BIN names the
# binary (else setup and build run first).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/vitq_bin.sh
source bench/vitq_bin.sh  # V: VITQ_BIN, or build/vitq after setup and build
CALIB=data/imagenet-samples/calib
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/a" "$W/b"
i=0
for d in "$CALIB"/*/; do
  d=${d%/}
  if [ $((i % 2)) = 0 ]; then ln -s "$PWD/$d" "$W/a/"; else ln -s "$PWD/$d" "$W/b/"; fi
  i=$((i + 1))
done
cp data/imagenet-samples/classes.txt "$W/a/" && cp data/imagenet-samples/classes.txt "$W/b/"
DEFAULT_ROWS='w8a8-uniform 8 8 engine --attn-quantizer uniform
w8a8-uniform-row 8 8 engine --attn-quantizer uniform-row
w8a8-log-sqrt2-row 8 8 engine --attn-quantizer log-sqrt2-row
w8a8-uniform-row-fq 8 8 fake-quant --attn-quantizer uniform-row
w8a8-log-sqrt2-row-fq 8 8 fake-quant --attn-quantizer log-sqrt2-row
w6a6-log-sqrt2-row-fq 6 6 fake-quant --attn-quantizer log-sqrt2-row
w6a6-uniform-row-fq 6 6 fake-quant --attn-quantizer uniform-row
w4a4-log-sqrt2-row-fq 4 4 fake-quant --attn-quantizer log-sqrt2-row
w4a4-uniform-row-fq 4 4 fake-quant --attn-quantizer uniform-row
w4a8-uniform-row 4 8 engine --attn-quantizer uniform-row
w4a8-uniform 4 8 engine --attn-quantizer uniform'
ROWS=${1:-}
OUT=bench/results/calib-split.jsonl
: >"$OUT.tmp"
while read -r name wb ab path flags; do
  [ -n "$name" ] || continue
  # shellcheck disable=SC2086
  $V quantize models/deit-tiny --calib "$W/a" --calib-size 50 --method vitq --wbits "$wb" \
    --abits "$ab" --out "$W/$name.vitq" -q --threads 2 $flags >/dev/null
  extra=""
  [ "$path" = fake-quant ] && extra=--fake-quant
  $V eval "$W/$name.vitq" --data "$W/b" --reference models/deit-tiny --json -q --threads 2 $extra |
    /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps({"name": sys.argv[1], "wbits": int(sys.argv[2]), "abits": int(sys.argv[3]),
                  "path": sys.argv[4], "flags": sys.argv[5], "images": d["images"],
                  "top1": d["top1"], "agreement": d["agreement"], "kl": d["kl"],
                  "logits_sqnr_db": d["logits_sqnr_db"]}))' "$name" "$wb" "$ab" "$path" "$flags" |
    tee -a "$OUT.tmp" >&2
done < <(if [ -n "$ROWS" ]; then cat "$ROWS"; else echo "$DEFAULT_ROWS"; fi)
mv "$OUT.tmp" "$OUT"
/usr/bin/python3 - "$OUT" "bench/calib_split.sh${ROWS:+ $ROWS}" >bench/results/calib-split.md <<'PY'
import json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print("# Design choices on a split of the calibration images\n")
print("Made by `%s` on %s, 2 threads. DeiT-Tiny, vitq method, calibrated on the 50 even class" % (sys.argv[2], cpu))
print("folders of data/imagenet-samples/calib and measured on the 50 odd ones (no val image); agreement,")
print("KL and SQNR against the float model's logits; path: the integer engine or the fake-quant path.\n")
print("| row | W/A | path | flags | images | top-1 | agreement | KL | SQNR (dB) |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| %s | W%dA%d | %s | %s | %d | %.2f | %.2f | %.4f | %.2f |" % (
        r["name"], r["wbits"], r["abits"], r["path"], r["flags"], r["images"], r["top1"],
        r["agreement"], r["kl"], r["logits_sqnr_db"]))
PY
cat bench/results/calib-split.md
