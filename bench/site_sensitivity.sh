#!/usr/bin/env bash
# Where the vitq method's activation error sits: DeiT-Tiny quantized with `--method vitq` (100
# calibration images of data/imagenet-samples/calib) at W8A8, W6A6 and W4A4, evaluated on the 400
# val images on the fake-quant path with one group of activation sites left float at a time
# (`vitq eval FILE --fake-quant --keep-float PATTERNS`), against the float model (top-1,
# agreement, KL, logits SQNR). The first rows are the integer engine and the fake-quant path with
# every site quantized; the last leaves every activation float (the weights alone). A site group
# is one site in every block ("mlp.fc2:in" = the input of fc2 in all 12 blocks).
# Writes bench/results/site-sensitivity.jsonl and .md. Usage: bench/site_sensitivity.sh
# VITQ_BIN names an already built vitq (else setup and build run first); BITS (default "8 6 4").
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/vitq_bin.sh
source bench/vitq_bin.sh  # V: VITQ_BIN, or build/vitq after setup and build
W=build/bench-sensitivity
OUT=bench/results/site-sensitivity.jsonl
T=models/deit-tiny TC=data/imagenet-samples/calib TV=data/imagenet-samples/val
mkdir -p "$W" bench/results
: >"$OUT.tmp"
GROUPS_FLOAT="patch_embed.proj:in attn.qkv:in attn.qk:a attn.qk:b attn.pv:a attn.pv:b attn.proj:in
mlp.fc1:in mlp.fc2:in head:in mlp.fc2:in,attn.pv:a :in,:a,:b"
row() {  # bits label [eval flags...]
  local b=$1 label=$2
  shift 2
  $V eval "$W/w${b}a$b.vitq" --data "$TV" --reference "$T" --json -q --threads 2 "$@" |
    /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps({"bits": int(sys.argv[1]), "float": sys.argv[2], "engine": d["engine"],
                  "float_activation_sites": d.get("float_activation_sites", 0),
                  "images": d["images"], "top1": d["top1"], "agreement": d["agreement"],
                  "kl": d["kl"], "logits_sqnr_db": d["logits_sqnr_db"]}))' "$b" "$label" |
    tee -a "$OUT.tmp" >&2
}
for b in ${BITS:-8 6 4}; do
  [ -s "$W/w${b}a$b.vitq" ] ||
    $V quantize "$T" --calib "$TC" --calib-size 100 --wbits "$b" --abits "$b" \
      --out "$W/w${b}a$b.vitq" -q --threads 2 >/dev/null
  row "$b" "none (integer engine)"
  row "$b" "none (fake-quant)" --fake-quant
  for g in $GROUPS_FLOAT; do
    row "$b" "$g" --fake-quant --keep-float "$g"
  done
done
mv "$OUT.tmp" "$OUT"
/usr/bin/python3 - "$OUT" >bench/results/site-sensitivity.md <<'PY'
import json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
bits = sorted({r["bits"] for r in rows}, reverse=True)
print("# Which activation sites cost the most (vitq method, DeiT-Tiny)\n")
print("Made by `bench/site_sensitivity.sh` on %s, 2 threads. DeiT-Tiny quantized with" % cpu)
print("`--method vitq` (100 calibration images) at each bit-width, evaluated on the %d val images;" % rows[0]["images"])
print("each row leaves one group of activation sites float in every block (`vitq eval FILE")
print("--fake-quant --keep-float PATTERNS`), the weights stay quantized. Cells: top-1 / top-1")
print("agreement / logits SQNR (dB) against the float model. `:in,:a,:b` = every activation float.\n")
print("| sites left float | " + " | ".join("W%dA%d" % (b, b) for b in bits) + " |")
print("|---|" + "---|" * len(bits))
labels = []
for r in rows:
    if r["float"] not in labels:
        labels.append(r["float"])
by = {(r["bits"], r["float"]): r for r in rows}
for l in labels:
    cells = []
    for b in bits:
        r = by.get((b, l))
        cells.append("%.4f / %.4f / %.1f" % (r["top1"], r["agreement"], r["logits_sqnr_db"]) if r else "")
    print("| %s | %s |" % (l.replace(",", ", "), " | ".join(cells)))
PY
cat bench/results/site-sensitivity.md
