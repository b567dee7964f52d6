#!/usr/bin/env bash
# Configures and builds vitq in Release into ${VITQ_BUILD_DIR:-build} (extra CMake flags: $@).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${VITQ_BUILD_DIR:-build}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" 2>&1 | grep -E 'error|warning|Error' || true
test -x "$BUILD/vitq" || { echo "vitq build failed (run: cmake --build $BUILD)" >&2; exit 1; }
