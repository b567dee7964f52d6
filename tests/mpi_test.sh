#!/usr/bin/env bash
# ctest `mpi` (issue 15): `mpirun -np 2 vitq ...` gives what 1 process gives, bit for bit, for
# eval, predict, quantize (liu2021, 8 calibration images, uniform and mixed precision) and
# compare; a bad image on one rank ends the whole job with exit 3 and the file named, never a
# hang.
# Usage: tests/mpi_test.sh BUILD_DIR [ON|OFF: vitq built with MPI]
set -euo pipefail
BUILD=$(cd "$1" && pwd)
if [ "${2:-ON}" != ON ]; then
  echo "SKIP: vitq was built without MPI (install libopenmpi-dev: bash scripts/setup.sh)"; exit 77
fi
command -v mpirun > /dev/null || { echo "SKIP: mpirun not found (openmpi-bin)"; exit 77; }
cd "$(dirname "$0")/.."
VITQ="$BUILD/vitq"
M=models/vit-cifar10
DATA=data/cifar10/calib
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# What a root CI needs: Open MPI refuses root without these; -q drops mpirun's banners;
# --oversubscribe lets 2 ranks start on a 1-CPU runner. No single-copy (CMA) transport: some
# containers forbid process_vm_readv.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Under the sanitizers (scripts/sanitize.sh) LeakSanitizer reports what Open MPI itself leaves
# allocated at exit (libmpi and its plugins): leak checks are off for the processes mpirun
# starts; the 1-process runs of the same commands keep them.
MPI=(timeout 300 env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
     mpirun -q --oversubscribe -np 2)
fail() { echo "FAIL: $*" >&2; exit 1; }
# Figures without the timing fields (and the thread count), which may differ between runs.
strip() {
  grep -vE '"(seconds|images_per_second|threads|date|calib_seconds|processes|collectives|bytes_received)"' "$1"
}

echo "== eval: 1 process vs 2 ranks (top-1, agreement, KL and SQNR bit for bit)"
"$VITQ" eval $M --data $DATA --limit 40 --batch 8 --reference $M --json --quiet --threads 1 > "$T/e1.json"
"${MPI[@]}" "$VITQ" eval $M --data $DATA --limit 40 --batch 8 --reference $M --json --quiet \
  --threads 1 > "$T/e2.json"
grep -q '"images": 40' "$T/e2.json" || fail "eval under mpirun: not 40 images"
diff <(strip "$T/e1.json") <(strip "$T/e2.json") || fail "eval differs under mpirun -np 2"

echo "== quantize liu2021, 8 calibration images: the same .vitq byte for byte"
Q=(quantize $M --calib $DATA --calib-size 8 --method liu2021 --quiet --threads 1)
"$VITQ" "${Q[@]}" --out "$T/q1.vitq" > /dev/null
"${MPI[@]}" "$VITQ" "${Q[@]}" --out "$T/q2.vitq" --json > "$T/q2.json"
cmp "$T/q1.vitq" "$T/q2.vitq" || fail "liu2021 .vitq differs under mpirun -np 2"
grep -q '"processes": 2' "$T/q2.json" || fail "quantize --json does not report 2 processes"

echo "== quantize liu2021 mixed precision: searches split across ranks, choice on rank 0"
MP=(quantize $M --calib $DATA --calib-size 8 --method liu2021 --coarse-to-fine --mixed-precision
    --target-bits 6 --candidates 5,6 --quiet --threads 1)
"$VITQ" "${MP[@]}" --out "$T/m1.vitq"
"${MPI[@]}" "$VITQ" "${MP[@]}" --out "$T/m2.vitq"
cmp "$T/m1.vitq" "$T/m2.vitq" || fail "mixed-precision .vitq differs under mpirun -np 2"

echo "== eval of the quantized file on the integer engine"
"$VITQ" eval "$T/q1.vitq" --data $DATA --limit 24 --batch 5 --reference $M --json --quiet \
  --threads 1 > "$T/i1.json"
"${MPI[@]}" "$VITQ" eval "$T/q1.vitq" --data $DATA --limit 24 --batch 5 --reference $M --json \
  --quiet --threads 1 > "$T/i2.json"
diff <(strip "$T/i1.json") <(strip "$T/i2.json") || fail "int8 eval differs under mpirun -np 2"

echo "== predict: the same output in the input order"
mapfile -t IMGS < <(find $DATA -name '*.png' | sort | head -11)
"$VITQ" predict $M "${IMGS[@]}" --batch 2 --json --quiet --threads 1 > "$T/p1.json"
"${MPI[@]}" "$VITQ" predict $M "${IMGS[@]}" --batch 2 --json --quiet --threads 1 > "$T/p2.json"
cmp "$T/p1.json" "$T/p2.json" || fail "predict differs under mpirun -np 2"

echo "== compare: a distributed method (images split) and one whose cells are dealt to the ranks"
C=(compare $M --calib $DATA --data $DATA --calib-size 8 --limit 32 --methods minmax,vitq
   --bits 8,4 --json --quiet --threads 1)
"$VITQ" "${C[@]}" --report-dir "$T/r1" > "$T/c1.json"
# Gathers in rounds of at most 4 KB per rank (large plans take many rounds): the same result.
"${MPI[@]}" -x VITQ_DIST_ROUND_BYTES=4096 "$VITQ" "${C[@]}" --report-dir "$T/r2" > "$T/c2.json"
diff <(strip "$T/c1.json" | grep -v '"command"') <(strip "$T/c2.json" | grep -v '"command"') \
  || fail "compare differs under mpirun -np 2"
# vitq W4 was quantized on rank 1: its plan and search report reached rank 0.
for f in minmax-W8 minmax-W4 vitq-W8 vitq-W4; do
  [ -f "$T/r2/$f.json" ] || fail "compare --report-dir under mpirun: $f.json missing"
  untimed() { grep -vE '"(seconds|load|capture|search|total)"' "$1"; }
  diff <(untimed "$T/r1/$f.json") <(untimed "$T/r2/$f.json") > /dev/null \
    || fail "compare --report-dir: $f.json differs under mpirun -np 2"
done

echo "== VITQ_NO_MPI=1: each process is a 1-process job"
"${MPI[@]}" -x VITQ_NO_MPI=1 "$VITQ" eval $M --data $DATA --limit 4 --json --quiet --threads 1 \
  > "$T/nompi.json"
[ "$(grep -c '"processes": 1' "$T/nompi.json")" = 2 ] \
  || fail "VITQ_NO_MPI=1 under mpirun -np 2: expected two 1-process runs: $(cat "$T/nompi.json")"

echo "== a bad image in rank 1's block: exit 3, the file named, no hang"
mkdir -p "$T/bad/a" "$T/bad/b"
cp "${IMGS[@]:0:3}" "$T/bad/a/"
cp "${IMGS[@]:3:3}" "$T/bad/b/"
head -c 100 "${IMGS[6]}" > "$T/bad/b/zz_truncated.png"
set +e
"${MPI[@]}" "$VITQ" eval $M --data "$T/bad" --json --quiet --threads 1 > /dev/null 2> "$T/err"
rc=$?
set -e
[ $rc -eq 3 ] || fail "eval with a bad image on rank 1: exit $rc, expected 3"
grep -q "zz_truncated.png" "$T/err" || fail "eval: the bad file is not named: $(cat "$T/err")"
[ "$(grep -c 'vitq: error' "$T/err")" -eq 1 ] || fail "eval: the error is not printed once"
set +e
"${MPI[@]}" "$VITQ" quantize $M --calib "$T/bad" --calib-size 7 --method liu2021 \
  --out "$T/bad.vitq" --quiet --threads 1 > /dev/null 2> "$T/err"
rc=$?
set -e
[ $rc -eq 3 ] || fail "quantize with a bad calibration image on rank 1: exit $rc, expected 3"
grep -q "zz_truncated.png" "$T/err" || fail "quantize: the bad file is not named"
[ ! -e "$T/bad.vitq" ] || fail "quantize wrote a file despite the error"
set +e
"${MPI[@]}" "$VITQ" predict $M "${IMGS[@]:0:3}" "$T/bad/b/zz_truncated.png" --batch 2 --quiet \
  --threads 1 > "$T/out" 2> "$T/err"
rc=$?
set -e
[ $rc -eq 3 ] || fail "predict with a bad image on rank 1: exit $rc, expected 3"
grep -q "zz_truncated.png" "$T/err" || fail "predict: the bad file is not named"
[ "$(grep -c '^data' "$T/out")" -eq 2 ] || fail "predict: not the 2 images of the first batch"

echo "== --skip-bad-images across ranks: the figures of 1 process, each warning once"
"$VITQ" eval $M --data "$T/bad" --skip-bad-images --json --quiet --threads 1 > "$T/s1.json" 2>/dev/null
"${MPI[@]}" "$VITQ" eval $M --data "$T/bad" --skip-bad-images --json --quiet --threads 1 \
  > "$T/s2.json" 2> "$T/err"
diff <(strip "$T/s1.json" | grep -v '"data"') <(strip "$T/s2.json" | grep -v '"data"') \
  || fail "--skip-bad-images figures differ"
grep -q '"skipped": 1' "$T/s2.json" || fail "--skip-bad-images: not 1 skipped"
[ "$(grep -c 'warning: skipped' "$T/err")" -eq 1 ] || fail "the warning is not printed once"

echo "== a command that is not distributed runs once, on rank 0"
"${MPI[@]}" "$VITQ" info $M --json > "$T/info.json"
[ "$(grep -c '"architecture"' "$T/info.json")" -eq 1 ] || fail "info printed more than once"
echo "mpi_test: all passed"
