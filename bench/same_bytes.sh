#!/usr/bin/env bash
# Refactor check: two vitq binaries must write the same .vitq bytes for the same inputs. Quantizes
# the bundled DeiT-Tiny with each binary (minmax W8A8, liu2021 W8A8 on 16 images, minmax W6A6
# --sequential on 16 images, minmax mixed
# precision at a 6-bit budget on 32 images, vitq W4A4 on 16 images), compares the files with cmp,
# and reports each run's time and peak RSS (GNU time: apt-get install time).
# usage: bench/same_bytes.sh BINARY_A BINARY_B [WORKDIR]   (exit 1 when any file differs)
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 W=${3:-$(mktemp -d)}
C=data/imagenet-samples/calib
JOBS=(
  "minmax-w8a8|--method minmax --wbits 8 --abits 8"
  "liu2021-w8a8|--method liu2021 --wbits 8 --abits 8 --calib-size 16"
  "minmax-w6a6-sequential|--method minmax --wbits 6 --abits 6 --sequential --calib-size 16"
  "minmax-6mp|--method minmax --mixed-precision --target-bits 6 --calib-size 32"
  "vitq-w4a4|--method vitq --wbits 4 --abits 4 --calib-size 16"
)
echo "| file | A: s, peak RSS MB | B: s, peak RSS MB | same bytes |"
echo "|---|---|---|---|"
status=0
for job in "${JOBS[@]}"; do
  name=${job%%|*} flags=${job#*|}
  for which in A B; do
    bin=$A
    [ "$which" = B ] && bin=$B
    mkdir -p "$W/$which"
    # shellcheck disable=SC2086
    /usr/bin/time -f "%e %M" -o "$W/$which/$name.time" \
      "$bin" quantize models/deit-tiny --calib "$C" $flags --out "$W/$which/$name.vitq" --quiet \
      >/dev/null
  done
  same=yes
  cmp -s "$W/A/$name.vitq" "$W/B/$name.vitq" || { same=NO; status=1; }
  read -r ta ma <"$W/A/$name.time"
  read -r tb mb <"$W/B/$name.time"
  echo "| $name.vitq | $ta, $((ma / 1024)) | $tb, $((mb / 1024)) | $same |"
done
exit "$status"
