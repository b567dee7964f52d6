// The vitq method's building blocks against scalar and float64 references: the log-sqrt2
// quantizer, activation grids, GPTQ, the LayerNorm reparameterization (exact in float), and the
// plan checks for the new quantizers.
#include "lowbit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "../kernels/dnnl_ops.h"
#include "test_util.h"
#include "vitq/engine.h"
#include "vitq/plan.h"
#include "vitq/quant.h"
#include "vitq/simulate.h"

namespace vitq::search {
namespace {

TEST(LogSqrt2, HandCheckedCodesAndValues) {
  const int max4 = LogMaxCode(4);
  EXPECT_EQ(max4, 14);  // 16 codes: 0..14 and the zero
  EXPECT_EQ(LogMaxCode(3), 6);
  EXPECT_EQ(LogMaxCode(6), 27);  // capped: octaves 0..13
  EXPECT_EQ(LogSqrt2Code(1.0f, 1.0f, max4), 0);
  EXPECT_EQ(LogSqrt2Code(0.70710678f, 1.0f, max4), 1);
  EXPECT_EQ(LogSqrt2Code(0.5f, 1.0f, max4), 2);
  EXPECT_EQ(LogSqrt2Code(0.25f, 1.0f, max4), 4);
  EXPECT_EQ(LogSqrt2Code(0.3f, 1.0f, max4), 3);  // -2 log2 0.3 = 3.47
  EXPECT_EQ(LogSqrt2Code(1.5f, 1.0f, max4), 0);  // above the scale: the top code
  EXPECT_EQ(LogSqrt2Code(0.0f, 1.0f, max4), -1);
  EXPECT_EQ(LogSqrt2Code(-0.1f, 1.0f, max4), -1);
  EXPECT_EQ(LogSqrt2Code(std::ldexp(1.0f, -7), 1.0f, max4), 14);
  EXPECT_EQ(LogSqrt2Code(std::ldexp(1.0f, -8), 1.0f, max4), -1);  // code 16 > 14: zero
  EXPECT_FLOAT_EQ(LogSqrt2Value(0, 0.5f), 0.5f);
  EXPECT_FLOAT_EQ(LogSqrt2Value(3, 1.0f), 0.5f * 0.70710678f);
  EXPECT_FLOAT_EQ(LogSqrt2Value(-1, 1.0f), 0.0f);
  std::vector<float> x = {1.0f, 0.5f, 0.3f, 0.0f, 1e-6f}, out(5);
  FakeQuantizeLogSqrt2(x.data(), 5, 1.0f, 4, out.data());
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1], 0.5f);
  EXPECT_FLOAT_EQ(out[2], 0.5f * 0.70710678f);
  EXPECT_FLOAT_EQ(out[3], 0.0f);
  EXPECT_FLOAT_EQ(out[4], 0.0f);
}

TEST(LogSqrt2, RowsAreQuantizedRelativeToTheirMaximum) {
  // Three rows of 4 at 4 bits (lowest level 2^-7 of the scale). A flat row (all ~1/200) is below
  // the per-tensor grid's lowest level: every value becomes 0. Per row, r = 0.006: 0.006 is the
  // top level; 0.005 and 0.004 (-2 log2 of 0.833 and 0.667: 0.53 and 1.17) take code 1,
  // r / √2 = 0.0042426; 0 stays 0.
  std::vector<float> x = {0.004f, 0.005f, 0.006f, 0.0f,   //
                          0.5f,   0.25f,  0.3f,   1e-4f,  // r = 0.5: 1e-4 is 2^-12.3 of r: zero
                          0.0f,   0.0f,   0.0f,   0.0f};  // no positive value: all zero
  std::vector<float> tensor(x.size()), rows(x.size());
  FakeQuantizeLogSqrt2(x.data(), 4, 1.0f, 4, tensor.data());
  for (int j = 0; j < 4; ++j) EXPECT_EQ(tensor[j], 0.0f) << j;
  FakeQuantizeLogSqrt2Rows(x.data(), 12, 4, 1.0f, 4, rows.data());
  const float r0 = 0.006f, inv_sqrt2 = 0.70710678f;
  EXPECT_FLOAT_EQ(rows[0], r0 * inv_sqrt2);
  EXPECT_FLOAT_EQ(rows[1], r0 * inv_sqrt2);
  EXPECT_FLOAT_EQ(rows[2], r0);
  EXPECT_EQ(rows[3], 0.0f);
  EXPECT_FLOAT_EQ(rows[4], 0.5f);
  EXPECT_FLOAT_EQ(rows[5], 0.25f);
  EXPECT_FLOAT_EQ(rows[6], 0.5f * inv_sqrt2);  // 0.3 / 0.5 = 0.6: -2 log2 0.6 = 1.47, code 1
  EXPECT_EQ(rows[7], 0.0f);
  for (int j = 8; j < 12; ++j) EXPECT_EQ(rows[j], 0.0f) << j;
  // Through FakeQuantizeTensor, the rows are the last axis; the plan's scale multiplies r.
  std::vector<float> t = x;
  QuantScheme s;
  s.bits = 4;
  s.is_signed = false;
  s.kind = QuantKind::kLogSqrt2Row;
  ASSERT_TRUE(FakeQuantizeTensor(t.data(), {3, 4}, s, {{1.0f}, {0}}).ok());
  EXPECT_EQ(t, rows);
  t = x;
  ASSERT_TRUE(FakeQuantizeTensor(t.data(), {3, 4}, s, {{0.5f}, {0}}).ok());
  EXPECT_FLOAT_EQ(t[2], 0.003f);  // 0.006 / (0.5 r) = 2: above the top level, code 0
}

TEST(UniformRow, EachRowTakesItsOwnGrid) {
  // Two rows of 4 at 2 bits (codes 0..3), scale 1/3 (each row's min-max range in 3 steps).
  // Row 0: range [-0.3, 2.7] (0 inside), step 1.0, zero round(0.3) = 0; the values' codes are
  // round(x) + 0 clamped to [0, 3]: -0.3 -> 0, 0.4 -> 0, 1.6 -> 2, 2.7 -> 3: 0, 0, 2, 3.
  // Row 1: all positive, range [0, 0.6]: step 0.2, zero 0: 0.05 -> round(0.25) = 0,
  // 0.32 -> round(1.6) = 2, 0.45 -> round(2.25) = 2, 0.6 -> 3: 0, 0.4, 0.4, 0.6.
  std::vector<float> x = {-0.3f, 0.4f, 1.6f, 2.7f, 0.05f, 0.32f, 0.45f, 0.6f};
  const RowGrid g0 = UniformRowGrid(x.data(), 4, 1.0f / 3, 3);
  EXPECT_FLOAT_EQ(g0.step, 1.0f);
  EXPECT_EQ(g0.zero, 0);
  const RowGrid g1 = UniformRowGrid(x.data() + 4, 4, 1.0f / 3, 3);
  EXPECT_FLOAT_EQ(g1.step, 0.2f);
  EXPECT_EQ(g1.zero, 0);
  std::vector<float> out(8);
  FakeQuantizeUniformRows(x.data(), 8, 4, 1.0f / 3, 2, out.data());
  const float want[] = {0.0f, 0.0f, 2.0f, 3.0f, 0.0f, 0.4f, 0.4f, 0.6f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(out[i], want[i], 1e-6f) << i;
  // A negative row's zero point: range [-3, 1] at 2 bits, step 4/3, zero round(2.25) = 2; -3 is
  // code round(-2.25) + 2 = 0 -> value -2.667; 1 -> round(0.75) + 2 = 3 -> 1.333.
  const std::vector<float> neg = {-3.0f, 1.0f};
  const RowGrid gn = UniformRowGrid(neg.data(), 2, 1.0f / 3, 3);
  EXPECT_FLOAT_EQ(gn.step, 4.0f / 3);
  EXPECT_EQ(gn.zero, 2);
  // A smaller scale clips the row's top: scale 1/6 gives row 1 step 0.1, codes to 3 = 0.3.
  FakeQuantizeUniformRows(x.data() + 4, 4, 4, 1.0f / 6, 2, out.data());
  EXPECT_NEAR(out[3], 0.3f, 1e-6f);
  // An all-zero row stays 0; through FakeQuantizeTensor the rows are the last axis.
  std::vector<float> t = {0.0f, 0.0f, 0.0f, 0.0f, 0.05f, 0.32f, 0.45f, 0.6f};
  QuantScheme s;
  s.bits = 2;
  s.symmetric = s.is_signed = false;
  s.kind = QuantKind::kUniformRow;
  ASSERT_TRUE(FakeQuantizeTensor(t.data(), {2, 4}, s, {{1.0f / 3}, {0}}).ok());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(t[i], 0.0f) << i;
  EXPECT_NEAR(t[5], 0.4f, 1e-6f);
  // Its zero point is per row: a plan's non-zero one is refused, as is a signed or symmetric grid.
  EXPECT_FALSE(FakeQuantizeTensor(t.data(), {2, 4}, s, {{1.0f / 3}, {1}}).ok());
  QuantScheme signed_row = s;
  signed_row.is_signed = true;
  EXPECT_FALSE(signed_row.Validate("t").ok());
  QuantScheme symmetric_row = s;
  symmetric_row.symmetric = true;
  EXPECT_FALSE(symmetric_row.Validate("t").ok());
}

// The integer engine's per-row quantization (vectorized, rows in parallel) gives the codes of the
// reference: (code - zero) · step equals FakeQuantizeUniformRows's value for every element, on
// post-GELU-like rows (a few large values) of odd length, at 4 and 8 bits.
TEST(UniformRow, EngineKernelEqualsTheReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int m = 37, k = 301;
  std::vector<float> x(static_cast<size_t>(m) * k);
  for (float& v : x) {
    const float u = nd(rng);
    v = 0.5f * u * (1.0f + std::erf(u / std::sqrt(2.0f)));  // GELU
  }
  for (int r = 0; r < m; r += 5) x[static_cast<size_t>(r) * k + r] = 40.0f + r;  // outliers
  for (int bits : {4, 8}) {
    const int qmax = (1 << bits) - 1;
    const float scale = 1.0f / (qmax * 1.3f);
    std::vector<float> ref(x.size()), step(m), zero(m);
    std::vector<uint8_t> q(x.size());
    FakeQuantizeUniformRows(x.data(), static_cast<int64_t>(x.size()), k, scale, bits, ref.data());
    kernels::QuantizeRowsU8(x.data(), m, k, scale, qmax, q.data(), step.data(), zero.data());
    for (int r = 0; r < m; ++r) {
      const RowGrid g = UniformRowGrid(x.data() + static_cast<size_t>(r) * k, k, scale, qmax);
      ASSERT_EQ(step[r], g.step) << r;
      ASSERT_EQ(zero[r], static_cast<float>(g.zero)) << r;
      for (int j = 0; j < k; ++j) {
        const size_t i = static_cast<size_t>(r) * k + j;
        ASSERT_LE(q[i], qmax);
        ASSERT_EQ((static_cast<float>(q[i]) - zero[r]) * step[r], ref[i]) << r << "," << j;
      }
    }
  }
}

// The integer engine codes P without a log2 per value (LogSqrt2Coder's table, from the threshold
// counts): the same code as LogSqrt2Code for every float, checked across the whole float range (a
// stride through the bit patterns), a few ulps around every threshold, and zero, negatives,
// infinities and NaN.
TEST(LogSqrt2, ThresholdCodesEqualTheLog2Codes) {
  auto from_bits = [](uint32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
  };
  auto to_bits = [](float f) {
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
  };
  for (int bits = 2; bits <= 8; ++bits) {
    for (float scale : {1.0f, 0.37f, 3e-3f, 250.0f}) {
      const int max_code = LogMaxCode(bits);
      const std::vector<float> t = LogSqrt2Thresholds(scale, max_code);
      const LogSqrt2Coder coder(scale, max_code);
      ASSERT_EQ(t.size(), static_cast<size_t>(max_code) + 1);
      for (int j = 1; j <= max_code; ++j) EXPECT_LT(t[j], t[j - 1]) << bits << " bits, j " << j;
      auto check = [&](float x) {
        const int code = LogSqrt2Code(x, scale, max_code);
        ASSERT_EQ(LogSqrt2CodeByThresholds(x, t.data(), max_code), code)
            << "x " << x << " scale " << scale << " bits " << bits;
        ASSERT_EQ(coder.Code(x), code) << "x " << x << " scale " << scale << " bits " << bits;
      };
      for (uint64_t b = 0; b < 0x100000000ull; b += 40961)
        check(from_bits(static_cast<uint32_t>(b)));
      for (float tj : t) {
        for (int d = -3; d <= 3; ++d) {
          check(from_bits(to_bits(tj) + d));
          check(from_bits(to_bits(tj / scale) + d));  // near the thresholds of y = x / scale
          check(from_bits(to_bits(tj / scale) + d) * scale);
        }
      }
      for (float x : {0.0f, -0.0f, -1.0f, scale, 2 * scale, INFINITY, -INFINITY, NAN}) check(x);
    }
  }
}

TEST(ActivationGrid, OneSidedTensorsGetUnsignedGridsBelowEightBits) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::normal_distribution<float> nd0(0.0f, 0.1f);
  std::vector<float> p(5000);
  for (auto& v : p) v = u(rng) * u(rng);
  SitePlan g = SearchActivationGrid(p.data(), p.size(), 4, true);
  EXPECT_FALSE(g.scheme.is_signed);
  EXPECT_EQ(g.params.zero_point[0], 0);
  // GELU-like: a small negative tail; the zero point leaves a few levels below zero.
  std::vector<float> gl(5000);
  for (auto& v : gl) v = u(rng) * 4.0f - 0.17f;
  g = SearchActivationGrid(gl.data(), gl.size(), 6, true);
  EXPECT_FALSE(g.scheme.symmetric);
  EXPECT_GT(g.params.zero_point[0], 0);
  EXPECT_LT(g.params.zero_point[0], 8);
  EXPECT_TRUE(ValidateQParams(g.scheme, g.params, {1}, "t").ok());
  // 8 bits (or no asymmetry) stay symmetric signed: the engine stores activations as s8.
  g = SearchActivationGrid(gl.data(), gl.size(), 8, true);
  EXPECT_TRUE(g.scheme.symmetric && g.scheme.is_signed);
  g = SearchActivationGrid(gl.data(), gl.size(), 4, false);
  EXPECT_TRUE(g.scheme.symmetric && g.scheme.is_signed);
  // unsigned8 (P, held as u8 by the engine): a non-negative tensor at 8 bits gets [0, 255] with
  // zero point 0 and half the step of the signed grid; one with negatives stays signed.
  SitePlan s8 = SearchActivationGrid(p.data(), p.size(), 8, true);
  g = SearchActivationGrid(p.data(), p.size(), 8, true, /*unsigned8=*/true);
  EXPECT_FALSE(g.scheme.is_signed);
  EXPECT_EQ(g.scheme.qmin(), 0);
  EXPECT_EQ(g.scheme.qmax(), 255);
  EXPECT_EQ(g.params.zero_point[0], 0);
  EXPECT_LT(g.params.scale[0], 0.6f * s8.params.scale[0]);
  g = SearchActivationGrid(gl.data(), gl.size(), 8, true, /*unsigned8=*/true);
  EXPECT_TRUE(g.scheme.symmetric && g.scheme.is_signed);
  // zero_point8 (fc2's input, held by the engine as u8 codes with their zero point): the GELU-like
  // tensor at 8 bits gets [0, 255] with a zero point of a few levels and about half the step of
  // the signed grid (the signed one spends 128 levels on [-4, 0) that holds only the tail).
  const SitePlan signed8 = SearchActivationGrid(gl.data(), gl.size(), 8, true);
  g = SearchActivationGrid(gl.data(), gl.size(), 8, true, false, /*zero_point8=*/true);
  EXPECT_FALSE(g.scheme.symmetric || g.scheme.is_signed);
  EXPECT_EQ(g.scheme.qmax(), 255);
  EXPECT_GT(g.params.zero_point[0], 0);
  EXPECT_LT(g.params.zero_point[0], 16);
  EXPECT_LT(g.params.scale[0], 0.6f * signed8.params.scale[0]);
  EXPECT_TRUE(ValidateQParams(g.scheme, g.params, {1}, "t").ok());
  // ... and through SearchInputGrid; without asymmetry it stays signed.
  std::vector<float> wt(16 * 50);
  for (auto& v : wt) v = nd0(rng);
  g = SearchInputGrid(gl.data(), 100, 50, wt.data(), 16, 8, true, /*zero_point8=*/true);
  EXPECT_FALSE(g.scheme.is_signed);
  EXPECT_GT(g.params.zero_point[0], 0);
  g = SearchInputGrid(gl.data(), 100, 50, wt.data(), 16, 8, false, /*zero_point8=*/true);
  EXPECT_TRUE(g.scheme.symmetric && g.scheme.is_signed);
  // The search never does worse than min/max.
  std::vector<float> t(20000);
  std::normal_distribution<float> nd(0, 1);
  for (auto& v : t) v = nd(rng);
  t[7] = 40.0f;  // an outlier
  g = SearchActivationGrid(t.data(), t.size(), 4, true);
  auto err = [&](const SitePlan& sp) {
    std::vector<float> q(t.size());
    FakeQuantize(t.data(), t.size(), sp.params.scale[0], sp.params.zero_point[0], sp.scheme.qmin(),
                 sp.scheme.qmax(), q.data());
    return MeanSquaredError(t.data(), q.data(), t.size());
  };
  SitePlan mm;
  mm.scheme = g.scheme;
  mm.params = MinMaxParams(t.data(), t.size(), g.scheme);
  EXPECT_LT(err(g), 0.5 * err(mm));
}

// GPTQ written out in float64 the plain way (no act order, no row blocks): the reference.
std::vector<double> GptqReference(const std::vector<float>& w, int rows, int cols,
                                  const std::vector<double>& h, const std::vector<float>& scales,
                                  int bits) {
  const int k = cols, qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
  std::vector<double> a = h;
  double mean = 0;
  for (int i = 0; i < k; ++i) mean += a[i * k + i];
  for (int i = 0; i < k; ++i) a[i * k + i] += 0.01 * mean / k;
  // Inverse by Gauss-Jordan, then the upper Cholesky factor U of the inverse (Hinv = UᵀU).
  std::vector<double> inv(k * k, 0);
  for (int i = 0; i < k; ++i) inv[i * k + i] = 1;
  for (int c = 0; c < k; ++c) {
    const double p = a[c * k + c];
    for (int j = 0; j < k; ++j) {
      a[c * k + j] /= p;
      inv[c * k + j] /= p;
    }
    for (int r = 0; r < k; ++r) {
      if (r == c) continue;
      const double f = a[r * k + c];
      for (int j = 0; j < k; ++j) {
        a[r * k + j] -= f * a[c * k + j];
        inv[r * k + j] -= f * inv[c * k + j];
      }
    }
  }
  std::vector<double> u(k * k, 0);
  for (int i = 0; i < k; ++i) {  // Hinv = UᵀU, row by row
    double d = inv[i * k + i];
    for (int m = 0; m < i; ++m) d -= u[m * k + i] * u[m * k + i];
    u[i * k + i] = std::sqrt(d);
    for (int j = i + 1; j < k; ++j) {
      double s = inv[i * k + j];
      for (int m = 0; m < i; ++m) s -= u[m * k + i] * u[m * k + j];
      u[i * k + j] = s / u[i * k + i];
    }
  }
  std::vector<double> out(w.begin(), w.end());
  for (int r = 0; r < rows; ++r) {
    const double s = scales[r];
    for (int j = 0; j < k; ++j) {
      double& x = out[r * k + j];
      double q = std::nearbyint(x / s);
      q = std::min<double>(qmax, std::max<double>(qmin, q));
      const double err = (x - q * s) / u[j * k + j];
      x = q * s;
      for (int c = j + 1; c < k; ++c) out[r * k + c] -= err * u[j * k + c];
    }
  }
  return out;
}

TEST(Gptq, MatchesTheFloat64ReferenceAndBeatsRounding) {
  const int rows = 5, cols = 12, n = 400, bits = 4;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x(n * cols), w(rows * cols);
  for (int i = 0; i < n; ++i) {
    const float common = nd(rng);  // correlated inputs: where error compensation pays
    for (int c = 0; c < cols; ++c) x[i * cols + c] = common + 0.3f * nd(rng);
  }
  for (auto& v : w) v = 0.1f * nd(rng);
  const std::vector<double> h = InputHessian(x.data(), n, cols);
  const std::vector<float> scales = SearchWeightScales(w.data(), rows, cols, bits, true);
  std::vector<float> g = w;
  ASSERT_TRUE(GptqQuantize(g.data(), rows, cols, h, scales, bits, /*act_order=*/false).ok());
  const std::vector<double> ref = GptqReference(w, rows, cols, h, scales, bits);
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], ref[i], 1e-6) << i;
  // Every weight on its row's grid.
  std::vector<float> a = w;
  ASSERT_TRUE(GptqQuantize(a.data(), rows, cols, h, scales, bits, /*act_order=*/true).ok());
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      // Rounding onto the grid (what the .vitq writer does) returns the same value exactly.
      const float v = a[r * cols + c];
      EXPECT_EQ(static_cast<float>(QuantizeValue(v, scales[r], 0, -8, 7)) * scales[r], v);
      EXPECT_LE(std::fabs(v / scales[r]), 8.0f);
    }
  }
  // Output error ||X (W - Ŵ)ᵀ||² below round to nearest, with and without act order.
  std::vector<float> rtn = w;
  RoundToGrid(rtn.data(), rows, cols, scales, bits);
  auto out_err = [&](const std::vector<float>& wq) {
    double e = 0;
    for (int i = 0; i < n; ++i) {
      for (int r = 0; r < rows; ++r) {
        double d = 0;
        for (int c = 0; c < cols; ++c) d += x[i * cols + c] * (w[r * cols + c] - wq[r * cols + c]);
        e += d * d;
      }
    }
    return e;
  };
  EXPECT_LT(out_err(g), 0.7 * out_err(rtn));
  EXPECT_LT(out_err(a), 0.7 * out_err(rtn));
}

TEST(Gptq, DeadInputsGetZeroWeights) {
  const int rows = 2, cols = 3;
  std::vector<float> x = {1, 0, 2, 3, 0, 1, -1, 0, 0.5f, 2, 0, 2};  // column 1 always 0
  std::vector<float> w = {0.3f, 0.9f, -0.2f, 0.1f, -0.7f, 0.4f};
  ASSERT_TRUE(GptqQuantize(w.data(), rows, cols, InputHessian(x.data(), 4, cols), {0.1f}, 4).ok());
  EXPECT_EQ(w[1], 0.0f);
  EXPECT_EQ(w[4], 0.0f);
  EXPECT_FALSE(GptqQuantize(w.data(), rows, cols, std::vector<double>(4, 1.0), {0.1f}, 4).ok());
}

// Folding into LayerNorm and the next layers leaves the float model's logits unchanged, also
// with a constant channel (a zero LayerNorm weight, as two of DeiT-Tiny's are).
TEST(LnReparam, FoldingIsExactInFloat) {
  ViTConfig c = testing::SmallConfig();
  ViTModel m = RandomModel(c, 5);
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0, 1);
  for (auto& b : m.weights.blocks) {  // uneven channel ranges, biases, one dead channel
    for (int64_t i = 0; i < b.norm1_weight.size(); ++i) {
      b.norm1_weight.f32()[i] = 1.0f + 3.0f * std::fabs(nd(rng));
      b.norm1_bias.f32()[i] = nd(rng);
      b.norm2_bias.f32()[i] = 2.0f * nd(rng);
    }
    b.norm2_weight.f32()[3] = 0.0f;
  }
  CalibrationSet calib = testing::RandomCalibration(c, 4);
  const int t = c.num_tokens(), d = c.embed_dim;
  std::vector<float> logits(4 * c.num_classes), folded_logits(logits.size());
  Engine e(m);
  e.Forward(calib.images.data(), 4, logits.data());
  // LN outputs of every block on these images (the float model), then fold them all.
  ViTModel f = CloneModel(m);
  std::vector<float> x(static_cast<size_t>(4) * t * d);
  e.Embed(calib.images.data(), 4, x.data());
  for (int li = 0; li < c.depth; ++li) {
    struct Cap : Observer {
      std::map<std::string, std::vector<float>> got;
      bool Wants(const Site& s) const override {
        return s.Name().find("qkv:in") != std::string::npos ||
               s.Name().find("fc1:in") != std::string::npos;
      }
      void Observe(const Site& s, TensorView v) override {
        got[s.Name()].assign(v.data, v.data + v.size());
      }
    } cap;
    e.Block(li, x.data(), 4, &cap);
    BlockWeights& b = f.weights.blocks[li];
    const std::string p = "blocks." + std::to_string(li) + ".";
    for (int which = 0; which < 2; ++which) {
      auto& in = cap.got[p + (which == 0 ? "attn.qkv:in" : "mlp.fc1:in")];
      const LnFold fold = ComputeLnFold(in.data(), 4 * t, d, true);
      if (which == 1) {
        EXPECT_EQ(fold.r[3], 1.0f);  // the constant channel keeps r = 1 and becomes 0
      }
      if (which == 0) FoldLayerNorm(fold, &b.norm1_weight, &b.norm1_bias, {&b.qkv});
      if (which == 1) FoldLayerNorm(fold, &b.norm2_weight, &b.norm2_bias, {&b.fc1});
    }
  }
  Engine ef(f);
  ef.Forward(calib.images.data(), 4, folded_logits.data());
  EXPECT_LE(testing::MaxAbsDiff(logits.data(), folded_logits.data(), logits.size()), 1e-4);
}

TEST(PlanChecks, NewQuantizersAreValidated) {
  ViTConfig c = testing::SmallConfig();
  QuantPlan plan;
  SitePlan log;
  log.scheme.bits = 4;
  log.scheme.is_signed = false;
  log.scheme.kind = QuantKind::kLogSqrt2;
  log.params = {{1.0f}, {0}};
  plan.sites["blocks.0.attn.pv:a"] = log;
  EXPECT_TRUE(ValidatePlan(plan, c).ok());
  // log-sqrt2 anywhere but P is refused, naming the site.
  plan.sites["blocks.0.mlp.fc1:in"] = log;
  Status s = ValidatePlan(plan, c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blocks.0.mlp.fc1:in"), std::string::npos);
  plan.sites.erase("blocks.0.mlp.fc1:in");
  // A signed log grid, a zero point outside the grid, a wrong per-channel scale count.
  plan.sites["blocks.0.attn.pv:a"].scheme.is_signed = true;
  EXPECT_FALSE(ValidatePlan(plan, c).ok());
  plan.sites["blocks.0.attn.pv:a"].scheme.is_signed = false;
  SitePlan asym;
  asym.scheme.bits = 4;
  asym.scheme.symmetric = asym.scheme.is_signed = false;
  asym.params = {{0.1f}, {16}};
  EXPECT_FALSE(ValidateQParams(asym.scheme, asym.params, {1}, "t").ok());
  SitePlan pc;
  pc.scheme.bits = 4;
  pc.scheme.granularity = Granularity::kPerChannel;
  pc.params = {std::vector<float>(5, 0.1f), std::vector<int32_t>(5, 0)};
  plan.sites["blocks.0.mlp.fc1:w"] = pc;
  s = ValidatePlan(plan, c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("expected 64"), std::string::npos) << s.message();
  plan.sites.erase("blocks.0.mlp.fc1:w");
  // JSON: the kind round-trips; an unknown kind is refused.
  const std::string json = PlanToJson(plan);
  EXPECT_NE(json.find("log_sqrt2"), std::string::npos);
  auto back = PlanFromJson(json, "p");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->sites.at("blocks.0.attn.pv:a").scheme.kind, QuantKind::kLogSqrt2);
  // The per-row kind round-trips too, and is refused on any site but P.
  QuantPlan row = plan;
  row.sites["blocks.0.attn.pv:a"].scheme.kind = QuantKind::kLogSqrt2Row;
  EXPECT_TRUE(ValidatePlan(row, c).ok());
  const std::string row_json = PlanToJson(row);
  EXPECT_NE(row_json.find("\"log_sqrt2_row\""), std::string::npos);
  auto row_back = PlanFromJson(row_json, "p");
  ASSERT_TRUE(row_back.ok()) << row_back.status().message();
  EXPECT_EQ(row_back->sites.at("blocks.0.attn.pv:a").scheme.kind, QuantKind::kLogSqrt2Row);
  row.sites["blocks.0.attn.qk:a"] = row.sites["blocks.0.attn.pv:a"];
  Status rs = ValidatePlan(row, c);
  EXPECT_NE(rs.message().find("blocks.0.attn.qk:a"), std::string::npos) << rs.message();
  // The per-token kind of fc2's input round-trips, and is refused elsewhere.
  QuantPlan tok = plan;
  SitePlan fc2_in;
  fc2_in.scheme.bits = 4;
  fc2_in.scheme.symmetric = fc2_in.scheme.is_signed = false;
  fc2_in.scheme.kind = QuantKind::kUniformRow;
  fc2_in.params = {{0.05f}, {0}};
  tok.sites["blocks.0.mlp.fc2:in"] = fc2_in;
  EXPECT_TRUE(ValidatePlan(tok, c).ok());
  const std::string tok_json = PlanToJson(tok);
  EXPECT_NE(tok_json.find("\"uniform_row\""), std::string::npos);
  auto tok_back = PlanFromJson(tok_json, "p");
  ASSERT_TRUE(tok_back.ok()) << tok_back.status().message();
  EXPECT_EQ(tok_back->sites.at("blocks.0.mlp.fc2:in").scheme.kind, QuantKind::kUniformRow);
  // ... and so may P (a uniform grid up to each row's maximum), but no other site.
  SitePlan p_row = fc2_in;
  p_row.scheme.bits = 8;
  p_row.params = {{1.0f / 255}, {0}};
  tok.sites["blocks.0.attn.pv:a"] = p_row;
  EXPECT_TRUE(ValidatePlan(tok, c).ok());
  tok.sites["blocks.0.mlp.fc1:in"] = fc2_in;
  Status ts = ValidatePlan(tok, c);
  EXPECT_NE(ts.message().find("blocks.0.mlp.fc1:in"), std::string::npos) << ts.message();
  std::string bad = json;
  bad.replace(bad.find("log_sqrt2"), 9, "log_three");
  EXPECT_FALSE(PlanFromJson(bad, "p").ok());
  // Replaced tensors must exist and have the model's size.
  ViTModel m = RandomModel(c, 1);
  QuantPlan t;
  t.tensors["blocks.0.norm1.weight"] = std::vector<float>(32, 2.0f);
  auto applied = ApplyPlanTensors(m, t);
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(applied->weights.blocks[0].norm1_weight.f32()[5], 2.0f);
  t.tensors["blocks.0.norm1.weight"].resize(31);
  EXPECT_FALSE(ApplyPlanTensors(m, t).ok());
  t.tensors.clear();
  t.tensors["blocks.9.norm1.weight"] = std::vector<float>(32, 2.0f);
  EXPECT_FALSE(ApplyPlanTensors(m, t).ok());
}

}  // namespace
}  // namespace vitq::search
