#!/usr/bin/env bash
# Checks that the sources with CPU-specific code (every file that mentions x86 intrinsics, CPUID,
# target attributes or vitq's SIMD dispatch) compile for a CPU other than x86: a syntax-only
# compile with the aarch64 cross compiler (Debian's g++-aarch64-linux-gnu), oneDNN's headers
# only. ctest runs it (portable_check); without the cross compiler it says SKIPPED and passes.
# usage: scripts/check_portable.sh   (apt-get install g++-aarch64-linux-gnu to run it)
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=aarch64-linux-gnu-g++
if ! command -v "$CXX" >/dev/null; then
  echo "SKIPPED: $CXX not installed (apt-get install g++-aarch64-linux-gnu)"
  exit 0
fi
INC=$(mktemp -d)
trap 'rm -rf "$INC"' EXIT
# oneDNN's headers without the host's C library headers.
for f in /usr/include/dnnl*; do ln -s "$f" "$INC/"; done
ln -s /usr/include/oneapi "$INC/oneapi"
mapfile -t FILES < <(grep -lE 'VITQ_X86|immintrin|cpuid|target\(|VITQ_SIMD' src/*/*.cc |
  grep -v '_test\.cc$' | sort -u)
bad=0
for f in "${FILES[@]}"; do
  if ! "$CXX" -std=gnu++17 -fopenmp -fsyntax-only -Wall -Iinclude -I"$INC" -Isrc/kernels "$f"; then
    echo "does not compile for aarch64: $f"
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "${#FILES[@]} files compile for aarch64: ${FILES[*]}"
exit "$bad"
