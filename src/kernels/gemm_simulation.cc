// The float simulation of the int8 GEMMs behind the GEMM seam (kernels stage; the integer
// engine's --simulate path): the int8 operands as float, multiplied exactly by oneDNN's f32
// matmul in K chunks (ExactF32Matmul), then ApplyEpilogue, so results equal the integer
// kernels' bit for bit (tested).
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gemm_backend.h"

namespace vitq::kernels {
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {
// out = v as float (T: int8_t, or uint8_t for a u8 operand), reusing out's storage between calls.
template <typename T>
void ToFloat(const T* v, int64_t n, std::vector<float>* out) {
  out->resize(static_cast<size_t>(n));
  float* f = out->data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f[i] = v[i];
}
}  // namespace

void ExactF32Matmul::Run(const float* a, const float* b, bool b_rows_are_k, int batch, int m, int k,
                         int n, int32_t* acc, int chunk) {
  const int64_t out = static_cast<int64_t>(batch) * m * n;
  part_.resize(static_cast<size_t>(out));
  for (int k0 = 0; k0 < k; k0 += chunk) {
    const int kc = std::min(chunk, k - k0);
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

namespace {
struct SimulationWeights : PackedWeights {
  using PackedWeights::PackedWeights;
  std::vector<float> wf;  // the weights' integers as float [N, K]
};

class SimulationGemm final : public Int8GemmBackend {
 public:
  explicit SimulationGemm(DnnlContext* ctx) : exact_(ctx), ops_(ctx) {}

  std::unique_ptr<PackedWeights> Prepare(const int8_t* w, int n, int k, const S8Epilogue* ep,
                                         bool x_u8) override {
    auto p = std::make_unique<SimulationWeights>(n, k, ep, x_u8);
    ToFloat(w, static_cast<int64_t>(n) * k, &p->wf);
    return p;
  }

  void Gemm(const int8_t* x, int m, PackedWeights& weights, void* dst) override {
    auto& w = static_cast<SimulationWeights&>(weights);
    if (w.x_u8) {
      ToFloat(reinterpret_cast<const uint8_t*>(x), static_cast<int64_t>(m) * w.k, &af_);
    } else {
      ToFloat(x, static_cast<int64_t>(m) * w.k, &af_);
    }
    const int chunk = w.x_u8 ? kExactChunkU8 : kExactChunk;
    if (!w.has_ep) {
      exact_.Run(af_.data(), w.wf.data(), /*b_rows_are_k=*/false, 1, m, w.k, w.n,
                 static_cast<int32_t*>(dst), chunk);
      return;
    }
    acc_.resize(static_cast<size_t>(m) * w.n);
    exact_.Run(af_.data(), w.wf.data(), /*b_rows_are_k=*/false, 1, m, w.k, w.n, acc_.data(), chunk);
    ApplyEpilogue(&ops_, w.ep, acc_.data(), m, w.n, dst);
  }

  void Batched(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k, int n,
               const S8Epilogue* ep, void* dst, bool a_u8) override {
    if (a_u8) {
      ToFloat(reinterpret_cast<const uint8_t*>(a), static_cast<int64_t>(batch) * m * k, &af_);
    } else {
      ToFloat(a, static_cast<int64_t>(batch) * m * k, &af_);
    }
    ToFloat(b, static_cast<int64_t>(batch) * k * n, &bf_);
    const int chunk = a_u8 ? kExactChunkU8 : kExactChunk;
    if (ep == nullptr) {
      exact_.Run(af_.data(), bf_.data(), b_rows_are_k, batch, m, k, n, static_cast<int32_t*>(dst),
                 chunk);
      return;
    }
    acc_.resize(static_cast<size_t>(batch) * m * n);
    exact_.Run(af_.data(), bf_.data(), b_rows_are_k, batch, m, k, n, acc_.data(), chunk);
    ApplyEpilogue(&ops_, *ep, acc_.data(), batch * m, n, dst);
  }

  std::string Impl(PackedWeights&, int) override { return "vitq:f32_simulation"; }

 private:
  ExactF32Matmul exact_;
  DnnlOps ops_;
  std::vector<int32_t> acc_;    // accumulators before the epilogue, kept between calls
  std::vector<float> af_, bf_;  // the operands' integers as float, kept between calls
};
}  // namespace

std::unique_ptr<Int8GemmBackend> MakeSimulationGemm(DnnlContext* ctx) {
  return std::make_unique<SimulationGemm>(ctx);
}

}  // namespace vitq::kernels
