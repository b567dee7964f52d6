// int8 matmuls (s8 x s8 -> s32, exact), used by the scale search to evaluate candidate quantized
// outputs and by the integer engine (kernels stage). These front classes hold one backend each
// (gemm_backend.h), chosen once from the effective ISA: oneDNN's kernels where it has VNNI; below
// that (avx512_core, avx2, sse41) oneDNN's u8 x s8 pair products saturate at int16 for full-range
// int8 operands, so vitq's own exact kernel (int16 products, int32 sums) runs instead; and the
// float simulation when asked for (GemmExec::kFloatSimulation).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "dnnl_ops.h"

namespace vitq::kernels {

class Int8GemmBackend;  // gemm_backend.h
class PackedWeights;

// dst[M, N] = x[M, K] · w[N, K]^T in int32. Several packed weight sets of one shape (e.g. the
// candidates of a search step) share the backend's primitives.
class S8Linear {
 public:
  S8Linear(DnnlContext* ctx, int n, int k);
  ~S8Linear();
  // Packs w [N, K] (row-major) into the backend's layout.
  std::unique_ptr<PackedWeights> Pack(const int8_t* w);
  void Run(const int8_t* x, int m, PackedWeights& packed, int32_t* dst);

 private:
  std::unique_ptr<Int8GemmBackend> backend_;
  int n_, k_;
};

// What oneDNN applies to the int32 accumulators of an int8 GEMM before writing dst (the
// integer engine's fused requantization):
//   y = scale[n] · (acc + bias[n])        scale: 1 value or one per output channel;
//                                         bias in accumulator units (b / scale), may be empty
//   y = gelu_erf(y) · gelu_scale          when gelu
//   y = clamp(y, lo, hi)                  when clip (sub-8-bit grids)
//   dst = y (f32), dst += y (f32, accumulate), dst = saturate_s8(round_half_even(y)) (s8_dst),
//   or dst = saturate_u8(round_half_even(y + dst_zero)) (u8_dst: an 8-bit grid with a zero
//   point, stored as its codes 0..255).
struct S8Epilogue {
  std::vector<float> scale{1.0f};
  std::vector<float> bias;
  bool gelu = false;
  float gelu_scale = 1.0f;
  bool clip = false;
  float lo = 0.0f, hi = 0.0f;
  bool s8_dst = false;
  bool u8_dst = false;
  float dst_zero = 0.0f;  // u8_dst only: the grid's zero point
  bool accumulate = false;
};

// How S8GemmLayer and S8BatchedMatmul compute:
//   kInteger          the int8 kernels (oneDNN's on VNNI CPUs, vitq's exact int16 one below);
//   kFloatSimulation  the float simulation of those kernels (the integer engine's --simulate
//                     path): the int8 operands converted to float, multiplied by oneDNN's f32
//                     matmul, then ApplyEpilogue, vitq's replica of oneDNN's fused epilogue
//                     (which vitq's own kernel uses as its epilogue too). The float products are
//                     taken over K in chunks of at most kExactChunk so every partial sum is an
//                     integer of magnitude <= 2^24, hence exact. The results equal the integer
//                     path's bit for bit (tested).
enum class GemmExec { kInteger, kFloatSimulation };
constexpr int kExactChunk = 1024;   // 1024 · 128 · 128 = 2^24
constexpr int kExactChunkU8 = 512;  // an unsigned operand: 512 · 255 · 128 < 2^24

// Exact int32 products of integer-valued float matrices on oneDNN's f32 matmul:
// acc[B, M, N] = a[B, M, K] · b, with b as [B, K, N] (b_rows_are_k) or [B, N, K]. Every value of
// a and b must be an integer of magnitude <= 128, or with chunk = kExactChunkU8, a in [0, 255].
class ExactF32Matmul {
 public:
  explicit ExactF32Matmul(DnnlContext* ctx) : ctx_(ctx) {}
  void Run(const float* a, const float* b, bool b_rows_are_k, int batch, int m, int k, int n,
           int32_t* acc, int chunk = kExactChunk);

 private:
  DnnlContext* ctx_;
  std::map<std::string, dnnl::matmul> prims_;
  std::vector<float> part_;
};

// Applies `ep` to int32 accumulators acc[M, N] exactly as oneDNN's fused int8 matmul epilogue
// does (measured bit-exact on oneDNN 2.6's brgemm kernels): f32(acc) + bias, times the scale (no
// FMA contraction); GELU by oneDNN's standalone eltwise primitive (the same JIT code as the
// post-op), times gelu_scale; clip; then saturate and round half to even (s8), store or add (f32).
// The epilogue of vitq's own kernel (CPUs without VNNI) and of the float simulation. dst is float*
// or int8_t* (ep.s8_dst).
void ApplyEpilogue(DnnlOps* ops, const S8Epilogue& ep, const int32_t* acc, int m, int n, void* dst);

// A linear layer with int8 weights packed once: dst[M, N] = epilogue(x[M, K] · w[N, K]^T). x is
// s8, or u8 (0..255) when x_u8: the codes of an 8-bit input grid with a zero point z, whose
// term -z · Σ_k w[n, k] the caller folds into the epilogue's bias.
class S8GemmLayer {
 public:
  S8GemmLayer(DnnlContext* ctx, const int8_t* w, int n, int k, S8Epilogue epilogue,
              GemmExec exec = GemmExec::kInteger, bool x_u8 = false);
  ~S8GemmLayer();
  int n() const { return n_; }
  int k() const { return k_; }
  bool x_u8() const { return x_u8_; }
  // dst is float* (f32 epilogues), int8_t* (s8_dst) or uint8_t* (u8_dst). x's bytes are u8
  // when the layer was made with x_u8.
  void Run(const int8_t* x, int m, void* dst);
  void Run(const uint8_t* x, int m, void* dst) { Run(reinterpret_cast<const int8_t*>(x), m, dst); }
  // The implementation for batch rows m (oneDNN's name, e.g. "brg:avx512_core_vnni", or
  // "vitq:exact_int16" / "vitq:f32_simulation").
  std::string Impl(int m);

 private:
  int n_, k_;
  bool x_u8_;
  std::unique_ptr<Int8GemmBackend> backend_;
  std::unique_ptr<PackedWeights> weights_;
};

// Batched: dst[B, M, N] = a[B, M, K] · b[B, K, N] in int32, with b given either as [B, K, N]
// (b_rows_are_k) or as [B, N, K] (its transpose, e.g. K for Q·Kᵀ).
class S8BatchedMatmul {
 public:
  explicit S8BatchedMatmul(DnnlContext* ctx, GemmExec exec = GemmExec::kInteger);
  ~S8BatchedMatmul();
  void Run(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k, int n,
           int32_t* dst);
  // The same with a common-scale epilogue (ep.scale has one value, no bias, GELU or accumulate):
  // dst is float* or int8_t* (ep.s8_dst).
  void Run(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k, int n,
           const S8Epilogue& ep, void* dst);
  // The same with `a` unsigned (u8, 0..255): the integer engine's P at 8 bits, whose values are
  // all >= 0. u8 x s8 is VNNI's native pairing; the exact int16 kernel and the float simulation
  // (K chunks of kExactChunkU8) stay exact for it.
  void RunU8(const uint8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k, int n,
             const S8Epilogue& ep, void* dst);

 private:
  std::unique_ptr<Int8GemmBackend> backend_;
};

// Scalar references for the tests: acc[M, N] = x[M, K] · w[N, K]^T, and the epilogue applied to
// accumulators the way the oneDNN kernels apply it (f32 result before rounding to s8 or u8, the
// zero point added for u8_dst).
void ReferenceS8Gemm(const int8_t* x, const int8_t* w, int m, int n, int k, int32_t* acc);
void ReferenceU8Gemm(const uint8_t* x, const int8_t* w, int m, int n, int k, int32_t* acc);
float ReferenceEpilogue(const S8Epilogue& ep, int n_index, int32_t acc);

}  // namespace vitq::kernels
