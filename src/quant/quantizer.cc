// Reference uniform quantization and error metrics (quant stage).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "vitq/quant.h"

namespace vitq {

QuantScheme SymmetricScheme(int bits) {
  QuantScheme s;
  s.bits = bits;
  return s;
}

Status QuantScheme::Validate(const std::string& what) const {
  if (bits < 2 || bits > 8) {
    return Status::InvalidInput(what + ": " + std::to_string(bits) + " bits, expected 2 to 8");
  }
  if (symmetric && !is_signed) {
    // Allowed: unsigned symmetric means zero point 0 with [0, 2^b-1] (non-negative tensors).
  }
  if (IsLogSqrt2(kind) && (is_signed || !symmetric || granularity != Granularity::kPerTensor)) {
    return Status::InvalidInput(what +
                                ": a log-sqrt2 grid must be unsigned, without zero point, "
                                "per tensor");
  }
  if (kind == QuantKind::kUniformRow &&
      (is_signed || symmetric || granularity != Granularity::kPerTensor)) {
    return Status::InvalidInput(what +
                                ": a per-row (uniform_row) grid must be unsigned and asymmetric "
                                "(its zero points come from each row), with one scale");
  }
  return Status::Ok();
}

void QuantizeToInt8(const float* x, int64_t n, float scale, int32_t zero_point, int qmin, int qmax,
                    int8_t* q) {
  for (int64_t i = 0; i < n; ++i)
    q[i] = static_cast<int8_t>(QuantizeValue(x[i], scale, zero_point, qmin, qmax));
}

void FakeQuantize(const float* x, int64_t n, float scale, int32_t zero_point, int qmin, int qmax,
                  float* out) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    out[i] =
        static_cast<float>(QuantizeValue(x[i], scale, zero_point, qmin, qmax) - zero_point) * scale;
  }
}

RowGrid UniformRowGrid(const float* x, int64_t len, float scale, int qmax) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < len; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  return RowGridOfRange(lo, hi, scale, qmax);
}

RowGrid RowGridOfRange(float lo, float hi, float scale, int qmax) {
  RowGrid g;
  const float step = scale * (hi - lo);
  if (!(step > 0.0f) || !std::isfinite(step)) return g;
  g.step = step;
  g.zero = static_cast<int32_t>(QuantizeToGrid(-lo / step, 0.0f, static_cast<float>(qmax)));
  return g;
}

void FakeQuantizeUniformRows(const float* x, int64_t n, int64_t row, float scale, int bits,
                             float* out) {
  const int qmax = (1 << bits) - 1;
  const int64_t rows = row > 0 ? n / row : 0;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * row;
    float* o = out + r * row;
    const RowGrid g = UniformRowGrid(xr, row, scale, qmax);
    const float zero = static_cast<float>(g.zero);
    for (int64_t i = 0; i < row; ++i)
      o[i] = (QuantizeToGrid(xr[i] / g.step, 0.0f, static_cast<float>(qmax), zero) - zero) * g.step;
  }
}

void FakeQuantizeLogSqrt2(const float* x, int64_t n, float scale, int bits, float* out) {
  const int max_code = LogMaxCode(bits);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i)
    out[i] = LogSqrt2Value(LogSqrt2Code(x[i], scale, max_code), scale);
}

void FakeQuantizeLogSqrt2Rows(const float* x, int64_t n, int64_t row, float scale, int bits,
                              float* out) {
  const int max_code = LogMaxCode(bits);
  const int64_t rows = row > 0 ? n / row : 0;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * row;
    float* o = out + r * row;
    float m = 0.0f;
    for (int64_t j = 0; j < row; ++j) m = xr[j] > m ? xr[j] : m;
    const float s = m * scale;
    for (int64_t j = 0; j < row; ++j)
      o[j] = s > 0.0f ? LogSqrt2Value(LogSqrt2Code(xr[j], s, max_code), s) : 0.0f;
  }
}

namespace {
float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
}  // namespace

std::vector<float> LogSqrt2Thresholds(float scale, int max_code) {
  std::vector<float> t(static_cast<size_t>(max_code) + 1);
  uint32_t top;
  const float fmax = std::numeric_limits<float>::max();
  std::memcpy(&top, &fmax, sizeof top);
  for (int j = 0; j <= max_code; ++j) {
    auto within = [&](uint32_t b) {
      const int c = LogSqrt2Code(FromBits(b), scale, max_code);
      return c >= 0 && c <= j;
    };
    // Positive floats are ordered as their bit patterns: the smallest b in [1, top] within j.
    uint32_t lo = 1, hi = top;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (within(mid)) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    t[j] = FromBits(lo);
  }
  return t;
}

LogSqrt2Coder::LogSqrt2Coder(float scale, int max_code)
    : scale_(scale), max_code_(max_code), t_(LogSqrt2Thresholds(1.0f, max_code)) {
  auto count = [&](uint32_t b) {
    const int c = LogSqrt2CodeByThresholds(FromBits(b), t_.data(), max_code_);
    return c < 0 ? max_code_ + 1 : c;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (uint32_t i = 0; i < 1024; ++i) {
    const uint32_t first = i << 22, last = first | ((1u << 22) - 1);
    const int n0 = count(first), n1 = count(last);
    if (n0 == n1) {  // no threshold inside (y >= NaN is false: the count stays)
      base_[i] = static_cast<uint8_t>(n0);
      inside_[i] = nan;
      continue;
    }
    if (n0 != n1 + 1 || i >= 512) continue;  // not one step down on positive floats: kSlow
    uint32_t lo = first, hi = last;          // the first pattern with the lower count
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (count(mid) == n1) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    base_[i] = static_cast<uint8_t>(n0);
    inside_[i] = FromBits(lo);
  }
}

Status ValidateQParams(const QuantScheme& scheme, const QParams& params,
                       const std::vector<int64_t>& shape, const std::string& what) {
  VITQ_RETURN_IF_ERROR(scheme.Validate(what));
  size_t channels = 1;
  if (scheme.granularity == Granularity::kPerChannel) {
    if (scheme.axis < 0 || scheme.axis >= static_cast<int>(shape.size())) {
      return Status::InvalidInput(what + ": channel axis " + std::to_string(scheme.axis) +
                                  " outside a tensor of rank " + std::to_string(shape.size()));
    }
    channels = static_cast<size_t>(shape[scheme.axis]);
  }
  if (params.scale.size() != channels || params.zero_point.size() != channels) {
    return Status::InvalidInput(what + ": " + std::to_string(params.scale.size()) + " scales and " +
                                std::to_string(params.zero_point.size()) +
                                " zero points, expected " + std::to_string(channels));
  }
  if (scheme.kind == QuantKind::kUniformRow && channels == 1 && params.zero_point[0] != 0) {
    return Status::InvalidInput(
        what + ": zero_point[0] is " + std::to_string(params.zero_point[0]) +
        ", expected 0 for a per-row (uniform_row) grid (each row has its own)");
  }
  for (size_t i = 0; i < channels; ++i) {
    if (!(params.scale[i] > 0) || !std::isfinite(params.scale[i])) {
      return Status::InvalidInput(what + ": scale[" + std::to_string(i) + "] is " +
                                  std::to_string(params.scale[i]) +
                                  ", expected a positive finite number");
    }
    if (params.zero_point[i] < scheme.qmin() || params.zero_point[i] > scheme.qmax() ||
        (scheme.symmetric && params.zero_point[i] != 0)) {
      return Status::InvalidInput(what + ": zero_point[" + std::to_string(i) + "] is " +
                                  std::to_string(params.zero_point[i]) + ", outside the " +
                                  std::to_string(scheme.bits) +
                                  "-bit grid or non-zero for a symmetric scheme");
    }
  }
  return Status::Ok();
}

Status FakeQuantizeTensor(float* data, const std::vector<int64_t>& shape, const QuantScheme& scheme,
                          const QParams& params) {
  VITQ_RETURN_IF_ERROR(ValidateQParams(scheme, params, shape, "fake quantization"));
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (scheme.kind == QuantKind::kLogSqrt2) {
    FakeQuantizeLogSqrt2(data, n, params.scale[0], scheme.bits, data);
    return Status::Ok();
  }
  if (scheme.kind == QuantKind::kLogSqrt2Row) {
    FakeQuantizeLogSqrt2Rows(data, n, shape.empty() ? n : shape.back(), params.scale[0],
                             scheme.bits, data);
    return Status::Ok();
  }
  if (scheme.kind == QuantKind::kUniformRow) {
    FakeQuantizeUniformRows(data, n, shape.empty() ? n : shape.back(), params.scale[0], scheme.bits,
                            data);
    return Status::Ok();
  }
  if (scheme.granularity == Granularity::kPerTensor) {
    FakeQuantize(data, n, params.scale[0], params.zero_point[0], scheme.qmin(), scheme.qmax(),
                 data);
    return Status::Ok();
  }
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < scheme.axis; ++i) outer *= shape[i];
  for (size_t i = scheme.axis + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t channels = shape[scheme.axis];
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      float* p = data + (o * channels + c) * inner;
      FakeQuantize(p, inner, params.scale[c], params.zero_point[c], scheme.qmin(), scheme.qmax(),
                   p);
    }
  }
  return Status::Ok();
}

QParams MinMaxParams(const float* x, int64_t n, const QuantScheme& scheme) {
  float lo = 0.f, hi = 0.f;  // min and max are exact: the thread count changes nothing
#pragma omp parallel for reduction(min : lo) reduction(max : hi) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  QParams p;
  if (scheme.symmetric) {
    float m = std::max(-lo, hi);
    // Signed: max|x| / 2^(b-1) (method.md §1.5); unsigned: max / (2^b - 1).
    float levels = scheme.is_signed ? static_cast<float>(1 << (scheme.bits - 1))
                                    : static_cast<float>(scheme.qmax());
    p.scale = {m > 0 ? m / levels : 1.0f};
    p.zero_point = {0};
    return p;
  }
  float range = hi - lo;
  float scale = range > 0 ? range / static_cast<float>(scheme.qmax() - scheme.qmin()) : 1.0f;
  int32_t zp = static_cast<int32_t>(std::nearbyint(scheme.qmin() - lo / scale));
  p.scale = {scale};
  p.zero_point = {std::clamp(zp, scheme.qmin(), scheme.qmax())};
  return p;
}

double Pearson(const float* a, const float* b, int64_t n) {
  double sa = 0, sb = 0;
  for (int64_t i = 0; i < n; ++i) {
    sa += a[i];
    sb += b[i];
  }
  double ma = sa / n, mb = sb / n, sab = 0, saa = 0, sbb = 0;
  for (int64_t i = 0; i < n; ++i) {
    double da = a[i] - ma, db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa <= 0 || sbb <= 0) return saa == sbb ? 1.0 : 0.0;
  return sab / std::sqrt(saa * sbb);
}

double CosineSimilarity(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa <= 0 || bb <= 0) return aa == bb ? 1.0 : 0.0;
  return ab / std::sqrt(aa * bb);
}

double MeanSquaredError(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return n > 0 ? s / n : 0.0;
}

double Sqnr(const float* reference, const float* test, int64_t n) {
  double sig = 0, noise = 0;
  for (int64_t i = 0; i < n; ++i) {
    sig += static_cast<double>(reference[i]) * reference[i];
    double d = static_cast<double>(reference[i]) - test[i];
    noise += d * d;
  }
  if (noise <= 0) return 200.0;  // exact: report a large finite figure, not infinity
  return 10.0 * std::log10(sig / noise);
}

}  // namespace vitq
