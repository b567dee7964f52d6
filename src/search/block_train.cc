// One ViT block with fake quantizers, forward and backward (search stage; block_train.h).
#include "block_train.h"

#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "vitq/quant.h"

namespace vitq::search {
namespace {

constexpr double kZeta = 1.1, kGamma = -0.1;

// Counter-based uniform in [0, 1): the same value for the same (seed, index) on any thread.
inline double Uniform(uint64_t seed, uint64_t index) {
  return SplitMixUniform(seed + (index + 1) * kGoldenGamma);
}

// Sums of per-chunk partials in chunk order: the same result for any thread count.
constexpr int64_t kChunk = 4096;

template <typename T>
T GeluErf(T x) {
  return static_cast<T>(0.5) * x * (1 + std::erf(x * static_cast<T>(M_SQRT1_2)));
}
template <typename T>
T GeluErfGrad(T x) {
  const T cdf = static_cast<T>(0.5) * (1 + std::erf(x * static_cast<T>(M_SQRT1_2)));
  const T pdf = std::exp(-static_cast<T>(0.5) * x * x) * static_cast<T>(0.3989422804014327);
  return cdf + x * pdf;
}

template <typename T>
void LayerNormForward(const T* x, int64_t rows, int d, const T* g, const T* b, double eps, T* xhat,
                      T* rstd, T* y) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    double mean = 0, var = 0;
    for (int c = 0; c < d; ++c) mean += xr[c];
    mean /= d;
    for (int c = 0; c < d; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= d;
    const double rs = 1.0 / std::sqrt(var + eps);
    rstd[r] = static_cast<T>(rs);
    for (int c = 0; c < d; ++c) {
      const T xh = static_cast<T>((xr[c] - mean) * rs);
      xhat[r * d + c] = xh;
      y[r * d + c] = xh * g[c] + b[c];
    }
  }
}

// dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy g; added into dx.
template <typename T>
void LayerNormBackward(const T* dy, const T* xhat, const T* rstd, int64_t rows, int d, const T* g,
                       T* dx) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    double m1 = 0, m2 = 0;
    for (int c = 0; c < d; ++c) {
      const double dxh = static_cast<double>(dy[r * d + c]) * g[c];
      m1 += dxh;
      m2 += dxh * xhat[r * d + c];
    }
    m1 /= d;
    m2 /= d;
    for (int c = 0; c < d; ++c) {
      const double dxh = static_cast<double>(dy[r * d + c]) * g[c];
      dx[r * d + c] += static_cast<T>(rstd[r] * (dxh - m1 - xhat[r * d + c] * m2));
    }
  }
}

}  // namespace

double RectifiedSigmoid(double v) {
  const double s = 1.0 / (1.0 + std::exp(-v));
  return std::clamp(s * (kZeta - kGamma) + kGamma, 0.0, 1.0);
}

double RectifiedSigmoidGrad(double v) {
  const double s = 1.0 / (1.0 + std::exp(-v));
  const double pre = s * (kZeta - kGamma) + kGamma;
  if (pre <= 0.0 || pre >= 1.0) return 0.0;
  return (kZeta - kGamma) * s * (1.0 - s);
}

double RectifiedSigmoidInverse(double frac) {
  const double s = (std::clamp(frac, 0.0, 1.0) - kGamma) / (kZeta - kGamma);
  return -std::log(1.0 / s - 1.0);
}

template <>
void Gemm<float>(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                 int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c,
             ldc);
}

template <>
void Gemm<double>(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a,
                  int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p) {
        const double av =
            trans_a ? a[static_cast<int64_t>(p) * lda + i] : a[static_cast<int64_t>(i) * lda + p];
        const double bv =
            trans_b ? b[static_cast<int64_t>(j) * ldb + p] : b[static_cast<int64_t>(p) * ldb + j];
        s += av * bv;
      }
      double& cv = c[static_cast<int64_t>(i) * ldc + j];
      cv = alpha * s + (beta == 0 ? 0.0 : beta * cv);
    }
  }
}

// ---------------------------------------------------------------- TrainLinear

template <typename T>
void TrainLinear<T>::InitRounding(const std::vector<float>* init_codes) {
  const int64_t size = static_cast<int64_t>(n) * k;
  floor_w.assign(size, 0);
  v.assign(size, 0);
  for (int r = 0; r < n; ++r) {
    const double s = scale.size() == 1 ? scale[0] : scale[r];
    for (int c = 0; c < k; ++c) {
      const int64_t i = static_cast<int64_t>(r) * k + c;
      const double u = w[i] / s;
      const double f = std::floor(u);
      floor_w[i] = static_cast<T>(f);
      double frac = u - f;
      if (init_codes != nullptr) frac = (*init_codes)[i] > f ? 0.75 : 0.25;
      v[i] = static_cast<T>(RectifiedSigmoidInverse(frac));
    }
  }
  quantize = true;
  Materialize();
}

template <typename T>
void TrainLinear<T>::Materialize() {
  const int64_t size = static_cast<int64_t>(n) * k;
  wq.resize(size);
  if (!quantize) {
    std::copy(w.begin(), w.end(), wq.begin());
    return;
  }
#pragma omp parallel for
  for (int r = 0; r < n; ++r) {
    const double s = scale.size() == 1 ? scale[0] : scale[r];
    for (int c = 0; c < k; ++c) {
      const int64_t i = static_cast<int64_t>(r) * k + c;
      const double h = RectifiedSigmoid(v[i]);
      const double code = floor_w[i] + (hard ? (h >= 0.5 ? 1.0 : 0.0) : h);
      wq[i] = static_cast<T>(
          s * std::clamp(code, static_cast<double>(qmin), static_cast<double>(qmax)));
    }
  }
}

template <typename T>
std::vector<float> TrainLinear<T>::HardWeights() const {
  std::vector<float> out(static_cast<size_t>(n) * k);
  for (int r = 0; r < n; ++r) {
    const float s = static_cast<float>(scale.size() == 1 ? scale[0] : scale[r]);
    for (int c = 0; c < k; ++c) {
      const int64_t i = static_cast<int64_t>(r) * k + c;
      const double code = std::clamp(floor_w[i] + (RectifiedSigmoid(v[i]) >= 0.5 ? 1.0 : 0.0),
                                     static_cast<double>(qmin), static_cast<double>(qmax));
      out[i] = static_cast<float>(code) * s;
    }
  }
  return out;
}

// λ Σ (1 - |2h - 1|^β); its gradient with respect to v is added into grad (scaled by `weight`).
template <typename T>
double TrainLinear<T>::RoundingRegularizer(double beta, std::vector<double>* grad,
                                           double weight) const {
  const int64_t size = static_cast<int64_t>(n) * k;
  const int64_t chunks = (size + kChunk - 1) / kChunk;
  std::vector<double> part(chunks, 0.0);
#pragma omp parallel for
  for (int64_t ch = 0; ch < chunks; ++ch) {
    double s = 0;
    for (int64_t i = ch * kChunk; i < std::min(size, (ch + 1) * kChunk); ++i) {
      const double h = RectifiedSigmoid(v[i]);
      const double a = 2 * h - 1;
      const double pa = std::pow(std::fabs(a), beta - 1);
      s += 1 - pa * std::fabs(a);
      if (grad != nullptr) {
        const double dh = RectifiedSigmoidGrad(v[i]);
        (*grad)[i] += weight * (-beta * pa * (a < 0 ? -1.0 : 1.0) * 2 * dh);
      }
    }
    part[ch] = s;
  }
  double total = 0;
  for (double p : part) total += p;
  return weight * total;
}

// ---------------------------------------------------------------- TrainBlock

template <typename T>
const char* TrainBlock<T>::SiteName(int site) {
  static const char* kNames[] = {"attn.qkv:in", "attn.qk:a",    "attn.qk:b",  "attn.pv:a",
                                 "attn.pv:b",   "attn.proj:in", "mlp.fc1:in", "mlp.fc2:in"};
  return kNames[site];
}

template <typename T>
void TrainBlock<T>::Quantize(int site, const T* x, int64_t n, T* out, uint64_t seed,
                             std::vector<uint8_t>* kept, int64_t row_len) {
  const TrainActQuant<T>& q = act[site];
  kept->assign(n, 0);
  if (!q.active) {
    if (out != x) std::memcpy(out, x, n * sizeof(T));
    return;
  }
  const uint64_t site_seed = seed ^ (static_cast<uint64_t>(site + 1) << 56);
  const int max_code = LogMaxCode(q.bits);
  const float s = static_cast<float>(q.scale);
  // kLogSqrt2Row: each row's maximum (the scale is relative to it; a constant for the gradient).
  std::vector<float> row_max;
  if (q.log_row) {
    const int64_t rows = n / row_len;
    row_max.assign(rows, 0.0f);
#pragma omp parallel for
    for (int64_t r = 0; r < rows; ++r) {
      float m = 0.0f;
      for (int64_t j = 0; j < row_len; ++j) m = std::max(m, static_cast<float>(x[r * row_len + j]));
      row_max[r] = m;
    }
  }
  // kUniformRow: each row's grid from its range (a constant for the gradient).
  std::vector<float>& step = row_step_[site];
  std::vector<float>& zero = row_zero_[site];
  if (q.uniform_row) {
    const int64_t rows = n / row_len;
    step.assign(rows, 1.0f);
    zero.assign(rows, 0.0f);
#pragma omp parallel for
    for (int64_t r = 0; r < rows; ++r) {
      float lo = 0.0f, hi = 0.0f;
      for (int64_t j = 0; j < row_len; ++j) {
        lo = std::min(lo, static_cast<float>(x[r * row_len + j]));
        hi = std::max(hi, static_cast<float>(x[r * row_len + j]));
      }
      const RowGrid g = RowGridOfRange(lo, hi, s, q.qmax);
      step[r] = g.step;
      zero[r] = static_cast<float>(g.zero);
    }
  }
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    if (drop_prob > 0 && Uniform(site_seed, i) < drop_prob) {
      (*kept)[i] = 1;
      out[i] = x[i];
      continue;
    }
    const float xv = static_cast<float>(x[i]);
    if (q.uniform_row) {
      const float st = step[i / row_len], z = zero[i / row_len];
      const float c = QuantizeToGrid(xv / st, 0.0f, static_cast<float>(q.qmax), z);
      out[i] = static_cast<T>((c - z) * st);
    } else if (q.log) {
      const float sr = q.log_row ? s * row_max[i / row_len] : s;
      const int code = sr > 0.0f ? LogSqrt2Code(xv, sr, max_code) : -1;
      out[i] = code < 0 ? T(0) : static_cast<T>(LogSqrt2Value(code, sr));
    } else {
      const int32_t c = QuantizeValue(xv, s, q.zero_point, q.qmin, q.qmax);
      out[i] = static_cast<T>(c - q.zero_point) * q.scale;
    }
  }
}

// grad (d loss / d output) becomes d loss / d input in place (straight through inside the grid,
// 0 where clamped); the LSQ step gradient goes to act[site].grad.
template <typename T>
void TrainBlock<T>::QuantizeBackward(int site, const T* x, const std::vector<uint8_t>& kept,
                                     int64_t n, T* grad) {
  TrainActQuant<T>& q = act[site];
  q.grad = 0;
  if (q.active && q.uniform_row) {  // straight through inside each row's grid, 0 where clamped
    if (row_step_[site].empty()) return;
    const int64_t row_len = n / static_cast<int64_t>(row_step_[site].size());
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i) {
      if (kept[i]) continue;
      const float st = row_step_[site][i / row_len], z = row_zero_[site][i / row_len];
      const float code = __builtin_nearbyintf(static_cast<float>(x[i]) / st) + z;
      if (code < 0.0f || code > static_cast<float>(q.qmax)) grad[i] = 0;
    }
    return;
  }
  if (!q.active || q.log) return;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(chunks, 0.0);
  const double s = q.scale;
#pragma omp parallel for
  for (int64_t ch = 0; ch < chunks; ++ch) {
    double gs = 0;
    for (int64_t i = ch * kChunk; i < std::min(n, (ch + 1) * kChunk); ++i) {
      if (kept[i]) continue;
      const double u = static_cast<double>(static_cast<float>(x[i]) / static_cast<float>(s));
      const double r = std::nearbyint(u);
      const double code = r + q.zero_point;
      if (code < q.qmin) {
        gs += (q.qmin - q.zero_point) * static_cast<double>(grad[i]);
        grad[i] = 0;
      } else if (code > q.qmax) {
        gs += (q.qmax - q.zero_point) * static_cast<double>(grad[i]);
        grad[i] = 0;
      } else {
        gs += (r - u) * static_cast<double>(grad[i]);
      }
    }
    part[ch] = gs;
  }
  double total = 0;
  for (double p : part) total += p;
  q.grad = q.learn ? total : 0.0;
}

template <typename T>
void TrainBlock<T>::LinearForward(TrainLinear<T>& l, const T* x, int m, T* y) {
#pragma omp parallel for
  for (int r = 0; r < m; ++r)
    std::memcpy(y + static_cast<int64_t>(r) * l.n, l.bias.data(), l.n * sizeof(T));
  Gemm<T>(false, true, m, l.n, l.k, T(1), x, l.k, l.wq.data(), l.k, T(1), y, l.n);
}

// dx = dy W (overwritten); d loss / d wq = dyᵀ x into l.grad_w; grad_v from it when quantized.
template <typename T>
void TrainBlock<T>::LinearBackward(TrainLinear<T>& l, const T* x, const T* dy, int m, T* dx) {
  Gemm<T>(false, false, m, l.k, l.n, T(1), dy, l.n, l.wq.data(), l.k, T(0), dx, l.k);
  if (!l.quantize) return;
  l.grad_w.resize(static_cast<size_t>(l.n) * l.k);
  Gemm<T>(true, false, l.n, l.k, m, T(1), dy, l.n, x, l.k, T(0), l.grad_w.data(), l.k);
  l.grad_v.assign(l.grad_w.size(), 0.0);
  if (l.hard) return;
#pragma omp parallel for
  for (int r = 0; r < l.n; ++r) {
    const double s = l.scale.size() == 1 ? l.scale[0] : l.scale[r];
    for (int c = 0; c < l.k; ++c) {
      const int64_t i = static_cast<int64_t>(r) * l.k + c;
      const double code = l.floor_w[i] + RectifiedSigmoid(l.v[i]);
      if (code < l.qmin || code > l.qmax) continue;
      l.grad_v[i] = l.grad_w[i] * s * RectifiedSigmoidGrad(l.v[i]);
    }
  }
}

template <typename T>
void TrainBlock<T>::Forward(const T* x, int batch, T* out, uint64_t drop_seed) {
  batch_ = batch;
  const int t = tokens, d = dim, nh = heads, hd = dim / heads, hid = hidden;
  const int64_t m = static_cast<int64_t>(batch) * t;
  const T attn_scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));
  for (TrainLinear<T>* l : {&qkv, &proj, &fc1, &fc2})
    if (l->wq.empty()) l->Materialize();
  x_.assign(x, x + m * d);
  xhat1_.resize(m * d);
  rstd1_.resize(m);
  ln1_.resize(m * d);
  LayerNormForward(x, m, d, norm1_w.data(), norm1_b.data(), eps, xhat1_.data(), rstd1_.data(),
                   ln1_.data());
  a1_.resize(m * d);
  Quantize(kQkvIn, ln1_.data(), m * d, a1_.data(), drop_seed, &kept_[kQkvIn]);
  qkv_.resize(m * 3 * d);
  LinearForward(qkv, a1_.data(), static_cast<int>(m), qkv_.data());
  const int64_t hsize = m * d;
  q_.resize(hsize);
  k_.resize(hsize);
  v_.resize(hsize);
#pragma omp parallel for collapse(2)
  for (int bi = 0; bi < batch; ++bi) {
    for (int ti = 0; ti < t; ++ti) {
      const T* row = qkv_.data() + (static_cast<int64_t>(bi) * t + ti) * 3 * d;
      for (int hi = 0; hi < nh; ++hi) {
        const int64_t off = ((static_cast<int64_t>(bi) * nh + hi) * t + ti) * hd;
        std::memcpy(q_.data() + off, row + hi * hd, hd * sizeof(T));
        std::memcpy(k_.data() + off, row + d + hi * hd, hd * sizeof(T));
        std::memcpy(v_.data() + off, row + 2 * d + hi * hd, hd * sizeof(T));
      }
    }
  }
  qa_.resize(hsize);
  kb_.resize(hsize);
  vq_.resize(hsize);
  Quantize(kQkA, q_.data(), hsize, qa_.data(), drop_seed, &kept_[kQkA]);
  Quantize(kQkB, k_.data(), hsize, kb_.data(), drop_seed, &kept_[kQkB]);
  Quantize(kPvB, v_.data(), hsize, vq_.data(), drop_seed, &kept_[kPvB]);
  const int64_t psize = static_cast<int64_t>(batch) * nh * t * t;
  p_.resize(psize);
  pq_.resize(psize);
  const int bh = batch * nh;
#pragma omp parallel for
  for (int i = 0; i < bh; ++i) {
    const int64_t qo = static_cast<int64_t>(i) * t * hd, po = static_cast<int64_t>(i) * t * t;
    Gemm<T>(false, true, t, t, hd, attn_scale, qa_.data() + qo, hd, kb_.data() + qo, hd, T(0),
            p_.data() + po, t);
    for (int r = 0; r < t; ++r) {
      T* row = p_.data() + po + static_cast<int64_t>(r) * t;
      T mx = row[0];
      for (int c = 1; c < t; ++c) mx = std::max(mx, row[c]);
      double sum = 0;
      for (int c = 0; c < t; ++c) {
        row[c] = std::exp(row[c] - mx);
        sum += row[c];
      }
      const T inv = static_cast<T>(1.0 / sum);
      for (int c = 0; c < t; ++c) row[c] *= inv;
    }
  }
  Quantize(kPvA, p_.data(), psize, pq_.data(), drop_seed, &kept_[kPvA], t);
  o_.resize(hsize);
  std::vector<T>& oh = Work(0, hsize);
#pragma omp parallel for
  for (int i = 0; i < bh; ++i) {
    const int64_t qo = static_cast<int64_t>(i) * t * hd, po = static_cast<int64_t>(i) * t * t;
    Gemm<T>(false, false, t, hd, t, T(1), pq_.data() + po, t, vq_.data() + qo, hd, T(0),
            oh.data() + qo, hd);
  }
#pragma omp parallel for collapse(2)
  for (int bi = 0; bi < batch; ++bi) {
    for (int hi = 0; hi < nh; ++hi) {
      for (int ti = 0; ti < t; ++ti) {
        std::memcpy(o_.data() + (static_cast<int64_t>(bi) * t + ti) * d + hi * hd,
                    oh.data() + ((static_cast<int64_t>(bi) * nh + hi) * t + ti) * hd,
                    hd * sizeof(T));
      }
    }
  }
  a2_.resize(hsize);
  Quantize(kProjIn, o_.data(), hsize, a2_.data(), drop_seed, &kept_[kProjIn]);
  y1_.resize(hsize);
  LinearForward(proj, a2_.data(), static_cast<int>(m), y1_.data());
#pragma omp parallel for
  for (int64_t i = 0; i < hsize; ++i) y1_[i] += x[i];
  xhat2_.resize(hsize);
  rstd2_.resize(m);
  ln2_.resize(hsize);
  LayerNormForward(y1_.data(), m, d, norm2_w.data(), norm2_b.data(), eps, xhat2_.data(),
                   rstd2_.data(), ln2_.data());
  a3_.resize(hsize);
  Quantize(kFc1In, ln2_.data(), hsize, a3_.data(), drop_seed, &kept_[kFc1In]);
  h_.resize(m * hid);
  g_.resize(m * hid);
  LinearForward(fc1, a3_.data(), static_cast<int>(m), h_.data());
#pragma omp parallel for
  for (int64_t i = 0; i < m * hid; ++i) g_[i] = GeluErf(h_[i]);
  a4_.resize(m * hid);
  Quantize(kFc2In, g_.data(), m * hid, a4_.data(), drop_seed, &kept_[kFc2In], hid);
  LinearForward(fc2, a4_.data(), static_cast<int>(m), out);
#pragma omp parallel for
  for (int64_t i = 0; i < hsize; ++i) out[i] += y1_[i];
}

template <typename T>
void TrainBlock<T>::Backward(const T* dout, T* dx) {
  const int batch = batch_, t = tokens, d = dim, nh = heads, hd = dim / heads, hid = hidden;
  const int64_t m = static_cast<int64_t>(batch) * t, hsize = m * d;
  const T attn_scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));
  // out = y1 + fc2(Q(gelu(fc1(Q(ln2(y1))))))
  std::vector<T>& dy1 = Work(1, hsize);
  std::copy(dout, dout + hsize, dy1.begin());
  std::vector<T>& da4 = Work(2, m * hid);
  LinearBackward(fc2, a4_.data(), dout, static_cast<int>(m), da4.data());
  QuantizeBackward(kFc2In, g_.data(), kept_[kFc2In], m * hid, da4.data());
#pragma omp parallel for
  for (int64_t i = 0; i < m * hid; ++i) da4[i] *= GeluErfGrad(h_[i]);
  std::vector<T>& da3 = Work(3, hsize);
  LinearBackward(fc1, a3_.data(), da4.data(), static_cast<int>(m), da3.data());
  QuantizeBackward(kFc1In, ln2_.data(), kept_[kFc1In], hsize, da3.data());
  LayerNormBackward(da3.data(), xhat2_.data(), rstd2_.data(), m, d, norm2_w.data(), dy1.data());
  // y1 = x + proj(Q(o))
  std::vector<T>& da2 = Work(4, hsize);
  LinearBackward(proj, a2_.data(), dy1.data(), static_cast<int>(m), da2.data());
  QuantizeBackward(kProjIn, o_.data(), kept_[kProjIn], hsize, da2.data());
  // o (merged heads) -> per head [B, H, T, hd]
  std::vector<T>& doh = Work(5, hsize);
#pragma omp parallel for collapse(2)
  for (int bi = 0; bi < batch; ++bi) {
    for (int hi = 0; hi < nh; ++hi) {
      for (int ti = 0; ti < t; ++ti) {
        std::memcpy(doh.data() + ((static_cast<int64_t>(bi) * nh + hi) * t + ti) * hd,
                    da2.data() + (static_cast<int64_t>(bi) * t + ti) * d + hi * hd, hd * sizeof(T));
      }
    }
  }
  const int bh = batch * nh;
  const int64_t psize = static_cast<int64_t>(bh) * t * t;
  std::vector<T>& dp = Work(6, psize);
  std::vector<T>& dv = Work(7, hsize);
  std::vector<T>& dq = Work(8, hsize);
  std::vector<T>& dk = Work(9, hsize);
#pragma omp parallel for
  for (int i = 0; i < bh; ++i) {
    const int64_t qo = static_cast<int64_t>(i) * t * hd, po = static_cast<int64_t>(i) * t * t;
    // O = Pq Vq: dPq = dO Vqᵀ, dVq = Pqᵀ dO
    Gemm<T>(false, true, t, t, hd, T(1), doh.data() + qo, hd, vq_.data() + qo, hd, T(0),
            dp.data() + po, t);
    Gemm<T>(true, false, t, hd, t, T(1), pq_.data() + po, t, doh.data() + qo, hd, T(0),
            dv.data() + qo, hd);
  }
  QuantizeBackward(kPvA, p_.data(), kept_[kPvA], psize, dp.data());
  QuantizeBackward(kPvB, v_.data(), kept_[kPvB], hsize, dv.data());
#pragma omp parallel for
  for (int i = 0; i < bh; ++i) {
    const int64_t qo = static_cast<int64_t>(i) * t * hd, po = static_cast<int64_t>(i) * t * t;
    for (int r = 0; r < t; ++r) {  // softmax: dS = P (dP - Σ dP P)
      T* dr = dp.data() + po + static_cast<int64_t>(r) * t;
      const T* pr = p_.data() + po + static_cast<int64_t>(r) * t;
      double dot = 0;
      for (int c = 0; c < t; ++c) dot += static_cast<double>(dr[c]) * pr[c];
      for (int c = 0; c < t; ++c) dr[c] = pr[c] * (dr[c] - static_cast<T>(dot));
    }
    // S = scale Qa Kbᵀ: dQa = scale dS Kb, dKb = scale dSᵀ Qa
    Gemm<T>(false, false, t, hd, t, attn_scale, dp.data() + po, t, kb_.data() + qo, hd, T(0),
            dq.data() + qo, hd);
    Gemm<T>(true, false, t, hd, t, attn_scale, dp.data() + po, t, qa_.data() + qo, hd, T(0),
            dk.data() + qo, hd);
  }
  QuantizeBackward(kQkA, q_.data(), kept_[kQkA], hsize, dq.data());
  QuantizeBackward(kQkB, k_.data(), kept_[kQkB], hsize, dk.data());
  std::vector<T>& dqkv = Work(10, m * 3 * d);
#pragma omp parallel for collapse(2)
  for (int bi = 0; bi < batch; ++bi) {
    for (int ti = 0; ti < t; ++ti) {
      T* row = dqkv.data() + (static_cast<int64_t>(bi) * t + ti) * 3 * d;
      for (int hi = 0; hi < nh; ++hi) {
        const int64_t off = ((static_cast<int64_t>(bi) * nh + hi) * t + ti) * hd;
        std::memcpy(row + hi * hd, dq.data() + off, hd * sizeof(T));
        std::memcpy(row + d + hi * hd, dk.data() + off, hd * sizeof(T));
        std::memcpy(row + 2 * d + hi * hd, dv.data() + off, hd * sizeof(T));
      }
    }
  }
  std::vector<T>& da1 = Work(11, hsize);
  LinearBackward(qkv, a1_.data(), dqkv.data(), static_cast<int>(m), da1.data());
  QuantizeBackward(kQkvIn, ln1_.data(), kept_[kQkvIn], hsize, da1.data());
  if (dx != nullptr) {
    std::copy(dy1.begin(), dy1.end(), dx);
    LayerNormBackward(da1.data(), xhat1_.data(), rstd1_.data(), m, d, norm1_w.data(), dx);
  }
}

template struct TrainLinear<float>;
template struct TrainLinear<double>;
template class TrainBlock<float>;
template class TrainBlock<double>;

}  // namespace vitq::search
