// oneDNN int8 matmul wrappers (kernels stage).
#include "int8_matmul.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "isa.h"

namespace vitq::kernels {
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {
// Without VNNI, oneDNN multiplies int8 pairs with vpmaddubsw (u8 x s8, s8 sources shifted by
// +128), whose int16 pair sums saturate for full-range operands: its accumulators are then wrong
// (int8_kernels_avx2 showed it). There vitq uses its own exact kernel: int8 widened to int16,
// products summed in int32 (vpmaddwd after auto-vectorization).
bool OwnKernel() {
  static const bool own = !IsaHasVnni(EffectiveIsa());
  return own;
}

// The portable exact kernel (below AVX2): four rows against one weight row at a time.
void DotRows4(const int8_t* x0, const int8_t* x1, const int8_t* x2, const int8_t* x3,
              const int8_t* w, int k, int32_t* out) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int l = 0; l < k; ++l) {
    const int16_t wl = w[l];
    s0 += static_cast<int16_t>(x0[l]) * wl;
    s1 += static_cast<int16_t>(x1[l]) * wl;
    s2 += static_cast<int16_t>(x2[l]) * wl;
    s3 += static_cast<int16_t>(x3[l]) * wl;
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

void PortableGemm(const int8_t* x, const int8_t* w, int m, int n, int k, int32_t* acc) {
  const int blocks = (m + 3) / 4;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < blocks; ++b) {
    const int i0 = 4 * b;
    const int8_t* r[4];
    for (int t = 0; t < 4; ++t) r[t] = x + static_cast<int64_t>(std::min(i0 + t, m - 1)) * k;
    int32_t out[4];
    for (int j = 0; j < n; ++j) {
      DotRows4(r[0], r[1], r[2], r[3], w + static_cast<int64_t>(j) * k, k, out);
      for (int t = 0; t < 4 && i0 + t < m; ++t) acc[static_cast<int64_t>(i0 + t) * n + j] = out[t];
    }
  }
}

// The AVX2 exact kernel: vpmaddwd on int8 widened to int16 (two products of at most 2^14 summed
// per int32 lane, no saturation), register-blocked 6 rows x 16 columns so no horizontal sums
// are needed. Weights are packed (once per layer; per call for the attention operands) into
// panels of 16 columns, K in pairs:
// panel[k2][c][2] = (w[c][2·k2], w[c][2·k2+1]) as int8 (zero-padded), widened in the loop; each
// row of x becomes int32 words holding an int16 pair, broadcast to all lanes.
constexpr int kMr = 6, kNr = 16;

template <int MR>
__attribute__((target("avx2"))) void Avx2MicroKernel(const int32_t* xp, int64_t x_stride, int k2,
                                                     const int8_t* panel, int32_t* out,
                                                     int64_t out_stride, int cols) {
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int p = 0; p < k2; ++p) {
    const __m128i raw0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(panel + p * 32));
    const __m128i raw1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(panel + p * 32 + 16));
    const __m256i w0 = _mm256_cvtepi8_epi16(raw0), w1 = _mm256_cvtepi8_epi16(raw1);
    for (int r = 0; r < MR; ++r) {
      const __m256i xb = _mm256_set1_epi32(xp[r * x_stride + p]);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(xb, w0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(xb, w1));
    }
  }
  alignas(32) int32_t tmp[kNr];
  for (int r = 0; r < MR; ++r) {
    if (cols == kNr) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * out_stride), acc[r][0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * out_stride + 8), acc[r][1]);
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc[r][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), acc[r][1]);
      std::memcpy(out + r * out_stride, tmp, static_cast<size_t>(cols) * sizeof(int32_t));
    }
  }
}

// W(c, l) of weights given as [N, K] or, k_major, as [K, N].
inline int8_t WeightAt(const int8_t* w, bool k_major, int n, int k, int c, int l) {
  return k_major ? w[static_cast<int64_t>(l) * n + c] : w[static_cast<int64_t>(c) * k + l];
}

bool UseAvx2() {
  static const bool avx2 = IsaHasAvx2(EffectiveIsa());
  return avx2;
}

// Bytes of one weight matrix prepared for the own kernel.
size_t PreparedBytes(int n, int k) {
  if (!UseAvx2()) return static_cast<size_t>(n) * k;
  return static_cast<size_t>((n + kNr - 1) / kNr) * ((k + 1) / 2) * 32;
}

// One panel (16 columns from pn · 16) of weights prepared for the AVX2 kernel.
void PackPanel(const int8_t* w, bool k_major, int n, int k, int pn, int8_t* panel) {
  const int k2 = (k + 1) / 2;
  for (int p = 0; p < k2; ++p) {
    for (int c = 0; c < kNr; ++c) {
      // Columns 0-7 in the first 16 bytes of each K pair, 8-15 in the second.
      int8_t* d = panel + p * 32 + (c < 8 ? 0 : 16) + 2 * (c % 8);
      const int col = pn * kNr + c;
      d[0] = col < n ? WeightAt(w, k_major, n, k, col, 2 * p) : 0;
      d[1] = col < n && 2 * p + 1 < k ? WeightAt(w, k_major, n, k, col, 2 * p + 1) : 0;
    }
  }
}

// `batch` weight matrices (each [N, K], or [K, N] when k_major) prepared for the own kernel into
// out (batch · PreparedBytes(n, k)): AVX2 panels, or plain [N, K] copies for the portable kernel.
void PrepareOwn(const int8_t* w, bool k_major, int batch, int n, int k, int8_t* out) {
  const size_t bytes = PreparedBytes(n, k);
  if (!UseAvx2()) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < batch; ++b) {
      const int8_t* wb = w + static_cast<int64_t>(b) * n * k;
      for (int c = 0; c < n; ++c)
        for (int l = 0; l < k; ++l)
          out[b * bytes + static_cast<size_t>(c) * k + l] = WeightAt(wb, k_major, n, k, c, l);
    }
    return;
  }
  const int panels = (n + kNr - 1) / kNr;
  const size_t panel_bytes = static_cast<size_t>((k + 1) / 2) * 32;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < batch; ++b) {
    for (int pn = 0; pn < panels; ++pn) {
      PackPanel(w + static_cast<int64_t>(b) * n * k, k_major, n, k, pn,
                out + b * bytes + pn * panel_bytes);
    }
  }
}

// The micro-kernel for a block of 1-6 rows, by row count.
using MicroKernel = void (*)(const int32_t*, int64_t, int, const int8_t*, int32_t*, int64_t, int);
constexpr MicroKernel kMicroKernels[kMr + 1] = {nullptr,
                                                &Avx2MicroKernel<1>,
                                                &Avx2MicroKernel<2>,
                                                &Avx2MicroKernel<3>,
                                                &Avx2MicroKernel<4>,
                                                &Avx2MicroKernel<5>,
                                                &Avx2MicroKernel<6>};

// acc[B, M, N] = x[B, M, K] · w_b^T on the AVX2 kernel, the w_b prepared by PrepareOwn.
__attribute__((target("avx2"))) void Avx2Gemm(const int8_t* x, const int8_t* prepared, int batch,
                                              int m, int n, int k, int32_t* acc) {
  const int k2 = (k + 1) / 2;
  const int panels = (n + kNr - 1) / kNr;
  const int rows = batch * m;
  thread_local std::vector<int32_t> xp;  // x as int16 pairs, kept between calls
  xp.resize(static_cast<size_t>(rows) * k2);
  int32_t* xpp = xp.data();
#pragma omp parallel for schedule(static)
  for (int i = 0; i < rows; ++i) {
    const int8_t* xr = x + static_cast<int64_t>(i) * k;
    int32_t* d = xpp + static_cast<int64_t>(i) * k2;
    for (int p = 0; p < k / 2; ++p) {
      d[p] = static_cast<int32_t>(
          static_cast<uint16_t>(int16_t{xr[2 * p]}) |
          (static_cast<uint32_t>(static_cast<uint16_t>(int16_t{xr[2 * p + 1]})) << 16));
    }
    if (k % 2) d[k2 - 1] = static_cast<int32_t>(static_cast<uint16_t>(int16_t{xr[k - 1]}));
  }
  const size_t bytes = PreparedBytes(n, k);
  const int row_blocks = (m + kMr - 1) / kMr;
#pragma omp parallel for collapse(3) schedule(static)
  for (int b = 0; b < batch; ++b) {
    for (int rb = 0; rb < row_blocks; ++rb) {
      for (int pn = 0; pn < panels; ++pn) {
        const int i0 = rb * kMr, mr = std::min(kMr, m - i0);
        const int cols = std::min(kNr, n - pn * kNr);
        const int32_t* xr = xpp + (static_cast<int64_t>(b) * m + i0) * k2;
        const int8_t* panel = prepared + b * bytes + static_cast<size_t>(pn) * k2 * 32;
        int32_t* out = acc + (static_cast<int64_t>(b) * m + i0) * n + pn * kNr;
        kMicroKernels[mr](xr, k2, k2, panel, out, n, cols);
      }
    }
  }
}

// acc[B, M, N] = x[B, M, K] · w_b^T exactly, the w_b prepared by PrepareOwn: the AVX2 kernel
// where the effective ISA has AVX2, else the portable one.
void OwnGemm(const int8_t* x, const int8_t* prepared, int batch, int m, int n, int k,
             int32_t* acc) {
  if (UseAvx2()) {
    Avx2Gemm(x, prepared, batch, m, n, k, acc);
    return;
  }
  for (int b = 0; b < batch; ++b) {
    PortableGemm(x + static_cast<int64_t>(b) * m * k, prepared + b * PreparedBytes(n, k), m, n, k,
                 acc + static_cast<int64_t>(b) * m * n);
  }
}

// One row of the epilogue's first step, y = scale · (f32(acc) + bias): oneDNN's order for int8
// matmuls (measured bit-exact on 2.6's brgemm kernels), never contracted into an FMA; scale and
// bias per channel (n values) or one scale (scale_n == 1) and no bias (bias == nullptr).
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off"))) void
ScaleBiasRow(const int32_t* acc, int n, const float* scale, int scale_n, const float* bias,
             float* y) {
  if (scale_n == 1 && bias == nullptr) {
    const float s = scale[0];
#pragma omp simd
    for (int j = 0; j < n; ++j) y[j] = s * static_cast<float>(acc[j]);
  } else if (scale_n == 1) {
    const float s = scale[0];
#pragma omp simd
    for (int j = 0; j < n; ++j) y[j] = s * (static_cast<float>(acc[j]) + bias[j]);
  } else if (bias == nullptr) {
#pragma omp simd
    for (int j = 0; j < n; ++j) y[j] = scale[j] * static_cast<float>(acc[j]);
  } else {
#pragma omp simd
    for (int j = 0; j < n; ++j) y[j] = scale[j] * (static_cast<float>(acc[j]) + bias[j]);
  }
}

// The rest on a run of values: times gelu_scale (when GELU), clip, then the destination:
// s8 (saturate, round half to even), f32 +=, or f32.
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off"))) void
FinishRun(float* y, int64_t n, const S8Epilogue& ep, void* dst) {
  if (ep.gelu) {
    const float g = ep.gelu_scale;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] *= g;
  }
  if (ep.clip) {
    const float lo = ep.lo, hi = ep.hi;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = y[i] < lo ? lo : (y[i] > hi ? hi : y[i]);
  }
  if (ep.s8_dst) {
    auto* q = static_cast<int8_t*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float v = y[i] < -128.0f ? -128.0f : (y[i] > 127.0f ? 127.0f : y[i]);
      q[i] = static_cast<int8_t>(static_cast<int>(__builtin_nearbyintf(v)));
    }
  } else if (ep.accumulate) {
    auto* f = static_cast<float*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) f[i] += y[i];
  } else {
    std::memcpy(dst, y, static_cast<size_t>(n) * sizeof(float));
  }
}

}  // namespace

void ApplyEpilogue(DnnlOps* ops, const S8Epilogue& ep, const int32_t* acc, int m, int n,
                   void* dst) {
  const int64_t total = static_cast<int64_t>(m) * n;
  thread_local std::vector<float> scratch;  // kept between calls (no page faults per GEMM)
  scratch.resize(static_cast<size_t>(total));
  float* y = scratch.data();  // not the thread_local itself inside the parallel loops below
  const int scale_n = static_cast<int>(ep.scale.size());
  const float* bias = ep.bias.empty() ? nullptr : ep.bias.data();
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; ++i) {
    const int64_t off = static_cast<int64_t>(i) * n;
    ScaleBiasRow(acc + off, n, ep.scale.data(), scale_n, bias, y + off);
  }
  if (ep.gelu) ops->Gelu(y, total);
  const size_t out_bytes = ep.s8_dst ? 1 : sizeof(float);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; ++i) {
    const int64_t off = static_cast<int64_t>(i) * n;
    FinishRun(y + off, n, ep, static_cast<char*>(dst) + off * out_bytes);
  }
}

namespace {
// out = v as float, reusing out's storage between calls.
void ToFloat(const int8_t* v, int64_t n, std::vector<float>* out) {
  out->resize(static_cast<size_t>(n));
  float* f = out->data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f[i] = v[i];
}

}  // namespace

void ExactF32Matmul::Run(const float* a, const float* b, bool b_rows_are_k, int batch, int m, int k,
                         int n, int32_t* acc) {
  const int64_t out = static_cast<int64_t>(batch) * m * n;
  part_.resize(static_cast<size_t>(out));
  for (int k0 = 0; k0 < k; k0 += kExactChunk) {
    const int kc = std::min(kExactChunk, k - k0);
    const int64_t bm_ = batch, m_ = m, k_ = k, n_ = n, kc_ = kc;
    memory::desc a_md({bm_, m_, kc_}, dt::f32, memory::dims{m_ * k_, k_, 1});
    memory::desc b_md = b_rows_are_k
                            ? memory::desc({bm_, kc_, n_}, dt::f32, memory::dims{k_ * n_, n_, 1})
                            : memory::desc({bm_, kc_, n_}, dt::f32, memory::dims{n_ * k_, 1, k_});
    memory::desc d_md({bm_, m_, n_}, dt::f32, tag::abc);
    const std::string key = std::to_string(b_rows_are_k) + ":" + std::to_string(batch) + ":" +
                            std::to_string(m) + ":" + std::to_string(k) + ":" + std::to_string(kc) +
                            ":" + std::to_string(n) + ":t" + std::to_string(omp_get_max_threads());
    auto it = prims_.find(key);
    if (it == prims_.end()) {
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, d_md), ctx_->engine());
      it = prims_.emplace(key, dnnl::matmul(pd)).first;
    }
    memory am(a_md, ctx_->engine(), const_cast<float*>(a + k0)),
        bmem(b_md, ctx_->engine(),
             const_cast<float*>(b + (b_rows_are_k ? static_cast<int64_t>(k0) * n : k0))),
        dm(d_md, ctx_->engine(), part_.data());
    it->second.execute(ctx_->stream(),
                       {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bmem}, {DNNL_ARG_DST, dm}});
    ctx_->stream().wait();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < out; ++i) {
      const auto v = static_cast<int32_t>(part_[i]);
      acc[i] = k0 == 0 ? v : acc[i] + v;
    }
  }
}

S8Linear::S8Linear(DnnlContext* ctx, int n, int k) : ctx_(ctx), n_(n), k_(k) {
  // The packed layout is chosen by the primitive for a typical M; all M share it.
  memory::desc src_md({256, k_}, dt::s8, tag::ab), w_md({k_, n_}, dt::s8, tag::any),
      dst_md({256, n_}, dt::s32, tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_md, dst_md), ctx_->engine());
  packed_desc_ = pd.weights_desc();
}

dnnl::memory S8Linear::Pack(const int8_t* w) {
  if (OwnKernel()) {  // the own kernel's layout, as bytes
    memory bytes({{static_cast<int64_t>(PreparedBytes(n_, k_))}, dt::s8, tag::a}, ctx_->engine());
    PrepareOwn(w, false, 1, n_, k_, static_cast<int8_t*>(bytes.get_data_handle()));
    return bytes;
  }
  memory packed(packed_desc_, ctx_->engine());
  memory plain({{k_, n_}, dt::s8, tag::ba}, ctx_->engine(), const_cast<int8_t*>(w));
  dnnl::reorder(plain, packed).execute(ctx_->stream(), plain, packed);
  ctx_->stream().wait();
  return packed;
}

void S8Linear::Run(const int8_t* x, int m, const dnnl::memory& packed, int32_t* dst) {
  if (OwnKernel()) {
    OwnGemm(x, static_cast<const int8_t*>(packed.get_data_handle()), 1, m, n_, k_, dst);
    return;
  }
  const std::pair<int, int> key(m, omp_get_max_threads());
  auto it = prims_.find(key);
  if (it == prims_.end()) {
    memory::desc src_md({m, k_}, dt::s8, tag::ab), dst_md({m, n_}, dt::s32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, packed_desc_, dst_md),
                                    ctx_->engine());
    it = prims_.emplace(key, dnnl::matmul(pd)).first;
  }
  memory src({{m, k_}, dt::s8, tag::ab}, ctx_->engine(), const_cast<int8_t*>(x));
  memory d({{m, n_}, dt::s32, tag::ab}, ctx_->engine(), dst);
  it->second.execute(ctx_->stream(),
                     {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed}, {DNNL_ARG_DST, d}});
  ctx_->stream().wait();
}

namespace {
dnnl::primitive_attr EpilogueAttr(const S8Epilogue& ep) {
  dnnl::primitive_attr attr;
  attr.set_output_scales(ep.scale.size() > 1 ? 2 : 0, ep.scale);
  dnnl::post_ops ops;
  if (ep.gelu) ops.append_eltwise(ep.gelu_scale, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  if (ep.clip) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, ep.lo, ep.hi);
  if (ep.accumulate) ops.append_sum(1.0f);
  attr.set_post_ops(ops);
  return attr;
}
}  // namespace

S8GemmLayer::S8GemmLayer(DnnlContext* ctx, const int8_t* w, int n, int k, S8Epilogue epilogue,
                         GemmExec exec)
    : ctx_(ctx), n_(n), k_(k), ep_(std::move(epilogue)), attr_(EpilogueAttr(ep_)), exec_(exec) {
  if (exec_ == GemmExec::kFloatSimulation) {
    ToFloat(w, static_cast<int64_t>(n_) * k_, &wf_);
    exact_ = std::make_unique<ExactF32Matmul>(ctx_);
    ops_ = std::make_unique<DnnlOps>(ctx_);
    return;
  }
  if (OwnKernel()) {
    own_.resize(PreparedBytes(n_, k_));
    PrepareOwn(w, false, 1, n_, k_, own_.data());
    ops_ = std::make_unique<DnnlOps>(ctx_);
    return;
  }
  // The packed layout is chosen for a typical M (a batch of 197-token images); every M shares it.
  memory::desc src_md({256, k_}, dt::s8, tag::ab), w_md({k_, n_}, dt::s8, tag::any),
      b_md({1, n_}, dt::f32, tag::ab), dst_md({256, n_}, ep_.s8_dst ? dt::s8 : dt::f32, tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_md, b_md, dst_md), attr_,
                                  ctx_->engine());
  packed_desc_ = pd.weights_desc();
  packed_ = memory(packed_desc_, ctx_->engine());
  memory plain({{k_, n_}, dt::s8, tag::ba}, ctx_->engine(), const_cast<int8_t*>(w));
  dnnl::reorder(plain, packed_).execute(ctx_->stream(), plain, packed_);
  bias_ = memory({{1, n_}, dt::f32, tag::ab}, ctx_->engine());
  float* b = static_cast<float*>(bias_.get_data_handle());
  for (int i = 0; i < n_; ++i) b[i] = ep_.bias.empty() ? 0.0f : ep_.bias[i];
  ctx_->stream().wait();
}

dnnl::matmul& S8GemmLayer::Prim(int m) {
  const std::pair<int, int> key(m, omp_get_max_threads());
  auto it = prims_.find(key);
  if (it == prims_.end()) {
    memory::desc src_md({m, k_}, dt::s8, tag::ab), b_md({1, n_}, dt::f32, tag::ab),
        dst_md({m, n_}, ep_.s8_dst ? dt::s8 : dt::f32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, packed_desc_, b_md, dst_md), attr_,
                                    ctx_->engine());
    it = prims_.emplace(key, std::make_pair(dnnl::matmul(pd), std::string(pd.impl_info_str())))
             .first;
  }
  return it->second.first;
}

std::string S8GemmLayer::Impl(int m) {
  if (exec_ == GemmExec::kFloatSimulation) return "vitq:f32_simulation";
  if (OwnKernel()) return "vitq:exact_int16";
  Prim(m);
  return prims_.at({m, omp_get_max_threads()}).second;
}

void S8GemmLayer::Run(const int8_t* x, int m, void* dst) {
  if (exec_ == GemmExec::kFloatSimulation) {
    ToFloat(x, static_cast<int64_t>(m) * k_, &af_);
    acc_.resize(static_cast<size_t>(m) * n_);
    exact_->Run(af_.data(), wf_.data(), /*b_rows_are_k=*/false, 1, m, k_, n_, acc_.data());
    ApplyEpilogue(ops_.get(), ep_, acc_.data(), m, n_, dst);
    return;
  }
  if (OwnKernel()) {
    acc_.resize(static_cast<size_t>(m) * n_);
    OwnGemm(x, own_.data(), 1, m, n_, k_, acc_.data());
    ApplyEpilogue(ops_.get(), ep_, acc_.data(), m, n_, dst);
    return;
  }
  dnnl::matmul& prim = Prim(m);
  memory src({{m, k_}, dt::s8, tag::ab}, ctx_->engine(), const_cast<int8_t*>(x));
  memory d({{m, n_}, ep_.s8_dst ? dt::s8 : dt::f32, tag::ab}, ctx_->engine(), dst);
  prim.execute(ctx_->stream(), {{DNNL_ARG_SRC, src},
                                {DNNL_ARG_WEIGHTS, packed_},
                                {DNNL_ARG_BIAS, bias_},
                                {DNNL_ARG_DST, d}});
  ctx_->stream().wait();
}

namespace {
// Batched exact GEMMs for the own-kernel path; b as [B, N, K] or [B, K, N] (b_rows_are_k).
void OwnBatched(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k, int n,
                int32_t* dst) {
  thread_local std::vector<int8_t> prepared;  // kept between calls
  prepared.resize(static_cast<size_t>(batch) * PreparedBytes(n, k));
  PrepareOwn(b, b_rows_are_k, batch, n, k, prepared.data());
  OwnGemm(a, prepared.data(), batch, m, n, k, dst);
}
}  // namespace

S8BatchedMatmul::S8BatchedMatmul(DnnlContext* ctx, GemmExec exec) : ctx_(ctx), exec_(exec) {
  if (exec_ == GemmExec::kFloatSimulation) exact_ = std::make_unique<ExactF32Matmul>(ctx_);
  if (exec_ == GemmExec::kFloatSimulation || OwnKernel()) ops_ = std::make_unique<DnnlOps>(ctx_);
}

void S8BatchedMatmul::Simulate(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch,
                               int m, int k, int n, const S8Epilogue* ep, void* dst) {
  ToFloat(a, static_cast<int64_t>(batch) * m * k, &af_);
  ToFloat(b, static_cast<int64_t>(batch) * k * n, &bf_);
  if (ep == nullptr) {
    exact_->Run(af_.data(), bf_.data(), b_rows_are_k, batch, m, k, n, static_cast<int32_t*>(dst));
    return;
  }
  acc_.resize(static_cast<size_t>(batch) * m * n);
  exact_->Run(af_.data(), bf_.data(), b_rows_are_k, batch, m, k, n, acc_.data());
  ApplyEpilogue(ops_.get(), *ep, acc_.data(), batch * m, n, dst);
}

void S8BatchedMatmul::Run(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m,
                          int k, int n, int32_t* dst) {
  if (exec_ == GemmExec::kFloatSimulation) {
    Simulate(a, b, b_rows_are_k, batch, m, k, n, nullptr, dst);
    return;
  }
  if (OwnKernel()) {
    OwnBatched(a, b, b_rows_are_k, batch, m, k, n, dst);
    return;
  }
  Execute(a, b, b_rows_are_k, batch, m, k, n, nullptr, dst);
}

void S8BatchedMatmul::Run(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m,
                          int k, int n, const S8Epilogue& ep, void* dst) {
  if (exec_ == GemmExec::kFloatSimulation) {
    Simulate(a, b, b_rows_are_k, batch, m, k, n, &ep, dst);
    return;
  }
  if (OwnKernel()) {
    acc_.resize(static_cast<size_t>(batch) * m * n);
    OwnBatched(a, b, b_rows_are_k, batch, m, k, n, acc_.data());
    ApplyEpilogue(ops_.get(), ep, acc_.data(), batch * m, n, dst);
    return;
  }
  Execute(a, b, b_rows_are_k, batch, m, k, n, &ep, dst);
}

void S8BatchedMatmul::Execute(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m,
                              int k, int n, const S8Epilogue* ep, void* dst) {
  const dt dst_type = ep == nullptr ? dt::s32 : ep->s8_dst ? dt::s8 : dt::f32;
  memory::desc a_md({batch, m, k}, dt::s8, tag::abc);
  memory::desc b_md({batch, k, n}, dt::s8, b_rows_are_k ? tag::abc : tag::acb);
  memory::desc d_md({batch, m, n}, dst_type, tag::abc);
  // The epilogue (its scale included) is part of the primitive: one primitive per site.
  std::string key = std::to_string(b_rows_are_k) + ":" + std::to_string(batch) + ":" +
                    std::to_string(m) + ":" + std::to_string(k) + ":" + std::to_string(n);
  if (ep != nullptr) {
    key += ":" + std::to_string(ep->s8_dst) + ":" + std::to_string(ep->clip) + ":" +
           ExactFloatKey(ep->lo) + ":" + ExactFloatKey(ep->hi) + ":" +
           ExactFloatKey(ep->scale.at(0));
  }
  key += ":t" + std::to_string(omp_get_max_threads());  // a primitive keeps its thread count
  auto it = prims_.find(key);
  if (it == prims_.end()) {
    dnnl::primitive_attr attr = ep == nullptr ? dnnl::primitive_attr() : EpilogueAttr(*ep);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, d_md), attr, ctx_->engine());
    it = prims_.emplace(key, dnnl::matmul(pd)).first;
  }
  memory am(a_md, ctx_->engine(), const_cast<int8_t*>(a)),
      bm(b_md, ctx_->engine(), const_cast<int8_t*>(b)), dm(d_md, ctx_->engine(), dst);
  it->second.execute(ctx_->stream(),
                     {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, dm}});
  ctx_->stream().wait();
}

void ReferenceS8Gemm(const int8_t* x, const int8_t* w, int m, int n, int k, int32_t* acc) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int l = 0; l < k; ++l) s += int32_t{x[i * k + l]} * int32_t{w[j * k + l]};
      acc[i * n + j] = s;
    }
  }
}

float ReferenceEpilogue(const S8Epilogue& ep, int n_index, int32_t acc) {
  float scale = ep.scale.size() > 1 ? ep.scale[n_index] : ep.scale[0];
  float y = scale * (static_cast<float>(acc) + (ep.bias.empty() ? 0.0f : ep.bias[n_index]));
  if (ep.gelu) y = 0.5f * y * (1.0f + std::erf(y / std::sqrt(2.0f))) * ep.gelu_scale;
  if (ep.clip) y = std::fmin(std::fmax(y, ep.lo), ep.hi);
  return y;
}

}  // namespace vitq::kernels
