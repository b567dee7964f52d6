// oneDNN int8 matmuls (s8 x s8 -> s32, exact), used by the scale search to evaluate candidate
// quantized outputs with integer GEMMs (kernels stage). Scales and biases are applied by the
// caller while it reads the accumulators: oneDNN 2.6 falls back to its reference kernel when
// runtime output scales are attached, so the primitives carry no attributes.
#pragma once

#include <cstdint>
#include <map>
#include <tuple>

#include "dnnl_ops.h"

namespace vitq::kernels {

// dst[M, N] = x[M, K] · w[N, K]^T in int32. Several packed weight sets of one shape (e.g. the
// candidates of a search step) share the primitives.
class S8Linear {
 public:
  S8Linear(DnnlContext* ctx, int n, int k);
  // Packs w [N, K] (row-major) into oneDNN's layout.
  dnnl::memory Pack(const int8_t* w);
  void Run(const int8_t* x, int m, const dnnl::memory& packed, int32_t* dst);

 private:
  DnnlContext* ctx_;
  int n_, k_;
  dnnl::memory::desc packed_desc_;
  std::map<int, dnnl::matmul> prims_;
};

// Batched: dst[B, M, N] = a[B, M, K] · b[B, K, N] in int32, with b given either as [B, K, N]
// (b_rows_are_k) or as [B, N, K] (its transpose, e.g. K for Q·Kᵀ).
class S8BatchedMatmul {
 public:
  explicit S8BatchedMatmul(DnnlContext* ctx) : ctx_(ctx) {}
  void Run(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k, int n,
           int32_t* dst);

 private:
  DnnlContext* ctx_;
  std::map<std::tuple<bool, int, int, int, int>, dnnl::matmul> prims_;
};

}  // namespace vitq::kernels
