#!/usr/bin/env bash
# Configures and builds vitq in Release into ${VITQ_BUILD_DIR:-build} (extra CMake flags: $@),
# and installs the Python module for the current user (from build/ only).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${VITQ_BUILD_DIR:-build}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" 2>&1 | grep -E 'error|warning|Error' || true
test -x "$BUILD/vitq" || { echo "vitq build failed (run: cmake --build $BUILD)" >&2; exit 1; }
# The Python package (build/python/vitq) into the user's site-packages of Debian's python3, so
# `python3 -c "import vitq"` works after either quick-start command. Only from the default build.
if [ "$BUILD" = build ] && [ -f build/python/vitq/__init__.py ]; then
  SITE=$(/usr/bin/python3 -m site --user-site)
  mkdir -p "$SITE"
  cmake --install build --component python --prefix "$SITE" >/dev/null
fi
