// percentile: activations clipped at the 99.99th percentile of |x| over the calibration set,
// weights by max (method.md §2). The second operand of a matmul (K, V) is an activation.
#include <algorithm>
#include <cmath>
#include <vector>

#include "methods.h"

namespace vitq::search {
namespace {
float PercentileScale(const float* x, int64_t n, int bits, double q) {
  std::vector<float> a(static_cast<size_t>(n));
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) a[i] = std::fabs(x[i]);
  int64_t k = std::min<int64_t>(n - 1, static_cast<int64_t>(std::ceil(q * (n - 1))));
  std::nth_element(a.begin(), a.begin() + k, a.end());
  float v = a[k];
  return v > 0 ? v / static_cast<float>(1 << (bits - 1)) : InitialScale(x, n, bits);
}
}  // namespace

OpResult RunPercentile(const OpTensors& op, const MethodContext& mc) {
  OperandView x = OperandX(op), w = OperandW(op);
  const double q = 0.9999;
  float sx = PercentileScale(x.data, x.size, mc.bits_x, q);
  float sw = op.is_matmul ? PercentileScale(w.data, w.size, mc.bits_w, q)
                          : InitialScale(w.data, w.size, mc.bits_w);
  return EvaluateFixed(op, mc, sw, sx);
}

}  // namespace vitq::search
