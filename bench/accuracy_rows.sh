# Shared by bench/lowbit.sh and bench/reconstruct.sh: one accuracy row = `vitq quantize` (timed
# by /usr/bin/time) then `vitq eval` of the .vitq on the integer engine against the float model.
# The caller sets OUT (the jsonl being assembled, from $OUT.tmp) and sources this file from the
# repository root; VITQ_BIN names an already built vitq (else setup and build run first). Rows are
# cached in $W/NAME.json and reused (ONLY_CACHED=1: nothing is run).
# shellcheck source=bench/vitq_bin.sh
source bench/vitq_bin.sh  # V: VITQ_BIN, or build/vitq after setup and build
W=build/bench-lowbit
mkdir -p "$W" bench/results
: >"$OUT.tmp"
T=models/deit-tiny TC=data/imagenet-samples/calib TV=data/imagenet-samples/val
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

command_line() {  # command var...: the command prefixed with each var that is set (VAR="value")
  local cmd=$1 var
  shift
  for var in "$@"; do
    if [ -n "${!var+x}" ]; then cmd="$var=\"${!var}\" $cmd"; fi
  done
  echo "$cmd"
}

table() {  # title script jsonl: the rows as a markdown table on stdout
  /usr/bin/python3 - "$@" <<'PY'
import json, subprocess, sys
title, script, path = sys.argv[1:4]
rows = [json.loads(l) for l in open(path)]
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print("# %s\n" % title)
print("Made by `%s` on %s, 2 threads. Accuracy is the integer engine's (`vitq eval FILE.vitq`);" % (script, cpu))
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
}
