// Building blocks of the `vitq` method (search stage); see lowbit.h and docs/METHOD.md.
#include "lowbit.h"

#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "vitq/quant.h"

extern "C" void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
extern "C" void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);

namespace vitq::search {
namespace {

constexpr int64_t kMaxSample = 1 << 16;

// Every stride-th value of x, at most kMaxSample of them (deterministic).
std::vector<float> Sample(const float* x, int64_t n) {
  const int64_t stride = std::max<int64_t>(1, (n + kMaxSample - 1) / kMaxSample);
  std::vector<float> s;
  s.reserve(static_cast<size_t>(n / stride + 1));
  for (int64_t i = 0; i < n; i += stride) s.push_back(x[i]);
  return s;
}

// Σ (x - Q(x))² for one grid, as the fake-quant path computes Q.
double GridError(const std::vector<float>& x, float scale, int32_t zero_point, int qmin, int qmax) {
  double e = 0;
  const int64_t n = static_cast<int64_t>(x.size());
#pragma omp parallel for reduction(+ : e) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float q =
        static_cast<float>(QuantizeValue(x[i], scale, zero_point, qmin, qmax) - zero_point) * scale;
    const double d = static_cast<double>(x[i]) - q;
    e += d * d;
  }
  return e;
}

// The output error ||(Q(x) - x) wᵀ||² of a linear layer's input grid Q, on at most 512 evenly
// strided rows of x [rows, k] (w [n, k]): what SearchInputGrid and SearchRowInputGrid minimize.
class InputGridError {
 public:
  InputGridError(const float* x, int64_t rows, int k, const float* w, int n) : k_(k), n_(n), w_(w) {
    const int64_t stride = std::max<int64_t>(1, rows / 512);
    for (int64_t r = 0; r < rows; r += stride) xs_.insert(xs_.end(), x + r * k, x + (r + 1) * k);
    m_ = static_cast<int>(xs_.size() / k);
    e_.resize(xs_.size());
    y_.resize(static_cast<size_t>(m_) * n);
  }
  double operator()(const SitePlan& g) {
    const int64_t len = static_cast<int64_t>(xs_.size());
    if (g.scheme.kind == QuantKind::kUniformRow) {
      FakeQuantizeUniformRows(xs_.data(), len, k_, g.params.scale[0], g.scheme.bits, e_.data());
    } else {
      FakeQuantize(xs_.data(), len, g.params.scale[0], g.params.zero_point[0], g.scheme.qmin(),
                   g.scheme.qmax(), e_.data());
    }
    for (size_t i = 0; i < e_.size(); ++i) e_[i] -= xs_[i];
    dnnl_sgemm('N', 'T', m_, n_, k_, 1.0f, e_.data(), k_, w_, k_, 0.0f, y_.data(), n_);
    double s2 = 0;
    for (float v : y_) s2 += static_cast<double>(v) * v;
    return s2;
  }

 private:
  int k_, n_, m_ = 0;
  const float* w_;
  std::vector<float> xs_, e_, y_;
};

}  // namespace

SitePlan SearchActivationGrid(const float* x, int64_t n, int bits, bool asymmetric, bool unsigned8,
                              bool zero_point8) {
  float lo = 0.f, hi = 0.f;
#pragma omp parallel for reduction(min : lo) reduction(max : hi)
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const std::vector<float> s = Sample(x, n);
  SitePlan best;
  best.scheme.bits = bits;
  double best_err = INFINITY;
  if (!asymmetric || (bits == 8 && !((unsigned8 && lo >= 0) || zero_point8))) {
    best.scheme = SymmetricScheme(bits);
    const int qmin = best.scheme.qmin(), qmax = best.scheme.qmax();
    const float m = std::max(-lo, hi);
    best.params = {{m > 0 ? m / qmax : 1.0f}, {0}};
    if (m <= 0) return best;
    for (int i = 0; i <= 80; ++i) {  // clipping ratios 1.0 .. 0.2
      const float scale = m * (1.0f - 0.01f * i) / qmax;
      const double e = GridError(s, scale, 0, qmin, qmax);
      if (e < best_err) {
        best_err = e;
        best.params.scale = {scale};
      }
    }
    return best;
  }
  best.scheme.symmetric = false;
  best.scheme.is_signed = false;
  const int qmax = best.scheme.qmax();
  best.params = {{1.0f}, {0}};
  if (hi <= lo) return best;
  // Clipping ratios of the upper and the lower end (the lower end only when x has negatives).
  const int hi_steps = 40, lo_steps = lo < 0 ? 10 : 0;
  for (int a = 0; a <= hi_steps; ++a) {
    const float h = hi * (1.0f - 0.02f * a);
    for (int b = 0; b <= lo_steps; ++b) {
      const float l = lo * (1.0f - 0.08f * b);
      if (h <= l) continue;
      const float scale = (h - l) / static_cast<float>(qmax);
      const int32_t z =
          std::clamp(static_cast<int32_t>(std::nearbyint(-l / scale)), int32_t{0}, qmax);
      const double e = GridError(s, scale, z, 0, qmax);
      if (e < best_err) {
        best_err = e;
        best.params = {{scale}, {z}};
      }
    }
  }
  return best;
}

SitePlan SearchInputGrid(const float* x, int64_t rows, int k, const float* w, int n, int bits,
                         bool asymmetric, bool zero_point8) {
  SitePlan best = SearchActivationGrid(x, rows * k, bits, asymmetric, false, zero_point8);
  InputGridError output_error(x, rows, k, w, n);
  double best_err = output_error(best);
  const float scale = best.params.scale[0];
  if (best.scheme.symmetric) {
    const float top = scale * best.scheme.qmax();
    for (int a = -10; a <= 10; ++a) {
      SitePlan g = best;
      g.params.scale = {top * (1.0f + 0.03f * a) / best.scheme.qmax()};
      if (!(g.params.scale[0] > 0)) continue;
      const double err = output_error(g);
      if (err < best_err) {
        best_err = err;
        best = g;
      }
    }
    return best;
  }
  // Asymmetric: the grid spans [lo, hi] = [-z s, (qmax - z) s]; move each end in turn.
  const int qmax = best.scheme.qmax();
  for (int end = 0; end < 2; ++end) {
    const float s0 = best.params.scale[0];
    const float lo0 = -best.params.zero_point[0] * s0,
                hi0 = (qmax - best.params.zero_point[0]) * s0;
    if (end == 1 && lo0 >= 0) break;
    for (int a = -10; a <= 10; ++a) {
      const float f = 1.0f + 0.03f * a;
      const float lo = end == 0 ? lo0 : lo0 * f, hi = end == 0 ? hi0 * f : hi0;
      if (!(hi > lo)) continue;
      SitePlan g = best;
      const float sc = (hi - lo) / qmax;
      g.params.scale = {sc};
      g.params.zero_point = {
          std::clamp(static_cast<int32_t>(std::nearbyint(-lo / sc)), int32_t{0}, qmax)};
      const double err = output_error(g);
      if (err < best_err) {
        best_err = err;
        best = g;
      }
    }
  }
  return best;
}

SitePlan SearchRowInputGrid(const float* x, int64_t rows, int k, const float* w, int n, int bits) {
  SitePlan best;
  best.scheme.bits = bits;
  best.scheme.symmetric = false;
  best.scheme.is_signed = false;
  best.scheme.kind = QuantKind::kUniformRow;
  const int qmax = best.scheme.qmax();
  InputGridError output_error(x, rows, k, w, n);
  double best_err = INFINITY;
  for (int a = 0; a <= 25; ++a) {  // the step 1 / qmax .. 1 / (2 qmax) of each row's range
    SitePlan g = best;
    g.params = {{1.0f / (qmax * (1.0f + 0.04f * a))}, {0}};
    const double err = output_error(g);
    if (err < best_err) {
      best_err = err;
      best = g;
    }
  }
  return best;
}

std::vector<float> SearchWeightScales(const float* w, int rows, int cols, int bits,
                                      bool per_channel) {
  const QuantScheme sc = SymmetricScheme(bits);
  const int qmin = sc.qmin(), qmax = sc.qmax();
  auto search = [&](const float* v, int64_t n) {
    float m = 0.f;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(v[i]));
    if (m <= 0) return 1.0f;
    float best = m / qmax;
    double best_err = INFINITY;
    for (int a = 0; a <= 50; ++a) {  // clipping ratios 1.0 .. 0.5
      const float scale = m * (1.0f - 0.01f * a) / qmax;
      double e = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double d =
            v[i] - static_cast<float>(QuantizeValue(v[i], scale, 0, qmin, qmax)) * scale;
        e += d * d;
      }
      if (e < best_err) {
        best_err = e;
        best = scale;
      }
    }
    return best;
  };
  if (!per_channel) return {search(w, static_cast<int64_t>(rows) * cols)};
  std::vector<float> out(rows);
#pragma omp parallel for schedule(dynamic, 8)
  for (int r = 0; r < rows; ++r) out[r] = search(w + static_cast<int64_t>(r) * cols, cols);
  return out;
}

std::vector<double> InputHessian(const float* x, int64_t rows, int k) {
  std::vector<float> h(static_cast<size_t>(k) * k, 0.f);
  // Row-major C[k, k] = Xᵀ X in chunks of rows (oneDNN's sgemm takes int dimensions).
  const int64_t chunk = 1 << 20;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t m = std::min(chunk, rows - r0);
    dnnl_sgemm('T', 'N', k, k, m, 1.0f, x + r0 * k, k, x + r0 * k, k, r0 == 0 ? 0.0f : 1.0f,
               h.data(), k);
  }
  return std::vector<double>(h.begin(), h.end());
}

void RoundToGrid(float* w, int rows, int cols, const std::vector<float>& scales, int bits) {
  const QuantScheme sc = SymmetricScheme(bits);
#pragma omp parallel for
  for (int r = 0; r < rows; ++r) {
    const float s = scales.size() > 1 ? scales[r] : scales[0];
    float* row = w + static_cast<int64_t>(r) * cols;
    for (int c = 0; c < cols; ++c)
      row[c] = static_cast<float>(QuantizeValue(row[c], s, 0, sc.qmin(), sc.qmax())) * s;
  }
}

Status GptqQuantize(float* w, int rows, int cols, std::vector<double> h,
                    const std::vector<float>& scales, int bits, bool act_order, double damp) {
  const int k = cols;
  if (h.size() != static_cast<size_t>(k) * k) {
    return Status::InvalidInput("GPTQ: Hessian of " + std::to_string(h.size()) +
                                " values for a layer with " + std::to_string(k) + " inputs");
  }
  const QuantScheme sc = SymmetricScheme(bits);
  const int qmin = sc.qmin(), qmax = sc.qmax();
  // Dead inputs: always zero, so their weights never matter; fix them at zero.
  std::vector<char> dead(k, 0);
  for (int i = 0; i < k; ++i) {
    if (h[static_cast<size_t>(i) * k + i] <= 0) {
      dead[i] = 1;
      h[static_cast<size_t>(i) * k + i] = 1;
    }
  }
  std::vector<int> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  if (act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) {
      return h[static_cast<size_t>(a) * k + a] > h[static_cast<size_t>(b) * k + b];
    });
  }
  std::vector<double> hp(static_cast<size_t>(k) * k);
  double mean_diag = 0;
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j < k; ++j)
      hp[static_cast<size_t>(i) * k + j] = h[static_cast<size_t>(perm[i]) * k + perm[j]];
    mean_diag += hp[static_cast<size_t>(i) * k + i];
  }
  mean_diag /= k;
  // (H + λI)^-1 and its upper Cholesky factor U (Hinv = UᵀU). On a row-major symmetric matrix,
  // LAPACK's column-major 'L' factor is U in the row-major view.
  std::vector<double> u;
  int info = 1;
  for (int attempt = 0; attempt < 6 && info != 0; ++attempt) {
    u = hp;
    const double lambda = damp * std::pow(10.0, attempt) * mean_diag;
    for (int i = 0; i < k; ++i) u[static_cast<size_t>(i) * k + i] += lambda;
    dpotrf_("L", &k, u.data(), &k, &info);
    if (info != 0) continue;
    dpotri_("L", &k, u.data(), &k, &info);
    if (info != 0) continue;
    for (int i = 0; i < k; ++i) {  // mirror the row-major upper triangle
      for (int j = i + 1; j < k; ++j)
        u[static_cast<size_t>(j) * k + i] = u[static_cast<size_t>(i) * k + j];
    }
    dpotrf_("L", &k, u.data(), &k, &info);
  }
  if (info != 0) {
    return Status::InvalidInput(
        "GPTQ: the layer's input Hessian is not positive definite "
        "(LAPACK info " +
        std::to_string(info) + ")");
  }
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j < i; ++j) u[static_cast<size_t>(i) * k + j] = 0;
  }
  // Rows are independent given U; blocks of rows share each pass over U.
  constexpr int kRowBlock = 16;
  const int blocks = (rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(dynamic, 1)
  for (int blk = 0; blk < blocks; ++blk) {
    const int r0 = blk * kRowBlock, nr = std::min(kRowBlock, rows - r0);
    std::vector<double> wb(static_cast<size_t>(nr) * k);
    for (int r = 0; r < nr; ++r) {
      const float* src = w + static_cast<int64_t>(r0 + r) * cols;
      for (int j = 0; j < k; ++j)
        wb[static_cast<size_t>(r) * k + j] = dead[perm[j]] ? 0.0 : src[perm[j]];
    }
    for (int j = 0; j < k; ++j) {
      const double* urow = u.data() + static_cast<size_t>(j) * k;
      const double d = urow[j];
      for (int r = 0; r < nr; ++r) {
        double* row = wb.data() + static_cast<size_t>(r) * k;
        const float s = scales.size() > 1 ? scales[r0 + r] : scales[0];
        const float wq =
            static_cast<float>(QuantizeValue(static_cast<float>(row[j]), s, 0, qmin, qmax)) * s;
        const double err = (row[j] - wq) / d;
        row[j] = wq;
        for (int c = j + 1; c < k; ++c) row[c] -= err * urow[c];
      }
    }
    for (int r = 0; r < nr; ++r) {
      float* dst = w + static_cast<int64_t>(r0 + r) * cols;
      for (int j = 0; j < k; ++j)
        dst[perm[j]] = static_cast<float>(wb[static_cast<size_t>(r) * k + j]);
    }
  }
  return Status::Ok();
}

LnFold ComputeLnFold(const float* x, int64_t rows, int d, bool centred) {
  std::vector<float> lo(d, INFINITY), hi(d, -INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * d;
    for (int c = 0; c < d; ++c) {
      lo[c] = std::min(lo[c], row[c]);
      hi[c] = std::max(hi[c], row[c]);
    }
  }
  LnFold f;
  f.r.assign(d, 1.0f);
  f.m.assign(d, 0.0f);
  std::vector<float> half(d);
  double sum = 0;
  int live = 0;
  float widest = 0;
  for (int c = 0; c < d; ++c) {
    if (centred) f.m[c] = 0.5f * (lo[c] + hi[c]);
    half[c] = centred ? 0.5f * (hi[c] - lo[c]) : std::max(std::fabs(lo[c]), std::fabs(hi[c]));
    widest = std::max(widest, half[c]);
  }
  for (int c = 0; c < d; ++c) {
    if (half[c] > 1e-6f * widest) {
      sum += half[c];
      ++live;
    }
  }
  if (live == 0) return f;
  const float mean_half = static_cast<float>(sum / live);
  for (int c = 0; c < d; ++c) {
    if (half[c] > 1e-6f * widest) f.r[c] = half[c] / mean_half;
  }
  return f;
}

void FoldLayerNorm(const LnFold& f, Tensor* gamma, Tensor* beta,
                   const std::vector<LinearWeights*>& consumers) {
  const int64_t d = gamma->size();
  for (LinearWeights* l : consumers) {
    const int64_t n = l->weight.dim(0);
    float* wt = l->weight.f32();
    float* b = l->bias.f32();
    for (int64_t o = 0; o < n; ++o) {
      float* row = wt + o * d;
      double shift = 0;
      for (int64_t c = 0; c < d; ++c) {
        shift += static_cast<double>(row[c]) * f.m[c];
        row[c] *= f.r[c];
      }
      b[o] += static_cast<float>(shift);
    }
  }
  for (int64_t c = 0; c < d; ++c) {
    gamma->f32()[c] /= f.r[c];
    beta->f32()[c] = (beta->f32()[c] - f.m[c]) / f.r[c];
  }
}

void ApplyLnFold(const LnFold& f, float* x, int64_t rows, int d) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * d;
    for (int c = 0; c < d; ++c) row[c] = (row[c] - f.m[c]) / f.r[c];
  }
}

}  // namespace vitq::search
