// Unit tests of the quantizers, metrics and the QuantPlan JSON round trip.
#include "vitq/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "vitq/plan.h"

namespace vitq {
namespace {

TEST(Quantizer, HandComputedCases) {
  // Δ = 0.5, 4 bits signed: levels -8..7.
  EXPECT_EQ(QuantizeValue(0.74f, 0.5f, 0, -8, 7), 1);
  EXPECT_EQ(QuantizeValue(0.75f, 0.5f, 0, -8, 7), 2);  // 1.5 -> 2 (half to even)
  EXPECT_EQ(QuantizeValue(0.25f, 0.5f, 0, -8, 7), 0);  // 0.5 -> 0 (half to even)
  EXPECT_EQ(QuantizeValue(1.25f, 0.5f, 0, -8, 7), 2);  // 2.5 -> 2
  EXPECT_EQ(QuantizeValue(-1.25f, 0.5f, 0, -8, 7), -2);
  EXPECT_EQ(QuantizeValue(100.f, 0.5f, 0, -8, 7), 7);  // clamped
  EXPECT_EQ(QuantizeValue(-100.f, 0.5f, 0, -8, 7), -8);
  // Asymmetric unsigned 8-bit: zero point 10.
  EXPECT_EQ(QuantizeValue(0.0f, 0.1f, 10, 0, 255), 10);
  EXPECT_EQ(QuantizeValue(-2.0f, 0.1f, 10, 0, 255), 0);
  QuantScheme s = SymmetricScheme(6);
  EXPECT_EQ(s.qmin(), -32);
  EXPECT_EQ(s.qmax(), 31);
  s.is_signed = false;
  EXPECT_EQ(s.qmax(), 63);
}

TEST(Quantizer, RoundTripErrorWithinHalfStepAndExactZero) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  for (int bits = 2; bits <= 8; ++bits) {
    QuantScheme s = SymmetricScheme(bits);
    std::vector<float> x(1000);
    for (auto& v : x) v = u(rng);
    x[0] = 0.0f;
    QParams p = MinMaxParams(x.data(), x.size(), s);
    std::vector<float> y(x.size());
    FakeQuantize(x.data(), x.size(), p.scale[0], 0, s.qmin(), s.qmax(), y.data());
    EXPECT_EQ(y[0], 0.0f) << bits;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i] / p.scale[0] <= s.qmax() && x[i] / p.scale[0] >= s.qmin()) {
        ASSERT_LE(std::fabs(x[i] - y[i]), p.scale[0] / 2 * (1 + 1e-6f)) << bits << " " << x[i];
      }
    }
  }
}

TEST(Quantizer, PerChannelAndValidation) {
  float w[6] = {1.0f, -2.0f, 0.3f, 10.0f, -20.0f, 3.0f};
  QuantScheme s = SymmetricScheme(8);
  s.granularity = Granularity::kPerChannel;
  QParams p{{2.0f / 128, 20.0f / 128}, {0, 0}};
  ASSERT_TRUE(FakeQuantizeTensor(w, {2, 3}, s, p).ok());
  EXPECT_NEAR(w[1], -2.0f, 1e-6);
  EXPECT_NEAR(w[4], -20.0f, 1e-5);
  QParams wrong{{1.0f}, {0}};
  Status st = FakeQuantizeTensor(w, {2, 3}, s, wrong);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("expected 2"), std::string::npos);
  QParams zero{{0.0f, 1.0f}, {0, 0}};
  EXPECT_FALSE(FakeQuantizeTensor(w, {2, 3}, s, zero).ok());
  QParams nan{{NAN, 1.0f}, {0, 0}};
  EXPECT_FALSE(FakeQuantizeTensor(w, {2, 3}, s, nan).ok());
  EXPECT_FALSE(SymmetricScheme(9).Validate("x").ok());
  EXPECT_FALSE(SymmetricScheme(1).Validate("x").ok());
}

TEST(Metrics, AgainstHandValues) {
  float a[4] = {1, 2, 3, 4}, b[4] = {2, 4, 6, 8}, c[4] = {4, 3, 2, 1};
  EXPECT_NEAR(Pearson(a, b, 4), 1.0, 1e-12);
  EXPECT_NEAR(Pearson(a, c, 4), -1.0, 1e-12);
  float d[4] = {1, 3, 2, 4};  // Pearson = 0.8 by hand
  EXPECT_NEAR(Pearson(a, d, 4), 0.8, 1e-12);
  EXPECT_NEAR(CosineSimilarity(a, b, 4), 1.0, 1e-12);
  EXPECT_NEAR(MeanSquaredError(a, b, 4), (1 + 4 + 9 + 16) / 4.0, 1e-12);
  // SQNR: signal 30, noise 30 -> 0 dB
  EXPECT_NEAR(Sqnr(a, b, 4), 0.0, 1e-9);
}

TEST(Plan, JsonRoundTripAndErrors) {
  QuantPlan p;
  p.method = "liu2021";
  p.options_json = R"({"wbits":6})";
  p.seed = 42;
  p.calib_dir = "data/x";
  p.calib_size = 10;
  p.calib_hash = "abc";
  p.architecture = "deit_tiny_patch16_224";
  p.sites["blocks.0.attn.qkv:w"] = {SymmetricScheme(6), {{0.01f}, {0}}};
  QuantScheme pc = SymmetricScheme(8);
  pc.granularity = Granularity::kPerChannel;
  p.sites["head:w"] = {pc, {{0.1f, 0.2f}, {0, 0}}};
  p.biases["head"] = {1.5f, -2.25f};
  auto q = PlanFromJson(PlanToJson(p), "mem");
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->method, "liu2021");
  EXPECT_EQ(q->seed, 42u);
  EXPECT_EQ(q->calib_hash, "abc");
  EXPECT_EQ(q->sites.size(), 2u);
  EXPECT_EQ(q->sites["blocks.0.attn.qkv:w"].scheme.bits, 6);
  EXPECT_EQ(q->sites["blocks.0.attn.qkv:w"].params.scale[0], 0.01f);
  EXPECT_EQ(q->sites["head:w"].scheme.granularity, Granularity::kPerChannel);
  EXPECT_EQ(q->biases["head"][1], -2.25f);
  EXPECT_EQ(PlanToJson(q.value()), PlanToJson(p));
  EXPECT_FALSE(PlanFromJson("{", "mem").ok());
  EXPECT_FALSE(PlanFromJson(R"({"format":"vitq.plan","version":99})", "mem").ok());
  QuantPlan broken = p;
  broken.sites["blocks.0.attn.qkv:w"].params.scale = {-1.0f};
  auto r = PlanFromJson(PlanToJson(broken), "mem");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("blocks.0.attn.qkv:w"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace vitq
