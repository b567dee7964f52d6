// The int8 GEMM epilogue of vitq's own kernel and of the float simulation (kernels stage): a
// replica of oneDNN's fused int8 matmul epilogue, bit for bit.
#include <cstring>
#include <vector>

#include "int8_matmul.h"
#include "simd.h"
#include "vitq/quant.h"

namespace vitq::kernels {

namespace {
// One row of the epilogue's first step, y = scale · (f32(acc) + bias): oneDNN's order for int8
// matmuls (measured bit-exact on 2.6's brgemm kernels), never contracted into an FMA; scale and
// bias per channel (n values) or one scale (scale_n == 1) and no bias (bias == nullptr).
VITQ_SIMD_BODY VITQ_NO_FMA void ScaleBiasRowBody(const int32_t* acc, int n, const float* scale,
                                                 int scale_n, const float* bias, float* y) {
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
VITQ_SIMD_FUNCTION(VITQ_NO_FMA, void, ScaleBiasRow,
                   (const int32_t* acc, int n, const float* scale, int scale_n, const float* bias,
                    float* y),
                   (acc, n, scale, scale_n, bias, y))

// The rest on a run of values: times gelu_scale (when GELU), clip, then the destination:
// s8 (QuantizeToGrid: round half to even, saturate), u8 (plus the zero point, then the same),
// f32 +=, or f32.
VITQ_SIMD_BODY VITQ_NO_FMA void FinishRunBody(float* y, int64_t n, const S8Epilogue& ep,
                                              void* dst) {
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
    for (int64_t i = 0; i < n; ++i)
      q[i] = static_cast<int8_t>(QuantizeToGrid(y[i], -128.0f, 127.0f));
  } else if (ep.u8_dst) {
    auto* q = static_cast<uint8_t*>(dst);
    const float z = ep.dst_zero;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i)
      q[i] = static_cast<uint8_t>(QuantizeToGrid(y[i] + z, 0.0f, 255.0f));
  } else if (ep.accumulate) {
    auto* f = static_cast<float*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) f[i] += y[i];
  } else {
    std::memcpy(dst, y, static_cast<size_t>(n) * sizeof(float));
  }
}
VITQ_SIMD_FUNCTION(VITQ_NO_FMA, void, FinishRun,
                   (float* y, int64_t n, const S8Epilogue& ep, void* dst), (y, n, ep, dst))

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
  const size_t out_bytes = ep.s8_dst || ep.u8_dst ? 1 : sizeof(float);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; ++i) {
    const int64_t off = static_cast<int64_t>(i) * n;
    FinishRun(y + off, n, ep, static_cast<char*>(dst) + off * out_bytes);
  }
}

}  // namespace vitq::kernels
