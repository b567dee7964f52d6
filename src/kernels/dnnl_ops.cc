// oneDNN provider implementation (kernels stage). oneDNN 2.6 API (desc -> primitive_desc).
#include "dnnl_ops.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "simd.h"
#include "vitq/quant.h"

namespace vitq::kernels {
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

std::string ExactFloatKey(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%a", static_cast<double>(v));
  return buf;
}

PackedLinear::PackedLinear(DnnlContext* ctx, const float* weight, const float* bias, int n, int k)
    : ctx_(ctx), n_(n), k_(k) {
  // W^T viewed as [K, N] with strides (1, K): oneDNN's "ba" tag over the row-major [N, K] data.
  weight_plain_ = memory({{k, n}, dt::f32, tag::ba}, ctx->engine(), const_cast<float*>(weight));
  bias_ = memory({{1, n}, dt::f32, tag::ab}, ctx->engine(), const_cast<float*>(bias));
}

void PackedLinear::Run(const float* src, int m, float* dst, bool gelu, bool accumulate) {
  auto key = std::make_tuple(m, gelu, accumulate, omp_get_max_threads());
  auto it = prims_.find(key);
  if (it == prims_.end()) {
    memory::desc src_md({m, k_}, dt::f32, tag::ab), w_md({k_, n_}, dt::f32, tag::any),
        b_md({1, n_}, dt::f32, tag::ab), dst_md({m, n_}, dt::f32, tag::ab);
    dnnl::post_ops ops;
    if (gelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
    if (accumulate) ops.append_sum(1.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_md, b_md, dst_md), attr,
                                    ctx_->engine());
    it = prims_.emplace(key, dnnl::matmul(pd)).first;
    prim_wdesc_[key] = pd.weights_desc();
  }
  const memory::desc& wdesc = prim_wdesc_[key];
  memory* packed = nullptr;
  for (auto& [d, mem] : packed_) {
    if (d == wdesc) packed = &mem;
  }
  if (packed == nullptr) {
    memory mem(wdesc, ctx_->engine());
    dnnl::reorder(weight_plain_, mem).execute(ctx_->stream(), weight_plain_, mem);
    packed_.emplace_back(wdesc, mem);
    packed = &packed_.back().second;
  }
  memory src_mem({{m, k_}, dt::f32, tag::ab}, ctx_->engine(), const_cast<float*>(src));
  memory dst_mem({{m, n_}, dt::f32, tag::ab}, ctx_->engine(), dst);
  it->second.execute(ctx_->stream(), {{DNNL_ARG_SRC, src_mem},
                                      {DNNL_ARG_WEIGHTS, *packed},
                                      {DNNL_ARG_BIAS, bias_},
                                      {DNNL_ARG_DST, dst_mem}});
  ctx_->stream().wait();
}

dnnl::primitive& DnnlOps::Get(const std::string& key,
                              const std::function<dnnl::primitive()>& make) {
  // Primitives keep the thread count they were created with (AdaptiveThreads switches it).
  const std::string keyed = key + "|t" + std::to_string(omp_get_max_threads());
  auto it = prims_.find(keyed);
  if (it == prims_.end()) it = prims_.emplace(keyed, make()).first;
  return it->second;
}

void DnnlOps::AttentionScores(const float* q, const float* k, int bh, int t, int hd, float scale,
                              float* scores) {
  memory::desc q_md({bh, t, hd}, dt::f32, tag::abc);
  memory::desc k_md({bh, hd, t}, dt::f32, tag::acb);  // K^T as a strided view of K
  memory::desc s_md({bh, t, t}, dt::f32, tag::abc);
  std::string key = "qk:" + std::to_string(bh) + ":" + std::to_string(t) + ":" +
                    std::to_string(hd) + ":" + ExactFloatKey(scale);
  auto& prim = Get(key, [&] {
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {scale});
    return dnnl::matmul(
        dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, k_md, s_md), attr, ctx_->engine()));
  });
  memory qm(q_md, ctx_->engine(), const_cast<float*>(q)),
      km(k_md, ctx_->engine(), const_cast<float*>(k)), sm(s_md, ctx_->engine(), scores);
  prim.execute(ctx_->stream(), {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, km}, {DNNL_ARG_DST, sm}});
  ctx_->stream().wait();
}

void DnnlOps::AttentionValues(const float* p, const float* v, int b, int h, int t, int hd,
                              float* out) {
  memory::desc p_md({b, h, t, t}, dt::f32, tag::abcd);
  memory::desc v_md({b, h, t, hd}, dt::f32, tag::abcd);
  // Output [B, H, T, hd] written with strides of [B, T, H, hd]: heads merged for proj.
  memory::desc o_md(
      {b, h, t, hd}, dt::f32,
      memory::dims{static_cast<int64_t>(t) * h * hd, hd, static_cast<int64_t>(h) * hd, 1});
  std::string key = "pv:" + std::to_string(b) + ":" + std::to_string(h) + ":" + std::to_string(t) +
                    ":" + std::to_string(hd);
  auto& prim = Get(key, [&] {
    return dnnl::matmul(
        dnnl::matmul::primitive_desc(dnnl::matmul::desc(p_md, v_md, o_md), ctx_->engine()));
  });
  memory pm(p_md, ctx_->engine(), const_cast<float*>(p)),
      vm(v_md, ctx_->engine(), const_cast<float*>(v)), om(o_md, ctx_->engine(), out);
  prim.execute(ctx_->stream(), {{DNNL_ARG_SRC, pm}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, om}});
  ctx_->stream().wait();
}

void DnnlOps::BatchedMatmul(const float* a, const float* b, bool b_rows_are_k, int batch, int m,
                            int k, int n, float* dst) {
  memory::desc a_md({batch, m, k}, dt::f32, tag::abc);
  memory::desc b_md({batch, k, n}, dt::f32, b_rows_are_k ? tag::abc : tag::acb);
  memory::desc d_md({batch, m, n}, dt::f32, tag::abc);
  std::string key = "bmm:" + std::to_string(b_rows_are_k) + ":" + std::to_string(batch) + ":" +
                    std::to_string(m) + ":" + std::to_string(k) + ":" + std::to_string(n);
  auto& prim = Get(key, [&] {
    return dnnl::matmul(
        dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, d_md), ctx_->engine()));
  });
  memory am(a_md, ctx_->engine(), const_cast<float*>(a)),
      bm(b_md, ctx_->engine(), const_cast<float*>(b)), dm(d_md, ctx_->engine(), dst);
  prim.execute(ctx_->stream(), {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, dm}});
  ctx_->stream().wait();
}

namespace {
dnnl::softmax_v2_forward::primitive_desc SoftmaxS8Desc(dnnl::engine& engine, int rows, int cols,
                                                       float out_scale, bool u8) {
  memory::desc src_md({rows, cols}, dt::f32, tag::ab),
      dst_md({rows, cols}, u8 ? dt::u8 : dt::s8, tag::ab);
  dnnl::primitive_attr attr;
  attr.set_output_scales(0, {out_scale});
  return dnnl::softmax_v2_forward::primitive_desc(
      dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_inference,
                                     dnnl::algorithm::softmax_accurate, src_md, dst_md, 1),
      attr, engine);
}
}  // namespace

bool DnnlOps::SoftmaxQuantizeIsJit(int rows, int cols, float out_scale, bool u8) {
  const std::string key = std::string(u8 ? "u8:" : "s8:") + std::to_string(rows) + ":" +
                          std::to_string(cols) + ":" + ExactFloatKey(out_scale);
  auto it = softmax_jit_.find(key);
  if (it == softmax_jit_.end()) {
    const std::string impl =
        SoftmaxS8Desc(ctx_->engine(), rows, cols, out_scale, u8).impl_info_str();
    it = softmax_jit_.emplace(key, impl.rfind("ref", 0) != 0).first;
  }
  return it->second;
}

void DnnlOps::SoftmaxQuantizeTo(const float* x, int rows, int cols, float out_scale, void* dst,
                                bool u8) {
  memory::desc src_md({rows, cols}, dt::f32, tag::ab),
      dst_md({rows, cols}, u8 ? dt::u8 : dt::s8, tag::ab);
  std::string key = std::string(u8 ? "softmax_u8:" : "softmax_s8:") + std::to_string(rows) + ":" +
                    std::to_string(cols) + ":" + ExactFloatKey(out_scale);
  auto& prim = Get(key, [&] {
    return dnnl::softmax_v2_forward(SoftmaxS8Desc(ctx_->engine(), rows, cols, out_scale, u8));
  });
  memory s(src_md, ctx_->engine(), const_cast<float*>(x)), d(dst_md, ctx_->engine(), dst);
  prim.execute(ctx_->stream(), {{DNNL_ARG_SRC, s}, {DNNL_ARG_DST, d}});
  ctx_->stream().wait();
}

void DnnlOps::SoftmaxQuantize(const float* x, int rows, int cols, float out_scale, int8_t* dst) {
  SoftmaxQuantizeTo(x, rows, cols, out_scale, dst, false);
}

void DnnlOps::SoftmaxQuantize(const float* x, int rows, int cols, float out_scale, uint8_t* dst) {
  SoftmaxQuantizeTo(x, rows, cols, out_scale, dst, true);
}

void DnnlOps::Softmax(float* x, int rows, int cols) {
  memory::desc md({rows, cols}, dt::f32, tag::ab);
  std::string key = "softmax:" + std::to_string(rows) + ":" + std::to_string(cols);
  auto& prim = Get(key, [&] {
    return dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), ctx_->engine()));
  });
  memory m(md, ctx_->engine(), x);
  prim.execute(ctx_->stream(), {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
  ctx_->stream().wait();
}

namespace {
// One LayerNorm row, at the process's SIMD level (simd.h).
VITQ_SIMD_BODY void LayerNormRowBody(const float* x, int d, const float* gamma, const float* beta,
                                     float eps, float* y) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < d; ++i) sum += x[i];
  const float mean = sum / d;
  float var = 0.f;
#pragma omp simd reduction(+ : var)
  for (int i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.0f / std::sqrt(var / d + eps);
#pragma omp simd
  for (int i = 0; i < d; ++i) y[i] = (x[i] - mean) * inv * gamma[i] + beta[i];
}
VITQ_SIMD_FUNCTION(, void, LayerNormRow,
                   (const float* x, int d, const float* gamma, const float* beta, float eps,
                    float* y),
                   (x, d, gamma, beta, eps, y))

// One run of quantization to int8 (or uint8): QuantizeToGrid (vitq/quant.h) of x / scale,
// vectorized.
template <typename Q>
VITQ_SIMD_BODY void QuantizeRowBody(const float* x, int64_t n, float scale, float lo, float hi,
                                    Q* q) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<Q>(QuantizeToGrid(x[i] / scale, lo, hi));
}
VITQ_SIMD_FUNCTION(, void, QuantizeRow,
                   (const float* x, int64_t n, float scale, float lo, float hi, int8_t* q),
                   (x, n, scale, lo, hi, q))
VITQ_SIMD_BODY void QuantizeRowU8Body(const float* x, int64_t n, float scale, float lo, float hi,
                                      uint8_t* q) {
  QuantizeRowBody(x, n, scale, lo, hi, q);
}
VITQ_SIMD_FUNCTION(, void, QuantizeRowU8,
                   (const float* x, int64_t n, float scale, float lo, float hi, uint8_t* q),
                   (x, n, scale, lo, hi, q))

// A row's range with 0 inside: lo = min(0, min x), hi = max(0, max x) (NaNs skipped).
VITQ_SIMD_BODY void RowRangeBody(const float* x, int64_t n, float* lo, float* hi) {
  float a = 0.f, b = 0.f;
#pragma omp simd reduction(min : a) reduction(max : b)
  for (int64_t i = 0; i < n; ++i) {
    a = x[i] < a ? x[i] : a;
    b = x[i] > b ? x[i] : b;
  }
  *lo = a;
  *hi = b;
}
VITQ_SIMD_FUNCTION(, void, RowRange, (const float* x, int64_t n, float* lo, float* hi),
                   (x, n, lo, hi))
// One run onto the unsigned grid [0, hi] with a zero point.
VITQ_SIMD_BODY void QuantizeRowZeroU8Body(const float* x, int64_t n, float step, float hi,
                                          float zero, uint8_t* q) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    q[i] = static_cast<uint8_t>(QuantizeToGrid(x[i] / step, 0.0f, hi, zero));
}
VITQ_SIMD_FUNCTION(, void, QuantizeRowZeroU8,
                   (const float* x, int64_t n, float step, float hi, float zero, uint8_t* q),
                   (x, n, step, hi, zero, q))

// exp(x) for x <= 0, vectorizable: n = round(x · log2 e), r = x - n · ln 2 (in two parts), Cephes'
// degree-6 polynomial for exp(r) on |r| <= ln2 / 2 (a few ulp), times 2^n from the exponent bits.
// Below -87 (and NaN) it is exp(-87) ~ 1.6e-38, which any code rounds to 0.
VITQ_SIMD_BODY float ExpNonPositive(float x) {
  x = x > -87.0f ? x : -87.0f;
  const float n = __builtin_nearbyintf(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}
// A run of `rows` rows of SoftmaxRowsU8, in place: each row less its maximum, then exp over the
// whole run (one loop, so one short tail instead of one per row of 197), each row's sum into
// sum[], then the codes of the whole run.
VITQ_SIMD_BODY void SoftmaxRunU8Body(float* x, int rows, int t, float inv_scale, float qmax,
                                     uint8_t* q, float* sum) {
  for (int r = 0; r < rows; ++r) {
    float* xr = x + static_cast<int64_t>(r) * t;
    float m = xr[0];
#pragma omp simd reduction(max : m)
    for (int i = 0; i < t; ++i) m = xr[i] > m ? xr[i] : m;
#pragma omp simd
    for (int i = 0; i < t; ++i) xr[i] -= m;
  }
  const int64_t n = static_cast<int64_t>(rows) * t;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = ExpNonPositive(x[i]);
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<int64_t>(r) * t;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < t; ++i) s += xr[i];
    sum[r] = s;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    q[i] = static_cast<uint8_t>(QuantizeToGrid(x[i] * inv_scale, 0.f, qmax));
}
VITQ_SIMD_FUNCTION(, void, SoftmaxRunU8,
                   (float* x, int rows, int t, float inv_scale, float qmax, uint8_t* q, float* sum),
                   (x, rows, t, inv_scale, qmax, q, sum))

// QuantizeRow or QuantizeRowU8 over n values in chunks of 16384, in parallel.
template <typename Q>
void QuantizeChunks(const float* x, int64_t n, float scale, int qmin, int qmax, Q* q,
                    void (*row)(const float*, int64_t, float, float, float, Q*)) {
  const int64_t chunk = 16384;
  const int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * chunk;
    row(x + begin, std::min(chunk, n - begin), scale, static_cast<float>(qmin),
        static_cast<float>(qmax), q + begin);
  }
}
}  // namespace

void QuantizeS8Serial(const float* x, int64_t n, float scale, int qmin, int qmax, int8_t* q) {
  QuantizeRow(x, n, scale, static_cast<float>(qmin), static_cast<float>(qmax), q);
}

void QuantizeS8(const float* x, int64_t n, float scale, int qmin, int qmax, int8_t* q) {
  QuantizeChunks(x, n, scale, qmin, qmax, q, &QuantizeRow);
}

void QuantizeU8(const float* x, int64_t n, float scale, int qmin, int qmax, uint8_t* q) {
  QuantizeChunks(x, n, scale, qmin, qmax, q, &QuantizeRowU8);
}

void QuantizeRowsU8(const float* x, int m, int k, float scale, int qmax, uint8_t* q, float* step,
                    float* zero) {
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(m) * k > 16384)
  for (int r = 0; r < m; ++r) {
    const float* xr = x + static_cast<int64_t>(r) * k;
    float lo = 0.f, hi = 0.f;
    RowRange(xr, k, &lo, &hi);
    const RowGrid g = RowGridOfRange(lo, hi, scale, qmax);
    step[r] = g.step;
    zero[r] = static_cast<float>(g.zero);
    QuantizeRowZeroU8(xr, k, g.step, static_cast<float>(qmax), zero[r],
                      q + static_cast<int64_t>(r) * k);
  }
}

void SoftmaxRowsU8(float* x, int rows, int t, float scale, int qmax, uint8_t* q, float* step) {
  const float inv_scale = 1.0f / scale;
  constexpr int kRun = 16;  // rows per run: 16 · 197 floats stay in L1
  const int runs = (rows + kRun - 1) / kRun;
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(rows) * t > 16384)
  for (int g = 0; g < runs; ++g) {
    const int r0 = g * kRun, len = std::min(kRun, rows - r0);
    SoftmaxRunU8(x + static_cast<int64_t>(r0) * t, len, t, inv_scale, static_cast<float>(qmax),
                 q + static_cast<int64_t>(r0) * t, step + r0);
    for (int r = r0; r < r0 + len; ++r) step[r] = scale / step[r];  // step[] held the row sums
  }
}

void DnnlOps::LayerNormQuantize(const float* src, int m, int d, const float* gamma,
                                const float* beta, float eps, float scale, int qmin, int qmax,
                                int8_t* dst) {
#pragma omp parallel if (static_cast <int64_t>(m) * d > 16384)
  {
    thread_local std::vector<float> row;  // one row of LayerNorm output per thread, kept
    row.resize(d);
#pragma omp for schedule(static)
    for (int r = 0; r < m; ++r) {
      LayerNormRow(src + static_cast<int64_t>(r) * d, d, gamma, beta, eps, row.data());
      QuantizeRow(row.data(), d, scale, static_cast<float>(qmin), static_cast<float>(qmax),
                  dst + static_cast<int64_t>(r) * d);
    }
  }
}

void DnnlOps::LayerNorm(const float* src, int m, int d, const float* gamma, const float* beta,
                        float eps, float* dst) {
  // Own loop rather than oneDNN 2.6's layer_normalization, whose "simple" implementation measured
  // ~1.7 ms for 197x192 (DNNL_VERBOSE) against microseconds here. Two passes per row (mean, then
  // centered variance) as PyTorch does; rows in parallel. src may equal dst.
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(m) * d > 16384)
  for (int r = 0; r < m; ++r) {
    LayerNormRow(src + static_cast<int64_t>(r) * d, d, gamma, beta, eps,
                 dst + static_cast<int64_t>(r) * d);
  }
}

void DnnlOps::Gelu(float* x, int64_t n) {
  memory::desc md({n}, dt::f32, tag::a);
  std::string key = "gelu:" + std::to_string(n);
  auto& prim = Get(key, [&] {
    return dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference,
                                    dnnl::algorithm::eltwise_gelu_erf, md, 0.f, 0.f),
        ctx_->engine()));
  });
  memory m(md, ctx_->engine(), x);
  prim.execute(ctx_->stream(), {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
  ctx_->stream().wait();
}

}  // namespace vitq::kernels
