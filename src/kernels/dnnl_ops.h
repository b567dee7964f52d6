// oneDNN provider for the float engine: matmuls with prepacked weights and fused epilogues,
// batched attention matmuls, LayerNorm, softmax and GELU (kernels stage).
// oneDNN was chosen by measurement (docs/ARCHITECTURE.md, "GEMM library"): its matmul with packed
// weights reached ~106 GMAC/s on DeiT shapes on 2 cores, OpenBLAS sgemm 82-98.
#pragma once

#include <dnnl.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace vitq::kernels {

// Exact text of a float for primitive cache keys (std::to_string rounds to 6 decimals).
std::string ExactFloatKey(float v);

class DnnlContext {
 public:
  DnnlContext() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}
  dnnl::engine& engine() { return engine_; }
  dnnl::stream& stream() { return stream_; }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
};

// A linear layer y = x W^T + b with W [N, K] (row-major) packed into oneDNN's preferred layout.
class PackedLinear {
 public:
  PackedLinear(DnnlContext* ctx, const float* weight, const float* bias, int n, int k);
  int n() const { return n_; }
  int k() const { return k_; }
  // dst[M, N] = src[M, K] W^T + b, then optionally GELU (erf), then optionally += old dst.
  void Run(const float* src, int m, float* dst, bool gelu, bool accumulate);

 private:
  DnnlContext* ctx_;
  int n_, k_;
  dnnl::memory weight_plain_, bias_;
  std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> packed_;  // by chosen weights layout
  // By (M, gelu, accumulate, OpenMP threads): a oneDNN primitive keeps the thread count it was
  // created with, so a call on fewer threads (AdaptiveThreads) needs its own.
  std::map<std::tuple<int, bool, bool, int>, dnnl::matmul> prims_;
  std::map<std::tuple<int, bool, bool, int>, dnnl::memory::desc> prim_wdesc_;
};

// Primitive cache for the shape-dependent float ops. Not thread-safe: one per engine.
// q[i] = clamp(round_half_even(x[i] / scale), qmin, qmax), vectorized and multithreaded; equal to
// QuantizeValue element by element.
void QuantizeS8(const float* x, int64_t n, float scale, int qmin, int qmax, int8_t* q);
// The same on the calling thread only (for loops that are already parallel).
void QuantizeS8Serial(const float* x, int64_t n, float scale, int qmin, int qmax, int8_t* q);
// The same onto an unsigned grid, 0 <= qmin <= qmax <= 255 (P at 8 bits).
void QuantizeU8(const float* x, int64_t n, float scale, int qmin, int qmax, uint8_t* q);
// Each row of x [m, k] on its own kUniformRow grid (UniformRowGrid with the plan's `scale`,
// codes 0..qmax): the u8 codes into q [m, k], each row's step and zero point (as float) into
// step[m], zero[m]; vectorized, rows in parallel; equal to FakeQuantizeUniformRows's codes.
void QuantizeRowsU8(const float* x, int m, int k, float scale, int qmax, uint8_t* q, float* step,
                    float* zero);

// Softmax of each row of x [rows, t] onto its own uniform grid 0 .. the row's maximum r (P's
// kUniformRow grid at the plan's `scale`, the step's share of r): with e_i = exp(x_i - max x) and
// s = Σ e_i, P_i = e_i / s and r = 1 / s, so the code of P_i is round(e_i / scale) (0..qmax) and
// the row's step scale · r = scale / s. x is overwritten; vectorized exp (a few ulp), rows in
// parallel. The same codes as softmax then QuantizeRowsU8 up to the float rounding of P.
void SoftmaxRowsU8(float* x, int rows, int t, float scale, int qmax, uint8_t* q, float* step);

class DnnlOps {
 public:
  explicit DnnlOps(DnnlContext* ctx) : ctx_(ctx) {}
  // scores[BH, T, T] = scale * Q[BH, T, hd] K[BH, T, hd]^T
  void AttentionScores(const float* q, const float* k, int bh, int t, int hd, float scale,
                       float* scores);
  // out[B, T, H, hd] = P[B, H, T, T] V[B, H, T, hd] (heads merged into the token rows)
  void AttentionValues(const float* p, const float* v, int b, int h, int t, int hd, float* out);
  // dst[B, M, N] = a[B, M, K] · b, with b as [B, K, N] (b_rows_are_k) or [B, N, K] (transposed).
  void BatchedMatmul(const float* a, const float* b, bool b_rows_are_k, int batch, int m, int k,
                     int n, float* dst);
  // dst (int8) = saturate_s8(round_half_even(softmax(x) * out_scale)) over the last axis of
  // [rows, cols] in one oneDNN softmax_v2 pass (the integer engine's P at 8 bits).
  void SoftmaxQuantize(const float* x, int rows, int cols, float out_scale, int8_t* dst);
  // The same onto u8 (saturate_u8): P on the unsigned 8-bit grid, twice the levels of s8.
  void SoftmaxQuantize(const float* x, int rows, int cols, float out_scale, uint8_t* dst);
  // Whether oneDNN runs that softmax (s8 or u8 destination) with a JIT kernel on this ISA (2.6
  // has none for an int8 destination below AVX-512; its reference kernel took half the engine's
  // time there).
  bool SoftmaxQuantizeIsJit(int rows, int cols, float out_scale, bool u8 = false);
  // In place softmax over the last axis of [rows, cols].
  void Softmax(float* x, int rows, int cols);
  // dst[M, D] = LayerNorm(src[M, D]) * gamma + beta
  void LayerNorm(const float* src, int m, int d, const float* gamma, const float* beta, float eps,
                 float* dst);
  // dst[M, D] (int8) = quantize(LayerNorm(src) * gamma + beta) on the grid scale/[qmin, qmax]
  // (round half to even, as QuantizeValue).
  void LayerNormQuantize(const float* src, int m, int d, const float* gamma, const float* beta,
                         float eps, float scale, int qmin, int qmax, int8_t* dst);
  // In place exact (erf) GELU on n values.
  void Gelu(float* x, int64_t n);

 private:
  DnnlContext* ctx_;
  std::map<std::string, dnnl::primitive> prims_;
  std::map<std::string, bool> softmax_jit_;
  void SoftmaxQuantizeTo(const float* x, int rows, int cols, float out_scale, void* dst, bool u8);
  dnnl::primitive& Get(const std::string& key, const std::function<dnnl::primitive()>& make);
};

}  // namespace vitq::kernels
