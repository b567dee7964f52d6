// omse: per tensor, the Δ on a grid of 100 points in [0.3, 1.0]·Δ0 minimizing ||T - Q(T)||²
// (method.md §2; Choukroun et al. 2019).
#include <cmath>

#include "methods.h"
#include "vitq/quant.h"

namespace vitq::search {
namespace {
float OmseScale(const float* x, int64_t n, int bits) {
  const float d0 = InitialScale(x, n, bits);
  const QuantScheme scheme = SymmetricScheme(bits);
  const int qmin = scheme.qmin(), qmax = scheme.qmax();
  float best = d0;
  double best_err = 1e300;
  for (int i = 0; i < 100; ++i) {
    float d = d0 * (0.3f + 0.7f * i / 99.0f);
    double err = 0;
#pragma omp parallel for reduction(+ : err)
    for (int64_t j = 0; j < n; ++j) {
      float e = x[j] - static_cast<float>(QuantizeValue(x[j], d, 0, qmin, qmax)) * d;
      err += static_cast<double>(e) * e;
    }
    if (err < best_err) {
      best_err = err;
      best = d;
    }
  }
  return best;
}
}  // namespace

OpResult RunOmse(const OpTensors& op, const MethodContext& mc) {
  OperandView x = OperandX(op), w = OperandW(op);
  return EvaluateFixed(op, mc, OmseScale(w.data, w.size, mc.bits_w),
                       OmseScale(x.data, x.size, mc.bits_x));
}

}  // namespace vitq::search
