#!/usr/bin/env bash
# The example HTML reports under docs/examples/ (issue 14), from the bundled DeiT-Tiny:
#   liu2021-w8a8.html   vitq quantize --method liu2021 --wbits 8 --abits 8 (32 calibration images)
#   minmax-6mp.html     vitq quantize --method minmax --mixed-precision --target-bits 6 (32 images)
#   compare.html        vitq compare --methods minmax,vitq --bits 8,4 on 100 val images
# each rendered by `vitq report` from the JSON beside it (the quantization reports, the compare
# result), which is made first.
# usage: bash tools/make_report_examples.sh            (after scripts/build.sh; ~5 min on 2 cores)
#        bash tools/make_report_examples.sh --render   (only re-render the committed JSON files)
set -euo pipefail
cd "$(dirname "$0")/.."
V=build/vitq
E=docs/examples
if [ "${1:-}" != --render ]; then
  T=$(mktemp -d)
  trap 'rm -rf "$T"' EXIT
  C=data/imagenet-samples/calib
  $V quantize models/deit-tiny --calib $C --method liu2021 --wbits 8 --abits 8 --calib-size 32 \
    --out "$T/liu2021-w8a8.vitq" --report $E/liu2021-w8a8.json --quiet
  $V quantize models/deit-tiny --calib $C --method minmax --mixed-precision --target-bits 6 \
    --calib-size 32 --out "$T/minmax-6mp.vitq" --report $E/minmax-6mp.json --quiet
  $V compare models/deit-tiny --calib $C --data data/imagenet-samples/val --methods minmax,vitq \
    --bits 8,4 --calib-size 32 --limit 100 --json --quiet >$E/compare.json
fi
for name in liu2021-w8a8 minmax-6mp compare; do
  $V report $E/$name.json --out $E/$name.html
done
