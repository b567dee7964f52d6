#!/usr/bin/env bash
# Quick start 2: install, build, and run the whole test suite (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
# ctest runs one test per CPU, each multi-threaded without vitq's adaptive thread count: passive
# waiting (no spin at barriers) keeps them from taking each other's cores (docs/ARCHITECTURE.md,
# "Wait policy"). The CLI's own default is checked by Threads.ExecutablesApplyDefaultsAndHideThem.
export OMP_WAIT_POLICY=passive
ctest --output-on-failure -j"$(nproc)" "$@"
