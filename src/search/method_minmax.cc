// minmax: Δ = max|T| / 2^(b-1) for weights and activations (method.md §2).
#include "methods.h"

namespace vitq::search {

OpResult RunMinMax(const OpTensors& op, const MethodContext& mc) {
  OperandView x = OperandX(op), w = OperandW(op);
  return EvaluateFixed(op, mc, InitialScale(w.data, w.size, mc.bits_w),
                       InitialScale(x.data, x.size, mc.bits_x));
}

}  // namespace vitq::search
