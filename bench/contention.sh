#!/usr/bin/env bash
# Speed under CPU contention: vitq's int8 engine (W8A8 .vitq) and fp32 engine beside ONNX
# Runtime's int8 run (../shared/peers, ort_int8_dynamic: the faster ORT int8 run at batch 1 in
# bench/results/int8.md), batch 1, on a machine that is
#   idle     nothing else running;
#   pair     a second copy of the same job running at the same time (both are recorded); vitq's
#            pair of 1-thread jobs is the control: two jobs that never synchronize threads, so
#            what they lose against one 1-thread job is the hardware's share (caches, memory,
#            the host's placement of the two vCPUs), not thread waiting;
#   busy     a single-threaded busy loop (`while :; do :; done`) at normal priority;
#   nice19   the same loop at nice 19.
# vitq runs with 2 threads (the default here) and with 1; ORT with 2.
# usage: bench/contention.sh [ARCH...]   (default: deit_tiny_patch16_224 deit_small_patch16_224)
# Writes bench/results/contention.jsonl (one JSON line per run) and bench/results/contention.md.
# Models: random-weight checkpoints from `vitq init`, quantized with minmax W8A8 on 32 images of
# data/imagenet-samples/calib (as bench/int8.sh). Every cell is measured REPEATS times
# (VITQ_BENCH_REPEATS, default 5), all cells of an arch interleaved within a repeat; the tables
# show the median. Each run times at least 2 s after 0.5 s of warm-up (images/s of the median
# call, as bench/int8.sh; vitq also records its mean rate over the whole timed span and the
# share of its calls that its adaptive thread choice ran on one thread).
# Run it alone (scripts hold /tmp/vitq-cpu.lock around it on shared machines). Every row records
# `others_cpu_share`: the share of the machine's CPU time (from /proc/stat) that processes other
# than this script's took during its cell; the table flags cells where it exceeded 5 %.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHS=("$@")
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(deit_tiny_patch16_224 deit_small_patch16_224)
PEERS=../shared/peers/run.sh
CACHE=${VITQ_BENCH_CACHE:-$HOME/.cache/vitq-bench}
OUT=bench/results/contention.jsonl
REPEATS=${VITQ_BENCH_REPEATS:-5}
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p "$CACHE" bench/results
: >"$OUT.tmp"
TMP=$(mktemp -d)
LOOP_PID=
cleanup() {
  [ -z "$LOOP_PID" ] || kill "$LOOP_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

tag() {  # adds scenario/engine/arch/threads/copy/repeat fields to one JSON object on stdin
  /usr/bin/python3 -c '
import json, sys
text = sys.stdin.read().strip()
try:
    d = json.loads(text)  # vitq bench --json: one (indented) object
except ValueError:
    d = json.loads(text.splitlines()[-1])  # the peers: one object per line
d["engine"], d["arch"], d["threads"], d["scenario"], d["copy"], d["repeat"] = (
    sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
d.pop("architecture", None)
print(json.dumps(d))' "$@"
}

job() {  # engine arch threads -> one JSON object on stdout
  local engine=$1 arch=$2 threads=$3
  case "$engine" in
    vitq_int8)
      ./build/vitq bench "$CACHE/$arch-w8a8-minmax-v3.vitq" --batch 1 --threads "$threads" \
        --seconds 2 --warmup 0.5 --json ;;
    vitq_fp32)
      ./build/vitq bench "$CACHE/$arch" --batch 1 --threads "$threads" --seconds 2 --warmup 0.5 \
        --json ;;
    ort_int8)
      VITQ_PEERS_THREADS=$threads VITQ_PEERS_MIN_SECONDS=2 VITQ_PEERS_WARMUP_SECONDS=0.5 \
        bash "$PEERS" "$arch" 1 ort_int8_dynamic 2>"$TMP/peers.err" ||
        { cat "$TMP/peers.err" >&2; return 1; } ;;
  esac
}

start_loop() {  # [nice]: a single-threaded busy loop in the background
  if [ "${1:-}" = nice ]; then
    nice -n 19 bash -c 'while :; do :; done' &
  else
    bash -c 'while :; do :; done' &
  fi
  LOOP_PID=$!
  sleep 0.2
}
stop_loop() {
  kill "$LOOP_PID" 2>/dev/null || true
  wait "$LOOP_PID" 2>/dev/null || true
  LOOP_PID=
}

cpu_mark() {  # writes $TMP/mark.$1: /proc/stat busy and total jiffies, and `times` (this shell's
  # finished children: the jobs and busy loops of this script), read by others_share
  head -1 /proc/stat >"$TMP/mark.$1"
  times >>"$TMP/mark.$1"
}
others_share() {  # the share of the machine's CPU time that other processes took between marks
  /usr/bin/python3 - "$TMP/mark.0" "$TMP/mark.1" "$(getconf CLK_TCK)" <<'PY'
import re, sys
def read(path):
    lines = open(path).read().splitlines()
    v = list(map(int, lines[0].split()[1:9]))
    busy, total = sum(v) - v[3] - v[4], sum(v)
    ours = sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", lines[2]))
    return busy, total, ours
(b0, t0, o0), (b1, t1, o1) = read(sys.argv[1]), read(sys.argv[2])
tck = float(sys.argv[3])
share = ((b1 - b0) / tck - (o1 - o0)) / ((t1 - t0) / tck) if t1 > t0 else 0.0
print("%.3f" % max(0.0, share))
PY
}

run_cell() {  # scenario engine arch threads repeat -> JSON lines on stdout
  local scenario=$1 engine=$2 arch=$3 threads=$4 rep=$5
  echo "[contention.sh] $arch $engine ${threads}t $scenario (repeat $rep/$REPEATS)" >&2
  case "$scenario" in
    idle) job "$engine" "$arch" "$threads" | tag "$engine" "$arch" "$threads" idle 0 "$rep" ;;
    pair)
      job "$engine" "$arch" "$threads" >"$TMP/a.json" &
      local a=$!
      job "$engine" "$arch" "$threads" >"$TMP/b.json"
      wait "$a"
      tag "$engine" "$arch" "$threads" pair 0 "$rep" <"$TMP/a.json"
      tag "$engine" "$arch" "$threads" pair 1 "$rep" <"$TMP/b.json" ;;
    busy | nice19)
      start_loop "$([ "$scenario" = nice19 ] && echo nice)"
      job "$engine" "$arch" "$threads" | tag "$engine" "$arch" "$threads" "$scenario" 0 "$rep"
      stop_loop ;;
  esac
}

cell() {  # the same, each line with the share of CPU time other processes took meanwhile
  cpu_mark 0
  run_cell "$@" >"$TMP/cell.jsonl"
  cpu_mark 1
  local others
  others=$(others_share)
  /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    d["others_cpu_share"] = float(sys.argv[2])
    print(json.dumps(d))' "$TMP/cell.jsonl" "$others"
}

for arch in "${ARCHS[@]}"; do
  [ -f "$CACHE/$arch/model.safetensors" ] || ./build/vitq init --arch "$arch" --out "$CACHE/$arch" >&2
  Q="$CACHE/$arch-w8a8-minmax-v3.vitq"
  [ -f "$Q" ] || ./build/vitq quantize "$CACHE/$arch" --calib data/imagenet-samples/calib \
    --method minmax --wbits 8 --abits 8 --calib-size 32 --out "$Q" --quiet >&2
done
for rep in $(seq "$REPEATS"); do
  for arch in "${ARCHS[@]}"; do
    for scenario in idle pair busy nice19; do
      for engine in vitq_int8 vitq_fp32; do
        for threads in 2 1; do
          cell "$scenario" "$engine" "$arch" "$threads" "$rep" >>"$OUT.tmp"
        done
      done
      if [ -f "$PEERS" ]; then
        cell "$scenario" ort_int8 "$arch" 2 "$rep" >>"$OUT.tmp" ||
          echo "peers failed for $arch $scenario (see above)" >&2
      fi
    done
  done
done
mv "$OUT.tmp" "$OUT"
/usr/bin/python3 bench/contention_summary.py "$OUT" >bench/results/contention.md
cat bench/results/contention.md
