// minmax: Δ = max|T| / 2^(b-1) for weights and activations (method.md §2).
#include "methods.h"

namespace vitq::search {

OpResult RunMinMax(const OpTensors& op, const MethodContext& mc) {
  OperandView x = OperandX(op), w = OperandW(op);
  // Activations (X, and a matmul's second operand) may be split over an MPI job's processes.
  return EvaluateFixed(op, mc,
                       op.is_matmul ? GlobalInitialScale(w.data, w.size, mc.bits_w)
                                    : InitialScale(w.data, w.size, mc.bits_w),
                       GlobalInitialScale(x.data, x.size, mc.bits_x));
}

}  // namespace vitq::search
