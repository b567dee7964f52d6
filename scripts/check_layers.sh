#!/usr/bin/env bash
# Checks the stage rule of docs/ARCHITECTURE.md on the sources: a file in src/<stage>/ may include
# another stage's internal header ("../<other>/x.h") only when <other> is to its left, and the CLI
# (src/cli) only public headers (include/vitq). CMake's link graph enforces the same order for
# symbols; this enforces it for internal headers, which the compiler cannot see. Run by ctest
# (layers_check). Exit 1 with every offending line.
set -euo pipefail
cd "$(dirname "$0")/.."
# The stages in order; each may use the ones before it.
ORDER=(core quant kernels io graph search qmodel runtime)
index_of() {
  local i
  for i in "${!ORDER[@]}"; do [ "${ORDER[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo -1
}
bad=0
for dir in src/*/; do
  stage=$(basename "$dir")
  mine=$(index_of "$stage")
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    other=$(sed -E 's/.*#include "\.\.\/([a-z_]+)\/.*/\1/' <<<"$hit")
    theirs=$(index_of "$other")
    if [ "$stage" = cli ] || [ "$mine" -lt 0 ] || [ "$theirs" -lt 0 ] || [ "$theirs" -ge "$mine" ]; then
      echo "layer violation: $hit (stage '$stage' may not include '$other' internals)"
      bad=1
    fi
  done < <(grep -Hn '#include "\.\./' "$dir"* 2>/dev/null || true)
done
[ "$bad" = 0 ] && echo "stage includes follow ${ORDER[*]} (cli: public headers only)"
exit "$bad"
