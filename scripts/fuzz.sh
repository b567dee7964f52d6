#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (Debian's clang, ASan + UBSan) in build-fuzz/ and runs
# each for SECONDS (default 60): scripts/fuzz.sh [SECONDS] [TARGET...].
# Seeds come from fuzz/corpus/<target> (committed); new inputs go to build-fuzz/corpus/<target>,
# crashes to build-fuzz/findings/, logs to build-fuzz/logs/. Prints one line per target
# (seconds, executions, corpus size, findings) and exits 1 when any target found something.
# VITQ_FUZZ_NO_INSTALL=1: never apt-get; print "SKIPPED" and exit 0 when clang or libFuzzer is
# missing (the ctest entry fuzz_smoke uses this).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_safetensors fuzz_timm_config fuzz_hf_config
  fuzz_preprocessor_config fuzz_vitq_metadata fuzz_jpeg fuzz_png fuzz_classes)

have_fuzzer() {
  command -v clang++ >/dev/null 2>&1 &&
    echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
      clang++ -x c++ -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1
}
if ! have_fuzzer; then
  if [ "${VITQ_FUZZ_NO_INSTALL:-0}" = 1 ]; then
    echo "SKIPPED: clang++ with libFuzzer is not installed (run scripts/fuzz.sh to install it)"
    exit 0
  fi
  bash scripts/setup.sh
  PKGS=(clang libclang-rt-14-dev libomp-14-dev)
  SUDO=()
  [ "$(id -u)" = 0 ] || SUDO=(sudo -n)
  echo "vitq fuzz: installing ${PKGS[*]}" >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    "${PKGS[@]}" >&2
  have_fuzzer || { echo "vitq fuzz: clang++ -fsanitize=fuzzer does not link" >&2; exit 1; }
fi

BUILD=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVITQ_FUZZ=ON \
  -DVITQ_BUILD_TESTS=OFF -DVITQ_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}" 2>&1 | grep -E 'error|warning' || true
mkdir -p "$BUILD/logs" "$BUILD/findings"

status=0
echo "scripts/fuzz.sh $SECONDS_EACH at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(clang++ --version | head -1)"
for t in "${TARGETS[@]}"; do
  corpus="$BUILD/corpus/$t"
  mkdir -p "$corpus"
  log="$BUILD/logs/$t.log"
  before=$(ls "$BUILD/findings" | grep -c "^$t-" || true)
  start=$(date +%s)
  # -rss_limit_mb: images up to the pixel cap (89.5 MP, 268 MB of RGB) plus ASan's overhead.
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "$BUILD/fuzz/$t" "$corpus" "fuzz/corpus/$t" -max_total_time="$SECONDS_EACH" -timeout=30 \
    -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$BUILD/findings/$t-" >"$log" 2>&1 || true
  secs=$(($(date +%s) - start))
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)
  after=$(ls "$BUILD/findings" | grep -c "^$t-" || true)
  found=$((after - before))
  printf '%-26s %5d s  %10s executions  %5d corpus files  %d findings\n' "$t" "$secs" \
    "${runs:-?}" "$(ls "$corpus" | wc -l)" "$found"
  if [ "$found" -gt 0 ] || [ -z "$runs" ]; then
    status=1
    echo "  see $log and $BUILD/findings/$t-*" >&2
  fi
done
exit $status
