// The seam between vitq's int8 GEMM front classes (int8_matmul.h) and their implementations
// (kernels stage, internal). One backend is chosen per front object from one decision
// (ChooseGemmBackend): the float simulation when asked for, else oneDNN's kernels where the
// effective ISA (after VITQ_ISA) has VNNI, else vitq's own exact kernel at the process's SIMD
// level (AVX2 or portable, simd.h). Adding a backend (e.g. another library's int8 GEMM) means a
// class here and a case in MakeGemmBackend; the fronts and their callers do not change.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dnnl_ops.h"
#include "int8_matmul.h"

namespace vitq::kernels {

// Weights [N, K] in a backend's layout (the subclass holds it), with the epilogue every GEMM on
// them applies (none: the s32 accumulators are the output).
class PackedWeights {
 public:
  PackedWeights(int n_, int k_, const S8Epilogue* ep_, bool x_u8_)
      : n(n_),
        k(k_),
        x_u8(x_u8_),
        has_ep(ep_ != nullptr),
        ep(ep_ != nullptr ? *ep_ : S8Epilogue{}) {}
  virtual ~PackedWeights() = default;
  const int n, k;
  const bool x_u8;  // Gemm's x is u8 (0..255), else s8
  const bool has_ep;
  const S8Epilogue ep;
};

class Int8GemmBackend {
 public:
  virtual ~Int8GemmBackend() = default;
  // w [N, K] (row-major) prepared for Gemm; `ep` is the epilogue Gemm applies (nullptr: the s32
  // accumulators are the output); Gemm's x is u8 when x_u8.
  virtual std::unique_ptr<PackedWeights> Prepare(const int8_t* w, int n, int k,
                                                 const S8Epilogue* ep, bool x_u8) = 0;
  // dst[M, N] = ep(x[M, K] · wᵀ): int32_t* without an epilogue, else float*, int8_t* or uint8_t*.
  virtual void Gemm(const int8_t* x, int m, PackedWeights& w, void* dst) = 0;
  // dst[B, M, N] = ep(a[B, M, K] · b), b as [B, K, N] (b_rows_are_k) or [B, N, K]; a's bytes are
  // u8 when a_u8 (values 0..255), else s8.
  virtual void Batched(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k,
                       int n, const S8Epilogue* ep, void* dst, bool a_u8) = 0;
  // The implementation that runs Gemm for m rows (e.g. oneDNN's "brg:avx512_core_vnni").
  virtual std::string Impl(PackedWeights& w, int m) = 0;
};

enum class GemmBackendKind { kOneDnn, kOwn, kFloatSimulation };
// The one decision: kFloatSimulation for GemmExec::kFloatSimulation; else kOneDnn where
// EffectiveIsa() has VNNI (below it oneDNN's u8 x s8 pair sums saturate at int16), else kOwn.
GemmBackendKind ChooseGemmBackend(GemmExec exec);
std::unique_ptr<Int8GemmBackend> MakeGemmBackend(DnnlContext* ctx, GemmExec exec);

// The implementations (gemm_onednn.cc, gemm_own.cc, gemm_simulation.cc).
std::unique_ptr<Int8GemmBackend> MakeOneDnnGemm(DnnlContext* ctx);
std::unique_ptr<Int8GemmBackend> MakeOwnGemm(DnnlContext* ctx);
std::unique_ptr<Int8GemmBackend> MakeSimulationGemm(DnnlContext* ctx);

}  // namespace vitq::kernels
