// oneDNN int8 matmul wrappers (kernels stage).
#include "int8_matmul.h"

namespace vitq::kernels {
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

S8Linear::S8Linear(DnnlContext* ctx, int n, int k) : ctx_(ctx), n_(n), k_(k) {
  // The packed layout is chosen by the primitive for a typical M; all M share it.
  memory::desc src_md({256, k_}, dt::s8, tag::ab), w_md({k_, n_}, dt::s8, tag::any),
      dst_md({256, n_}, dt::s32, tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_md, dst_md), ctx_->engine());
  packed_desc_ = pd.weights_desc();
}

dnnl::memory S8Linear::Pack(const int8_t* w) {
  memory packed(packed_desc_, ctx_->engine());
  memory plain({{k_, n_}, dt::s8, tag::ba}, ctx_->engine(), const_cast<int8_t*>(w));
  dnnl::reorder(plain, packed).execute(ctx_->stream(), plain, packed);
  ctx_->stream().wait();
  return packed;
}

void S8Linear::Run(const int8_t* x, int m, const dnnl::memory& packed, int32_t* dst) {
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

void S8BatchedMatmul::Run(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m,
                          int k, int n, int32_t* dst) {
  auto key = std::make_tuple(b_rows_are_k, batch, m, k, n);
  memory::desc a_md({batch, m, k}, dt::s8, tag::abc);
  memory::desc b_md({batch, k, n}, dt::s8, b_rows_are_k ? tag::abc : tag::acb);
  memory::desc d_md({batch, m, n}, dt::s32, tag::abc);
  auto it = prims_.find(key);
  if (it == prims_.end()) {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, d_md), ctx_->engine());
    it = prims_.emplace(key, dnnl::matmul(pd)).first;
  }
  memory am(a_md, ctx_->engine(), const_cast<int8_t*>(a)),
      bm(b_md, ctx_->engine(), const_cast<int8_t*>(b)), dm(d_md, ctx_->engine(), dst);
  it->second.execute(ctx_->stream(),
                     {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, dm}});
  ctx_->stream().wait();
}

}  // namespace vitq::kernels
