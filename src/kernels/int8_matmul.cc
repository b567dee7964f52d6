// oneDNN int8 matmul wrappers (kernels stage).
#include "int8_matmul.h"

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

__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void DotRows4(
    const int8_t* x0, const int8_t* x1, const int8_t* x2, const int8_t* x3, const int8_t* w, int k,
    int32_t* out) {
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

// acc[M, N] = x[M, K] · w[N, K]^T exactly, rows in blocks of 4, in parallel.
void OwnGemm(const int8_t* x, const int8_t* w, int m, int n, int k, int32_t* acc) {
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

// Writes the epilogue of acc[M, N] into dst (f32, f32 +=, or s8) as oneDNN would.
void OwnEpilogue(const S8Epilogue& ep, const int32_t* acc, int m, int n, void* dst) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      const int64_t idx = static_cast<int64_t>(i) * n + j;
      const float y = ReferenceEpilogue(ep, j, acc[idx]);
      if (ep.s8_dst) {
        static_cast<int8_t*>(dst)[idx] =
            static_cast<int8_t>(std::nearbyint(std::min(std::max(y, -128.0f), 127.0f)));
      } else if (ep.accumulate) {
        static_cast<float*>(dst)[idx] += y;
      } else {
        static_cast<float*>(dst)[idx] = y;
      }
    }
  }
}

// f32(acc) + bias, times the scale: oneDNN's order for int8 matmuls (measured bit-exact on 2.6's
// brgemm kernels); never contracted into an FMA.
__attribute__((optimize("fp-contract=off"))) inline float ScaleBias(float scale, float bias,
                                                                    int32_t acc) {
  return scale * (static_cast<float>(acc) + bias);
}

// oneDNN's int8 matmul epilogue reproduced (see GemmExec): the GELU post-op is computed by
// oneDNN's standalone eltwise primitive, which uses the same JIT code.
void DnnlEpilogueReplica(DnnlOps* ops, const S8Epilogue& ep, const int32_t* acc, int m, int n,
                         void* dst) {
  const int64_t total = static_cast<int64_t>(m) * n;
  std::vector<float> y(static_cast<size_t>(total));
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      const int64_t idx = static_cast<int64_t>(i) * n + j;
      const float scale = ep.scale.size() > 1 ? ep.scale[j] : ep.scale[0];
      y[idx] = ScaleBias(scale, ep.bias.empty() ? 0.0f : ep.bias[j], acc[idx]);
    }
  }
  if (ep.gelu) ops->Gelu(y.data(), total);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < total; ++i) {
    if (ep.gelu) y[i] *= ep.gelu_scale;
    if (ep.clip) y[i] = std::fmin(std::fmax(y[i], ep.lo), ep.hi);
    if (ep.s8_dst) {
      static_cast<int8_t*>(dst)[i] =
          static_cast<int8_t>(std::nearbyint(std::fmin(std::fmax(y[i], -128.0f), 127.0f)));
    } else if (ep.accumulate) {
      static_cast<float*>(dst)[i] += y[i];
    } else {
      static_cast<float*>(dst)[i] = y[i];
    }
  }
}

std::vector<float> ToFloat(const int8_t* v, int64_t n) {
  std::vector<float> f(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f[i] = v[i];
  return f;
}

}  // namespace

void ApplyEpilogue(DnnlOps* ops, const S8Epilogue& ep, const int32_t* acc, int m, int n,
                   void* dst) {
  if (OwnKernel()) {
    OwnEpilogue(ep, acc, m, n, dst);
  } else {
    DnnlEpilogueReplica(ops, ep, acc, m, n, dst);
  }
}

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
                            ":" + std::to_string(n);
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
  if (OwnKernel()) {  // a plain [N, K] copy
    memory plain({{n_, k_}, dt::s8, tag::ab}, ctx_->engine());
    std::memcpy(plain.get_data_handle(), w, static_cast<size_t>(n_) * k_);
    return plain;
  }
  memory packed(packed_desc_, ctx_->engine());
  memory plain({{k_, n_}, dt::s8, tag::ba}, ctx_->engine(), const_cast<int8_t*>(w));
  dnnl::reorder(plain, packed).execute(ctx_->stream(), plain, packed);
  ctx_->stream().wait();
  return packed;
}

void S8Linear::Run(const int8_t* x, int m, const dnnl::memory& packed, int32_t* dst) {
  if (OwnKernel()) {
    OwnGemm(x, static_cast<const int8_t*>(packed.get_data_handle()), m, n_, k_, dst);
    return;
  }
  auto it = prims_.find(m);
  if (it == prims_.end()) {
    memory::desc src_md({m, k_}, dt::s8, tag::ab), dst_md({m, n_}, dt::s32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, packed_desc_, dst_md),
                                    ctx_->engine());
    it = prims_.emplace(m, dnnl::matmul(pd)).first;
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
    wf_ = ToFloat(w, static_cast<int64_t>(n_) * k_);
    exact_ = std::make_unique<ExactF32Matmul>(ctx_);
    ops_ = std::make_unique<DnnlOps>(ctx_);
    return;
  }
  if (OwnKernel()) {
    plain_.assign(w, w + static_cast<size_t>(n_) * k_);
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
  auto it = prims_.find(m);
  if (it == prims_.end()) {
    memory::desc src_md({m, k_}, dt::s8, tag::ab), b_md({1, n_}, dt::f32, tag::ab),
        dst_md({m, n_}, ep_.s8_dst ? dt::s8 : dt::f32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, packed_desc_, b_md, dst_md), attr_,
                                    ctx_->engine());
    it = prims_.emplace(m, std::make_pair(dnnl::matmul(pd), std::string(pd.impl_info_str()))).first;
  }
  return it->second.first;
}

std::string S8GemmLayer::Impl(int m) {
  if (exec_ == GemmExec::kFloatSimulation) return "vitq:f32_simulation";
  if (OwnKernel()) return "vitq:exact_int16";
  Prim(m);
  return prims_.at(m).second;
}

void S8GemmLayer::Run(const int8_t* x, int m, void* dst) {
  if (exec_ == GemmExec::kFloatSimulation) {
    const std::vector<float> xf = ToFloat(x, static_cast<int64_t>(m) * k_);
    std::vector<int32_t> acc(static_cast<size_t>(m) * n_);
    exact_->Run(xf.data(), wf_.data(), /*b_rows_are_k=*/false, 1, m, k_, n_, acc.data());
    ApplyEpilogue(ops_.get(), ep_, acc.data(), m, n_, dst);
    return;
  }
  if (OwnKernel()) {
    std::vector<int32_t> acc(static_cast<size_t>(m) * n_);
    OwnGemm(x, plain_.data(), m, n_, k_, acc.data());
    OwnEpilogue(ep_, acc.data(), m, n_, dst);
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
  std::vector<int8_t> bt;
  for (int i = 0; i < batch; ++i) {
    const int8_t* bi = b + static_cast<int64_t>(i) * k * n;
    if (b_rows_are_k) {
      bt.resize(static_cast<size_t>(k) * n);
      for (int r = 0; r < k; ++r)
        for (int c = 0; c < n; ++c) bt[static_cast<size_t>(c) * k + r] = bi[r * n + c];
      bi = bt.data();
    }
    OwnGemm(a + static_cast<int64_t>(i) * m * k, bi, m, n, k,
            dst + static_cast<int64_t>(i) * m * n);
  }
}
}  // namespace

S8BatchedMatmul::S8BatchedMatmul(DnnlContext* ctx, GemmExec exec) : ctx_(ctx), exec_(exec) {
  if (exec_ == GemmExec::kFloatSimulation) {
    exact_ = std::make_unique<ExactF32Matmul>(ctx_);
    ops_ = std::make_unique<DnnlOps>(ctx_);
  }
}

void S8BatchedMatmul::Simulate(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch,
                               int m, int k, int n, const S8Epilogue* ep, void* dst) {
  const std::vector<float> af = ToFloat(a, static_cast<int64_t>(batch) * m * k);
  const std::vector<float> bf = ToFloat(b, static_cast<int64_t>(batch) * k * n);
  if (ep == nullptr) {
    exact_->Run(af.data(), bf.data(), b_rows_are_k, batch, m, k, n, static_cast<int32_t*>(dst));
    return;
  }
  std::vector<int32_t> acc(static_cast<size_t>(batch) * m * n);
  exact_->Run(af.data(), bf.data(), b_rows_are_k, batch, m, k, n, acc.data());
  ApplyEpilogue(ops_.get(), *ep, acc.data(), batch * m, n, dst);
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
    std::vector<int32_t> acc(static_cast<size_t>(batch) * m * n);
    OwnBatched(a, b, b_rows_are_k, batch, m, k, n, acc.data());
    OwnEpilogue(ep, acc.data(), batch * m, n, dst);
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
