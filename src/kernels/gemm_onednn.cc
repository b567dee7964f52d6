// oneDNN's int8 matmuls behind the GEMM seam (kernels stage): CPUs whose effective ISA has VNNI.
#include <omp.h>

#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "gemm_backend.h"

namespace vitq::kernels {
namespace {
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::primitive_attr EpilogueAttr(const S8Epilogue& ep) {
  dnnl::primitive_attr attr;
  attr.set_output_scales(ep.scale.size() > 1 ? 2 : 0, ep.scale);
  dnnl::post_ops ops;
  if (ep.gelu) ops.append_eltwise(ep.gelu_scale, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f);
  if (ep.clip) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, ep.lo, ep.hi);
  if (ep.u8_dst) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, 1.0f, ep.dst_zero);
  if (ep.accumulate) ops.append_sum(1.0f);
  attr.set_post_ops(ops);
  return attr;
}

// A primitive and oneDNN's name for its implementation.
using Prim = std::pair<dnnl::matmul, std::string>;

struct OneDnnWeights : PackedWeights {
  using PackedWeights::PackedWeights;
  dnnl::primitive_attr attr;
  memory::desc packed_desc;
  memory packed, bias;
  // With an epilogue (its scales are part of the primitive): by (M, OpenMP threads), since a
  // primitive keeps the thread count it was created with.
  std::map<std::pair<int, int>, Prim> prims;
};

class OneDnnGemm final : public Int8GemmBackend {
 public:
  explicit OneDnnGemm(DnnlContext* ctx) : ctx_(ctx) {}

  std::unique_ptr<PackedWeights> Prepare(const int8_t* w, int n, int k, const S8Epilogue* ep,
                                         bool x_u8) override {
    auto p = std::make_unique<OneDnnWeights>(n, k, ep, x_u8);
    if (ep != nullptr) p->attr = EpilogueAttr(*ep);
    p->packed_desc = PackedDesc(*p);
    p->packed = memory(p->packed_desc, ctx_->engine());
    memory plain({{k, n}, dt::s8, tag::ba}, ctx_->engine(), const_cast<int8_t*>(w));
    dnnl::reorder(plain, p->packed).execute(ctx_->stream(), plain, p->packed);
    if (ep != nullptr) {
      p->bias = memory({{1, n}, dt::f32, tag::ab}, ctx_->engine());
      float* b = static_cast<float*>(p->bias.get_data_handle());
      for (int i = 0; i < n; ++i) b[i] = ep->bias.empty() ? 0.0f : ep->bias[i];
    }
    ctx_->stream().wait();
    return p;
  }

  void Gemm(const int8_t* x, int m, PackedWeights& weights, void* dst) override {
    auto& w = static_cast<OneDnnWeights&>(weights);
    Prim& prim = PrimFor(w, m);
    memory src({{m, w.k}, SrcType(w), tag::ab}, ctx_->engine(), const_cast<int8_t*>(x));
    memory d({{m, w.n}, DstType(w), tag::ab}, ctx_->engine(), dst);
    if (w.has_ep) {
      prim.first.execute(ctx_->stream(), {{DNNL_ARG_SRC, src},
                                          {DNNL_ARG_WEIGHTS, w.packed},
                                          {DNNL_ARG_BIAS, w.bias},
                                          {DNNL_ARG_DST, d}});
    } else {
      prim.first.execute(ctx_->stream(),
                         {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w.packed}, {DNNL_ARG_DST, d}});
    }
    ctx_->stream().wait();
  }

  void Batched(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k, int n,
               const S8Epilogue* ep, void* dst, bool a_u8) override {
    const dt dst_type = ep == nullptr ? dt::s32
                        : ep->s8_dst  ? dt::s8
                        : ep->u8_dst  ? dt::u8
                                      : dt::f32;
    memory::desc a_md({batch, m, k}, a_u8 ? dt::u8 : dt::s8, tag::abc);
    memory::desc b_md({batch, k, n}, dt::s8, b_rows_are_k ? tag::abc : tag::acb);
    memory::desc d_md({batch, m, n}, dst_type, tag::abc);
    // The epilogue (its scale included) is part of the primitive: one primitive per site.
    std::string key = std::string(a_u8 ? "u8:" : "s8:") + std::to_string(b_rows_are_k) + ":" +
                      std::to_string(batch) + ":" + std::to_string(m) + ":" + std::to_string(k) +
                      ":" + std::to_string(n);
    if (ep != nullptr) {
      key += ":" + std::to_string(ep->s8_dst) + std::to_string(ep->u8_dst) +
             ExactFloatKey(ep->dst_zero) + ":" + std::to_string(ep->clip) + ":" +
             ExactFloatKey(ep->lo) + ":" + ExactFloatKey(ep->hi) + ":" +
             ExactFloatKey(ep->scale.at(0));
    }
    key += ":t" + std::to_string(omp_get_max_threads());  // a primitive keeps its thread count
    auto it = batched_.find(key);
    if (it == batched_.end()) {
      dnnl::primitive_attr attr = ep == nullptr ? dnnl::primitive_attr() : EpilogueAttr(*ep);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, d_md), attr, ctx_->engine());
      it = batched_.emplace(key, dnnl::matmul(pd)).first;
    }
    memory am(a_md, ctx_->engine(), const_cast<int8_t*>(a)),
        bm(b_md, ctx_->engine(), const_cast<int8_t*>(b)), dm(d_md, ctx_->engine(), dst);
    it->second.execute(ctx_->stream(),
                       {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, dm}});
    ctx_->stream().wait();
  }

  std::string Impl(PackedWeights& weights, int m) override {
    return PrimFor(static_cast<OneDnnWeights&>(weights), m).second;
  }

 private:
  static dt DstType(const OneDnnWeights& w) {
    return !w.has_ep ? dt::s32 : w.ep.s8_dst ? dt::s8 : w.ep.u8_dst ? dt::u8 : dt::f32;
  }
  static dt SrcType(const OneDnnWeights& w) { return w.x_u8 ? dt::u8 : dt::s8; }

  // The weights layout the primitive picks for a typical M (a batch of 197-token images); every
  // M shares it. Without an epilogue, weights of one shape share it (the search's candidates).
  memory::desc PackedDesc(const OneDnnWeights& w) {
    const int n = w.n, k = w.k;
    memory::desc src_md({256, k}, SrcType(w), tag::ab), w_md({k, n}, dt::s8, tag::any),
        dst_md({256, n}, DstType(w), tag::ab);
    if (!w.has_ep) {
      const auto key = std::make_tuple(n, k, w.x_u8);
      auto it = s32_desc_.find(key);
      if (it == s32_desc_.end()) {
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_md, dst_md), ctx_->engine());
        it = s32_desc_.emplace(key, pd.weights_desc()).first;
      }
      return it->second;
    }
    memory::desc b_md({1, n}, dt::f32, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_md, b_md, dst_md), w.attr,
                                    ctx_->engine());
    return pd.weights_desc();
  }

  Prim& PrimFor(OneDnnWeights& w, int m) {
    const int threads = omp_get_max_threads();
    if (!w.has_ep) {
      // Shared by every weight set of this shape.
      const auto key = std::make_tuple(w.n, w.k, w.x_u8, m, threads);
      auto it = s32_prims_.find(key);
      if (it == s32_prims_.end()) {
        memory::desc src_md({m, w.k}, SrcType(w), tag::ab), dst_md({m, w.n}, dt::s32, tag::ab);
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w.packed_desc, dst_md),
                                        ctx_->engine());
        it = s32_prims_.emplace(key, Prim(dnnl::matmul(pd), pd.impl_info_str())).first;
      }
      return it->second;
    }
    const std::pair<int, int> key(m, threads);
    auto it = w.prims.find(key);
    if (it == w.prims.end()) {
      memory::desc src_md({m, w.k}, SrcType(w), tag::ab), b_md({1, w.n}, dt::f32, tag::ab),
          dst_md({m, w.n}, DstType(w), tag::ab);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w.packed_desc, b_md, dst_md),
                                      w.attr, ctx_->engine());
      it = w.prims.emplace(key, Prim(dnnl::matmul(pd), pd.impl_info_str())).first;
    }
    return it->second;
  }

  DnnlContext* ctx_;
  std::map<std::tuple<int, int, bool>, memory::desc> s32_desc_;     // by (N, K, u8 x)
  std::map<std::tuple<int, int, bool, int, int>, Prim> s32_prims_;  // (N, K, u8 x, M, threads)
  std::map<std::string, dnnl::matmul> batched_;
};
}  // namespace

std::unique_ptr<Int8GemmBackend> MakeOneDnnGemm(DnnlContext* ctx) {
  return std::make_unique<OneDnnGemm>(ctx);
}

}  // namespace vitq::kernels
