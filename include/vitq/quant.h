// Quantization core (quant stage): uniform quantizers as value types, the reference
// quantize/dequantize, and error metrics. Everything else (search, simulation, the integer
// engine) uses these definitions, so the integer grid is defined in exactly one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vitq/status.h"

namespace vitq {

enum class Granularity : uint8_t { kPerTensor, kPerChannel };

// kUniform: the grid below. kLogSqrt2 (attention probabilities P only, method.md §4.2, RepQ-ViT's
// log-√2): code q = round(-2 log2(x / scale)), x̂ = scale · 2^(-q/2) for 0 <= q <= LogMaxCode(bits),
// x̂ = 0 beyond (and for x <= 0); one of the 2^bits codes is the zero. kLogSqrt2Row: the same
// grid per row of P (its last axis, one query's probabilities), relative to the row's maximum r:
// scale r · scale in both formulas, so every row's largest probability is a level and a flat row
// (all P ~ 1/T) keeps its values instead of falling below the lowest level.
// kUniformRow (fc2's input only: dynamic per-token quantization): an unsigned uniform grid per row
// of the last axis (one token's channels) fixed at run time from the row (UniformRowGrid): the
// row's range [lo, hi] (with 0 inside), step scale · (hi - lo), zero point round(-lo / step); a
// scale below 1 / qmax clips the row's top, which post-GELU rows need (their few large values).
enum class QuantKind : uint8_t { kUniform, kLogSqrt2, kLogSqrt2Row, kUniformRow };
inline bool IsLogSqrt2(QuantKind k) {
  return k == QuantKind::kLogSqrt2 || k == QuantKind::kLogSqrt2Row;
}

// A uniform quantizer: q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax),
// x̂ = (q - zero_point) * scale. Symmetric schemes have zero_point 0.
struct QuantScheme {
  int bits = 8;           // 2..8
  bool symmetric = true;  // zero_point = 0
  bool is_signed = true;  // signed: [-2^(b-1), 2^(b-1)-1]; unsigned: [0, 2^b-1]
  Granularity granularity = Granularity::kPerTensor;
  int axis = 0;  // channel axis for kPerChannel (0 = output channel of a weight)
  QuantKind kind = QuantKind::kUniform;

  int qmin() const { return is_signed ? -(1 << (bits - 1)) : 0; }
  int qmax() const { return is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }
  Status Validate(const std::string& what) const;
  bool operator==(const QuantScheme& o) const {
    return bits == o.bits && symmetric == o.symmetric && is_signed == o.is_signed &&
           granularity == o.granularity && axis == o.axis && kind == o.kind;
  }
};

// Per-tensor (size 1) or per-channel scales and zero points.
struct QParams {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
};

// The method's symmetric signed per-tensor scheme at `bits` (method.md §1.2).
QuantScheme SymmetricScheme(int bits);

// The one round-and-clamp of every uniform grid in vitq: v is a value in grid units (x / scale,
// or x · (1 / scale) where a path multiplies), rounded half to even, plus the zero point, then
// clamped to [lo, hi] (integer bounds as float). The result is an integer-valued float. The
// reference quantizer, the search's candidates, LayerNorm/softmax + quantize and the int8
// epilogue all call it (with round-then-clamp and clamp-then-round equal for integer bounds).
inline float QuantizeToGrid(float v, float lo, float hi, float zero_point = 0.0f) {
  float r = __builtin_nearbyintf(v) + zero_point;
  r = r < lo ? lo : r;
  r = r > hi ? hi : r;
  return r;
}

// The scheme's code of x: QuantizeToGrid(x / scale) with the zero point and [qmin, qmax].
inline int32_t QuantizeValue(float x, float scale, int32_t zero_point, int qmin, int qmax) {
  return static_cast<int32_t>(QuantizeToGrid(x / scale, static_cast<float>(qmin),
                                             static_cast<float>(qmax),
                                             static_cast<float>(zero_point)));
}

// log-√2 (QuantKind::kLogSqrt2): the largest non-zero code at `bits`: 2^bits - 2, capped at 27
// (x̂ >= scale · 2^-13.5; the integer engine holds the levels in s8 planes of 7 octaves).
inline int LogMaxCode(int bits) { return (1 << bits) - 2 < 27 ? (1 << bits) - 2 : 27; }
// The code of x (>= 0), or -1 for the zero level.
inline int LogSqrt2Code(float x, float scale, int max_code) {
  if (!(x > 0.0f)) return -1;
  const float q = __builtin_nearbyintf(-2.0f * __builtin_log2f(x / scale));
  if (q > static_cast<float>(max_code)) return -1;
  return q < 0.0f ? 0 : static_cast<int>(q);
}
// scale · 2^(-q/2): 2^-(q/2) exactly for even q, times float(1/√2) for odd q.
inline float LogSqrt2Value(int code, float scale) {
  if (code < 0) return 0.0f;
  const float octave = __builtin_ldexpf(1.0f, -(code >> 1));
  return scale * ((code & 1) ? octave * 0.70710678118654752f : octave);
}
void FakeQuantizeLogSqrt2(const float* x, int64_t n, float scale, int bits, float* out);

// kUniformRow's grid for one row x[0, len): lo = min(0, min x), hi = max(0, max x), step =
// scale · (hi - lo), zero = clamp(round_half_even(-lo / step), 0, qmax); an all-zero row gets step
// 1 and zero 0 (it stays exactly 0). The value of code q is (q - zero) · step.
struct RowGrid {
  float step = 1.0f;
  int32_t zero = 0;
};
RowGrid UniformRowGrid(const float* x, int64_t len, float scale, int qmax);
// The same from the row's range (lo <= 0 <= hi already).
RowGrid RowGridOfRange(float lo, float hi, float scale, int qmax);
// kUniformRow: rows of `row` values (n a multiple of it), each on its own UniformRowGrid.
void FakeQuantizeUniformRows(const float* x, int64_t n, int64_t row, float scale, int bits,
                             float* out);
// kLogSqrt2Row: rows of `row` values (n a multiple of it), each on the grid scaled by its maximum
// (a row whose maximum is <= 0 or NaN becomes 0, as FakeQuantizeLogSqrt2 makes such values).
void FakeQuantizeLogSqrt2Rows(const float* x, int64_t n, int64_t row, float scale, int bits,
                              float* out);
// LogSqrt2Code as comparisons, for the integer engine (no log2 per value): t[j] (j = 0 ..
// max_code) is the smallest positive float x with 0 <= LogSqrt2Code(x, scale, max_code) <= j.
// The code falls as x grows, so with n = #{j <= max_code : !(x >= t[j])}: LogSqrt2Code = n, or -1
// when n = max_code + 1 (x below every threshold, x <= 0 or NaN): LogSqrt2CodeByThresholds. Each
// t[j] is found by bisection over the float bit patterns with LogSqrt2Code itself, so the two
// agree (tested across the range).
std::vector<float> LogSqrt2Thresholds(float scale, int max_code);
inline int LogSqrt2CodeByThresholds(float x, const float* t, int max_code) {
  int n = 0;
  for (int j = 0; j <= max_code; ++j) n += !(x >= t[j]);
  return n > max_code ? -1 : n;
}
// The same codes at a few operations per value, for the integer engine: LogSqrt2Code(x, scale)
// is LogSqrt2Code(y, 1) of y = x / scale, and the thresholds of y lie one in each half octave
// (at 2^0.25 and 2^0.75 of it), so a table over the top 10 bits of y's bit pattern (sign,
// exponent, first mantissa bit) holds the count at the start of each bucket and the one threshold
// inside; buckets where that does not hold (+inf beside the NaNs) fall back to the thresholds.
class LogSqrt2Coder {
 public:
  LogSqrt2Coder() = default;
  LogSqrt2Coder(float scale, int max_code);
  int Code(float x) const {
    const float y = x / scale_;
    uint32_t b;
    __builtin_memcpy(&b, &y, sizeof b);
    const uint32_t i = b >> 22;
    int n = base_[i] - (y >= inside_[i]);
    if (base_[i] == kSlow) n = LogSqrt2CodeByThresholds(y, t_.data(), max_code_);
    return n > max_code_ ? -1 : n;
  }

 private:
  static constexpr uint8_t kSlow = 255;
  float scale_ = 1.0f;
  int max_code_ = 0;
  std::vector<float> t_;  // LogSqrt2Thresholds(1, max_code)
  std::vector<uint8_t> base_ = std::vector<uint8_t>(1024, kSlow);
  std::vector<float> inside_ = std::vector<float>(1024, 0.0f);
};

// Quantizes n contiguous values with one scale/zero point to int8 (bits <= 8).
void QuantizeToInt8(const float* x, int64_t n, float scale, int32_t zero_point, int qmin, int qmax,
                    int8_t* q);
// x̂ = Q(x) in place or out of place (out may equal x), one scale.
void FakeQuantize(const float* x, int64_t n, float scale, int32_t zero_point, int qmin, int qmax,
                  float* out);
// Fake-quantizes a tensor of `shape` with `scheme`/`params` (per channel along scheme.axis).
// Errors: parameter count not matching the channels, non-positive or non-finite scales.
Status FakeQuantizeTensor(float* data, const std::vector<int64_t>& shape, const QuantScheme& scheme,
                          const QParams& params);
// Checks that params fit scheme and a tensor of `shape`; `what` names the site in errors.
Status ValidateQParams(const QuantScheme& scheme, const QParams& params,
                       const std::vector<int64_t>& shape, const std::string& what);

// Scale that maps max|x| onto the largest level of `scheme` (symmetric), or the min/max range
// (asymmetric). A zero range gives scale 1 (any scale represents an all-zero tensor exactly).
QParams MinMaxParams(const float* x, int64_t n, const QuantScheme& scheme);

// ---- Metrics (double accumulation) ----
double Pearson(const float* a, const float* b, int64_t n);
double CosineSimilarity(const float* a, const float* b, int64_t n);
double MeanSquaredError(const float* a, const float* b, int64_t n);
// Signal-to-quantization-noise ratio of `test` against `reference`, in dB.
double Sqnr(const float* reference, const float* test, int64_t n);

}  // namespace vitq
