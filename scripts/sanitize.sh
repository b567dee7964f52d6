#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer), in build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VITQ_BUILD_DIR=build-asan bash scripts/build.sh -DVITQ_SANITIZE=ON -DVITQ_BUILD_BENCH=OFF
cd build-asan
export OMP_WAIT_POLICY=passive  # tests run side by side, as in scripts/test.sh
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$(nproc)" "$@"
