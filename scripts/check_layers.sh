#!/usr/bin/env bash
# Checks the stage rule of docs/ARCHITECTURE.md on the sources: a file in src/<stage>/ may include
# another stage's internal header ("../<other>/x.h") only when its library links <other>'s, and
# the front ends (src/cli, src/python) only public headers (include/vitq). CMake's link graph enforces the same order for
# symbols; this enforces it for internal headers, which the compiler cannot see. Run by ctest
# (layers_check). Exit 1 with every offending line.
set -euo pipefail
cd "$(dirname "$0")/.."
# What each stage may include: the stages its library links, directly or through them
# (CMakeLists.txt), so this and the link graph say the same.
declare -A ALLOWED=(
  [core]=""
  [quant]="core"
  [kernels]="core quant"
  [io]="core"
  [graph]="core quant kernels io"
  [search]="core quant kernels io graph"
  [qmodel]="core quant kernels io graph"
  [runtime]="core quant kernels io graph search qmodel"
  [export]="core quant kernels io graph search qmodel runtime"
  [app]="core quant kernels io graph search qmodel runtime export"
  [cli]=""
  [python]=""
)
bad=0
for dir in src/*/; do
  stage=$(basename "$dir")
  if [ -z "${ALLOWED[$stage]+set}" ]; then
    echo "layer check: src/$stage is not a stage this script knows (add it to ALLOWED)"
    bad=1
    continue
  fi
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    other=$(sed -E 's/.*#include "\.\.\/([a-z_]+)\/.*/\1/' <<<"$hit")
    if [[ " ${ALLOWED[$stage]} " != *" $other "* ]]; then
      echo "layer violation: $hit (stage '$stage' may not include '$other' internals)"
      bad=1
    fi
  done < <(grep -Hn '#include "\.\./' "$dir"* 2>/dev/null || true)
done
[ "$bad" = 0 ] && echo "every internal include follows the stage rule (cli: public headers only)"
exit "$bad"
