#!/usr/bin/env bash
# The ONNX round trip in ONNX Runtime (ctest onnx_ort): the CIFAR-10 ViT quantized W8A8 (minmax,
# and vitq with its u8 P on one grid, --attn-quantizer uniform; 32 calibration images) and exported as Q/DQ, and the float model exported as ONNX, run in
# onnxruntime-node on 200 images; their top-1 must agree with vitq's integer engine and float
# engine. Skipped (exit 77) when node or onnxruntime-node is absent: bash ../shared/peers/setup.sh
# ort installs it into ~/.cache/vitq-peers, or set VITQ_ORT_NODE_MODULES.
# usage: onnx_ort_test.sh BUILD_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "$1" && pwd)"
MODULES="${VITQ_ORT_NODE_MODULES:-$HOME/.cache/vitq-peers/node_modules}"
if ! command -v node >/dev/null || [ ! -d "$MODULES/onnxruntime-node" ]; then
  echo "SKIPPED: node or onnxruntime-node not found (looked in $MODULES); run bash ../shared/peers/setup.sh ort or set VITQ_ORT_NODE_MODULES"
  exit 77
fi
export VITQ_ORT_NODE_MODULES="$MODULES"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
MODEL="$ROOT/models/vit-cifar10"
DATA="$ROOT/data/cifar10/calib"
N=200
"$BUILD/vitq" quantize "$MODEL" --calib "$DATA" --calib-size 32 --method minmax --out "$T/q.vitq" --quiet >/dev/null
"$BUILD/vitq" export "$T/q.vitq" --out "$T/q.onnx" >/dev/null
# vitq's method at W8A8: per-channel weights and P on one unsigned 8-bit grid (uint8 Q/DQ; the
# default per-row P has no Q/DQ form, see README "ONNX export").
"$BUILD/vitq" quantize "$MODEL" --calib "$DATA" --calib-size 32 --method vitq --attn-quantizer uniform \
  --out "$T/v.vitq" --quiet >/dev/null
"$BUILD/vitq" export "$T/v.vitq" --out "$T/v.onnx" >/dev/null
"$BUILD/vitq" export "$MODEL" --format onnx-float --out "$T/f.onnx" >/dev/null
"$BUILD/dump_inputs" "$MODEL" "$DATA" "$T/in" "$N" 2>/dev/null
mapfile -t IMAGES < <(/usr/bin/python3 -c 'import json,sys; [print(i["image"]) for i in json.load(open(sys.argv[1]))]' "$T/in.json")
fail=0
for kind in q v f; do
  src="$T/$kind.vitq"; [ $kind = f ] && src="$MODEL"
  node "$ROOT/tools/onnx_ort.js" predict "$T/$kind.onnx" "$T/in.f32" "$N" 32 "$T/ort_$kind.json"
  "$BUILD/vitq" predict "$src" "${IMAGES[@]}" --json --topk 1 --quiet >"$T/vitq_$kind.json"
  r=$(/usr/bin/python3 "$ROOT/tools/onnx_agreement.py" "$T/in.json" "$T/ort_$kind.json" "$T/vitq_$kind.json")
  echo "$kind: $r"
  # Float: the same model in another runtime (sums in another order): all but rare near-ties.
  # W8A8: values near a rounding boundary land on the neighbouring grid point in one runtime.
  min=0.99; [ $kind != f ] && min=0.97
  /usr/bin/python3 -c "import json,sys; sys.exit(0 if json.loads(sys.argv[1])['agreement'] >= $min else 1)" "$r" \
    || { echo "FAIL: $kind agreement below $min"; fail=1; }
done
exit $fail
