// The quantize primitive (QuantizeToGrid) and the kernels built on it (QuantizeS8, LayerNorm +
// quantize, softmax + quantize) against scalar references, and the one SIMD decision, on the ISA
// VITQ_ISA selects (ctest runs this binary once per ISA vitq knows).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "dnnl_ops.h"
#include "isa.h"
#include "isa_test_fixture.h"
#include "simd.h"
#include "vitq/quant.h"

namespace vitq::kernels {
namespace {

class KernelOps : public IsaFixture {};

// Values on and around every tie of the grid, beyond both ends, and random ones.
std::vector<float> HardValues(float scale, int qmin, int qmax, uint32_t seed, int random) {
  std::vector<float> v;
  for (int q = qmin - 3; q <= qmax + 3; ++q) {
    for (float off : {-0.5f, -0.25f, 0.0f, 0.25f, 0.5f}) {
      const float x = (static_cast<float>(q) + off) * scale;
      v.push_back(x);
      v.push_back(std::nextafter(x, 1e30f));
      v.push_back(std::nextafter(x, -1e30f));
    }
  }
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale * static_cast<float>(qmax) * 0.7f);
  for (int i = 0; i < random; ++i) v.push_back(d(rng));
  return v;
}

TEST_F(KernelOps, SimdLevelFollowsTheEffectiveIsa) {
  const char* env = std::getenv("VITQ_ISA");
  const std::string isa = env != nullptr && *env != '\0' ? env : EffectiveIsa();
  if (isa != "other") {
    EXPECT_EQ(EffectiveSimd(), SimdLevelOf(isa)) << isa;
  }
  EXPECT_EQ(SimdLevelOf("avx512_core_vnni"), SimdLevel::kAvx512);
  EXPECT_EQ(SimdLevelOf("avx2_vnni"), SimdLevel::kAvx2);
  EXPECT_EQ(SimdLevelOf("sse41"), SimdLevel::kPortable);
  std::printf("effective ISA %s, SIMD level %s\n", EffectiveIsa().c_str(),
              SimdLevelName(EffectiveSimd()));
}

TEST(QuantizeToGrid, RoundsHalfToEvenThenClamps) {
  EXPECT_EQ(QuantizeToGrid(0.5f, -8, 7), 0.0f);
  EXPECT_EQ(QuantizeToGrid(1.5f, -8, 7), 2.0f);
  EXPECT_EQ(QuantizeToGrid(2.5f, -8, 7), 2.0f);
  EXPECT_EQ(QuantizeToGrid(-0.5f, -8, 7), 0.0f);
  EXPECT_EQ(QuantizeToGrid(-1.5f, -8, 7), -2.0f);
  EXPECT_EQ(QuantizeToGrid(7.49f, -8, 7), 7.0f);
  EXPECT_EQ(QuantizeToGrid(7.5f, -8, 7), 7.0f);
  EXPECT_EQ(QuantizeToGrid(-1e9f, -8, 7), -8.0f);
  EXPECT_EQ(QuantizeToGrid(3.5f, 0, 15, 10.0f), 14.0f);  // round, then the zero point
  EXPECT_EQ(QuantizeToGrid(9.0f, 0, 15, 10.0f), 15.0f);
  // Round-then-clamp equals clamp-then-round for integer bounds (the int8 epilogue clamps first).
  for (float v : HardValues(1.0f, -128, 127, 1, 2000)) {
    const float clamped = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
    ASSERT_EQ(QuantizeToGrid(v, -128, 127), __builtin_nearbyintf(clamped)) << v;
  }
}

TEST_F(KernelOps, QuantizeS8EqualsQuantizeValue) {
  for (int bits : {8, 6, 4}) {
    const int qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
    const float scale = 0.037f;
    std::vector<float> x = HardValues(scale, qmin, qmax, 2 + bits, 3 * 16384 + 5);
    std::vector<int8_t> par(x.size()), ser(x.size());
    QuantizeS8(x.data(), static_cast<int64_t>(x.size()), scale, qmin, qmax, par.data());
    QuantizeS8Serial(x.data(), static_cast<int64_t>(x.size()), scale, qmin, qmax, ser.data());
    for (size_t i = 0; i < x.size(); ++i) {
      const int want = QuantizeValue(x[i], scale, 0, qmin, qmax);
      ASSERT_EQ(par[i], want) << "bits " << bits << " x " << x[i];
      ASSERT_EQ(ser[i], want) << "bits " << bits << " x " << x[i];
    }
  }
}

// LayerNorm in double, then the grid: the reference for the fused kernel.
std::vector<double> LayerNormRef(const std::vector<float>& x, int m, int d,
                                 const std::vector<float>& g, const std::vector<float>& b,
                                 float eps) {
  std::vector<double> y(x.size());
  for (int r = 0; r < m; ++r) {
    const float* xr = x.data() + static_cast<size_t>(r) * d;
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += xr[i];
    mean /= d;
    for (int i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= d;
    for (int i = 0; i < d; ++i)
      y[static_cast<size_t>(r) * d + i] = (xr[i] - mean) / std::sqrt(var + eps) * g[i] + b[i];
  }
  return y;
}

// Codes against a double reference: equal, except by one code where the reference (in grid units)
// lies within `tol` of a rounding boundary (float arithmetic may land on either side).
template <typename Code>
void ExpectCodes(const std::vector<Code>& got, const std::vector<double>& ref_units, int qmin,
                 int qmax, double tol, const char* what) {
  int64_t boundary = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double u = ref_units[i];
    const double want = std::fmin(std::fmax(std::nearbyint(u), qmin), qmax);
    if (got[i] == want) continue;
    const double frac = std::fabs(u - std::floor(u) - 0.5);
    ASSERT_LE(std::fabs(got[i] - want), 1.0) << what << " element " << i << " ref " << u;
    ASSERT_LE(frac, tol) << what << " element " << i << " ref " << u << " got " << int{got[i]};
    ++boundary;
  }
  std::printf("%s: %lld of %zu codes differ from the double reference, all at a boundary\n", what,
              static_cast<long long>(boundary), got.size());
}

TEST_F(KernelOps, LayerNormQuantizeIsLayerNormThenTheGrid) {
  const int m = 197, d = 192;
  std::mt19937 rng(5);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m) * d), g(d), b(d);
  for (auto& v : x) v = 3.0f * n01(rng) + 0.5f;
  for (auto& v : g) v = 1.0f + 0.3f * n01(rng);
  for (auto& v : b) v = 0.2f * n01(rng);
  DnnlOps ops(&ctx);
  for (int bits : {8, 4}) {
    const int qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
    const float scale = 4.0f / static_cast<float>(qmax);
    std::vector<int8_t> fused(x.size()), two_step(x.size());
    ops.LayerNormQuantize(x.data(), m, d, g.data(), b.data(), 1e-6f, scale, qmin, qmax,
                          fused.data());
    // Exactly vitq's float LayerNorm followed by QuantizeS8 (the simulation's two steps).
    std::vector<float> y(x.size());
    ops.LayerNorm(x.data(), m, d, g.data(), b.data(), 1e-6f, y.data());
    QuantizeS8(y.data(), static_cast<int64_t>(y.size()), scale, qmin, qmax, two_step.data());
    ASSERT_EQ(fused, two_step) << "bits " << bits;
    std::vector<double> ref = LayerNormRef(x, m, d, g, b, 1e-6f);
    for (auto& v : ref) v /= scale;
    ExpectCodes(fused, ref, qmin, qmax, 1e-3, bits == 8 ? "LayerNorm+quantize W8" : "W4");
  }
}

TEST_F(KernelOps, SoftmaxQuantizeMatchesTheScalarSoftmax) {
  const int rows = 3 * 197, cols = 197;
  std::mt19937 rng(6);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows) * cols);
  for (auto& v : x) v = 2.5f * n01(rng);
  std::vector<double> ref(x.size());
  for (int r = 0; r < rows; ++r) {
    const float* xr = x.data() + static_cast<size_t>(r) * cols;
    double mx = xr[0], sum = 0;
    for (int i = 0; i < cols; ++i) mx = std::fmax(mx, xr[i]);
    for (int i = 0; i < cols; ++i) sum += std::exp(static_cast<double>(xr[i]) - mx);
    for (int i = 0; i < cols; ++i)
      ref[static_cast<size_t>(r) * cols + i] = std::exp(static_cast<double>(xr[i]) - mx) / sum;
  }
  DnnlOps ops(&ctx);
  const float scale = 1.0f / 127.0f;  // P in [0, 1] on the signed 8-bit grid
  std::vector<int8_t> q(x.size());
  ops.SoftmaxQuantize(x.data(), rows, cols, 1.0f / scale, q.data());
  for (auto& v : ref) v /= scale;
  // oneDNN's exp is accurate to a few ulp: 1e-4 of a code covers it.
  ExpectCodes(q, ref, -128, 127, 1e-4, "softmax+quantize");
  // The path the engine takes when oneDNN has no JIT kernel for it: Softmax, then QuantizeS8.
  std::vector<float> p = x;
  ops.Softmax(p.data(), rows, cols);
  std::vector<int8_t> q2(x.size());
  QuantizeS8(p.data(), static_cast<int64_t>(p.size()), scale, -128, 127, q2.data());
  ExpectCodes(q2, ref, -128, 127, 1e-4, "softmax, then QuantizeS8");
  // P on the unsigned 8-bit grid (vitq's method): u8 codes 0..255, fused and in two steps.
  const float uscale = 1.0f / 255.0f;
  for (auto& v : ref) v *= scale / uscale;
  std::vector<uint8_t> u(x.size()), u2(x.size());
  ops.SoftmaxQuantize(x.data(), rows, cols, 1.0f / uscale, u.data());
  ExpectCodes(u, ref, 0, 255, 1e-4, "softmax+quantize to u8");
  QuantizeU8(p.data(), static_cast<int64_t>(p.size()), uscale, 0, 255, u2.data());
  ExpectCodes(u2, ref, 0, 255, 1e-4, "softmax, then QuantizeU8");
  EXPECT_GT(*std::max_element(u.begin(), u.end()), 127) << "codes above int8's range";
}

// P per row (kUniformRow at 8 and 6 bits): each row's codes are round(P / (r · scale)) with r the
// row's maximum, and its step r · scale, against the double-precision softmax; rows whose scores
// are all equal (uniform attention), far below the others, or -1e30 apart.
TEST_F(KernelOps, SoftmaxRowsU8MatchesTheScalarSoftmaxPerRow) {
  const int rows = 3 * 197 + 3, cols = 197;
  std::mt19937 rng(7);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows) * cols);
  for (auto& v : x) v = 3.0f * n01(rng);
  float* last = x.data() + static_cast<size_t>(rows - 3) * cols;
  std::fill(last, last + cols, 0.25f);                                         // every P = 1 / cols
  for (int i = 0; i < cols; ++i) last[cols + i] = -80.0f + 0.01f * i;          // shifted far down
  for (int i = 0; i < cols; ++i) last[2 * cols + i] = i == 3 ? 5.0f : -1e30f;  // one hot
  for (int qmax : {255, 63}) {
    const float scale = 1.0f / static_cast<float>(qmax);
    std::vector<double> ref(x.size()), ref_step(rows);
    for (int r = 0; r < rows; ++r) {
      const float* xr = x.data() + static_cast<size_t>(r) * cols;
      double mx = xr[0], sum = 0;
      for (int i = 0; i < cols; ++i) mx = std::fmax(mx, xr[i]);
      for (int i = 0; i < cols; ++i) sum += std::exp(static_cast<double>(xr[i]) - mx);
      ref_step[r] = scale / sum;  // r = 1 / sum
      for (int i = 0; i < cols; ++i)
        ref[static_cast<size_t>(r) * cols + i] =
            std::exp(static_cast<double>(xr[i]) - mx) / sum / ref_step[r];
    }
    std::vector<float> work = x, step(rows);
    std::vector<uint8_t> q(x.size());
    SoftmaxRowsU8(work.data(), rows, cols, scale, qmax, q.data(), step.data());
    ExpectCodes(q, ref, 0, qmax, 1e-4, qmax == 255 ? "softmax to row codes, 8 bits" : "6 bits");
    for (int r = 0; r < rows; ++r)
      ASSERT_NEAR(step[r], ref_step[r], 1e-5 * ref_step[r]) << "row " << r << ", qmax " << qmax;
    // Each row reaches its top code (its maximum) exactly; the uniform row is all top codes.
    for (int r = 0; r < rows; ++r) {
      const uint8_t* qr = q.data() + static_cast<size_t>(r) * cols;
      EXPECT_EQ(*std::max_element(qr, qr + cols), qmax) << "row " << r;
    }
    const uint8_t* uniform = q.data() + static_cast<size_t>(rows - 3) * cols;
    EXPECT_TRUE(std::all_of(uniform, uniform + cols, [&](uint8_t v) { return v == qmax; }));
    EXPECT_NEAR(step[rows - 3], scale / cols, 1e-6 * scale / cols);
    const uint8_t* hot = q.data() + static_cast<size_t>(rows - 1) * cols;
    EXPECT_EQ(std::count(hot, hot + cols, 0), cols - 1);
  }
}

}  // namespace
}  // namespace vitq::kernels
