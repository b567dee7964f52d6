// Mixed precision: the knapsack against brute force, nuclear norms against known matrices, the
// budget, and reproducibility on a small random model.
#include "vitq/mixed_precision.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "test_util.h"
#include "vitq/simulate.h"

namespace vitq {
namespace {

TEST(NuclearNorm, KnownMatrices) {
  // diag(3, -2, 0.5) padded to 3x5: singular values 3, 2, 0.5.
  std::vector<float> d(15, 0.0f);
  d[0] = 3.0f;
  d[6] = -2.0f;
  d[12] = 0.5f;
  EXPECT_NEAR(NuclearNorm(d.data(), 3, 5), 5.5, 1e-5);
  // The same data read as 5x3 has one non-zero column (3, 0, -2, 0, 0.5): its norm.
  EXPECT_NEAR(NuclearNorm(d.data(), 5, 3), std::sqrt(13.25), 1e-5);
  // Rank one u vᵀ: ||u|| · ||v||.
  std::vector<float> u = {1, 2, 2}, v = {3, 4}, r(6);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) r[i * 2 + j] = u[i] * v[j];
  EXPECT_NEAR(NuclearNorm(r.data(), 3, 2), 3.0 * 5.0, 1e-4);
  // An orthogonal 2x2 rotation: both singular values 1.
  const float a = 0.3f;
  std::vector<float> rot = {std::cos(a), -std::sin(a), std::sin(a), std::cos(a)};
  EXPECT_NEAR(NuclearNorm(rot.data(), 2, 2), 2.0, 1e-5);
}

TEST(Knapsack, MatchesBruteForceOnRandomInstances) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + rng() % 5, choices = 1 + rng() % 4;
    std::vector<KnapsackItem> items(n);
    for (auto& it : items) {
      for (int c = 0; c < choices; ++c) {
        it.cost.push_back(rng() % 7);
        it.value.push_back(std::uniform_real_distribution<double>(0, 10)(rng));
      }
    }
    const int64_t budget = rng() % 20;
    // Brute force over every combination.
    double best = std::numeric_limits<double>::infinity();
    std::vector<int> pick(n, 0);
    for (int64_t code = 0; code < static_cast<int64_t>(std::pow(choices, n)); ++code) {
      int64_t x = code, cost = 0;
      double value = 0;
      for (int i = 0; i < n; ++i) {
        pick[i] = x % choices;
        x /= choices;
        cost += items[i].cost[pick[i]];
        value += items[i].value[pick[i]];
      }
      if (cost <= budget) best = std::min(best, value);
    }
    auto r = SolveKnapsack(items, budget);
    if (best == std::numeric_limits<double>::infinity()) {
      EXPECT_FALSE(r.ok()) << trial;
      continue;
    }
    ASSERT_TRUE(r.ok()) << trial;
    int64_t cost = 0;
    double value = 0;
    for (int i = 0; i < n; ++i) {
      cost += items[i].cost[(*r)[i]];
      value += items[i].value[(*r)[i]];
    }
    EXPECT_LE(cost, budget) << trial;  // the budget is never exceeded
    EXPECT_NEAR(value, best, 1e-9) << trial;
  }
}

// The uniform plans under the mixed-precision tests: minmax, fast and deterministic.
QuantizeOptions QuietMinmax() {
  QuantizeOptions q;
  q.method = "minmax";
  q.quiet = true;
  return q;
}

TEST(MixedPrecision, RespectsTheBudgetAndIsReproducible) {
  ViTModel m = RandomModel(testing::SmallConfig(), 21);
  CalibrationSet cs = testing::RandomCalibration(m.spec.config, 4);
  const QuantizeOptions q = QuietMinmax();
  MixedPrecisionOptions mp;
  mp.target_bits = 4;
  MixedPrecisionReport r1, r2;
  QuantizeReport q1, q2;
  PlanCache cache;
  auto p1 = QuantizeMixedPrecision(m, cs, q, mp, &r1, &q1, &cache);
  ASSERT_TRUE(p1.ok()) << p1.status().message();
  auto p2 = QuantizeMixedPrecision(m, cs, q, mp, &r2, &q2);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(r1.candidates, (std::vector<int>{2, 3, 4, 5, 6}));
  EXPECT_EQ(r1.bits, r2.bits);  // reproducible
  QuantPlan a = p1.value(), b = p2.value();
  a.report_json = b.report_json = "{}";  // timings differ
  EXPECT_EQ(PlanToJson(a), PlanToJson(b));
  EXPECT_LE(r1.size_bytes, r1.budget_bytes);
  EXPECT_EQ(r1.size_bytes, ModelSizeBytes(m, p1.value()));
  EXPECT_EQ(r1.budget_bytes, ModelSizeBytes(m, cache.at(4).plan));
  EXPECT_EQ(r1.modules.size(), 4u);  // 2 blocks x (attn, mlp)
  // Every module's sites carry its chosen bits; patch_embed and head the top candidate.
  for (size_t i = 0; i < r1.modules.size(); ++i) {
    for (const auto& [name, sp] : p1->sites) {
      if (name.rfind(r1.modules[i] + ".", 0) == 0) {
        EXPECT_EQ(sp.scheme.bits, r1.bits[i]) << name;
      }
    }
  }
  EXPECT_EQ(p1->sites.at("head:w").scheme.bits, 6);
  EXPECT_EQ(p1->sites.at("patch_embed.proj:in").scheme.bits, 6);
  // Ω grows as bits shrink (error of a coarser grid), and Ω = nuclear norm x error.
  for (size_t i = 0; i < r1.modules.size(); ++i) {
    EXPECT_GT(r1.nuclear_norm[i], 0.0);
    EXPECT_GT(r1.omega[i][0], r1.omega[i][4]) << r1.modules[i];
    EXPECT_DOUBLE_EQ(r1.omega[i][2], r1.nuclear_norm[i] * r1.error[i][2]);
  }
  // The Pareto curve decreases and ends at or after the chosen size.
  ASSERT_GE(r1.pareto.size(), 2u);
  for (size_t i = 1; i < r1.pareto.size(); ++i) {
    EXPECT_GT(r1.pareto[i].first, r1.pareto[i - 1].first);
    EXPECT_LT(r1.pareto[i].second, r1.pareto[i - 1].second);
  }
  EXPECT_NE(r1.ParetoSvg().find("<polyline"), std::string::npos);
}

TEST(MixedPrecision, ScaleFreeOmegaIsThePaperOmegaOverTheCubedRmsNorm) {
  ViTModel m = RandomModel(testing::SmallConfig(), 23);
  CalibrationSet cs = testing::RandomCalibration(m.spec.config, 3);
  const QuantizeOptions q = QuietMinmax();
  MixedPrecisionOptions paper, free;
  paper.target_bits = free.target_bits = 4;
  free.omega = OmegaCriterion::kScaleFree;
  MixedPrecisionReport rp, rf;
  QuantizeReport qp, qf;
  PlanCache cache;
  ASSERT_TRUE(QuantizeMixedPrecision(m, cs, q, paper, &rp, &qp, &cache).ok());
  auto pf = QuantizeMixedPrecision(m, cs, q, free, &rf, &qf, &cache);
  ASSERT_TRUE(pf.ok()) << pf.status().message();
  EXPECT_EQ(rp.criterion, OmegaCriterion::kPaper);
  EXPECT_EQ(rf.criterion, OmegaCriterion::kScaleFree);
  EXPECT_NE(pf->options_json.find("\"omega\":\"scale-free\""), std::string::npos);
  EXPECT_LE(rf.size_bytes, rf.budget_bytes);
  for (size_t i = 0; i < rp.modules.size(); ++i) {
    const double s2 = rf.frobenius2[i];
    ASSERT_GT(s2, 0.0);
    EXPECT_DOUBLE_EQ(rf.frobenius2[i], rp.frobenius2[i]);
    for (size_t c = 0; c < rp.candidates.size(); ++c)
      EXPECT_NEAR(rf.omega[i][c], rp.omega[i][c] / (s2 * std::sqrt(s2)),
                  1e-12 * rp.omega[i][c] / (s2 * std::sqrt(s2)) + 1e-300);
  }
  // Scaling the model's fc2 outputs (weights and bias) by 10 scales the MLP's paper Ω by 10³
  // but leaves its scale-free Ω as it was, up to the quantization grids.
  ViTModel scaled = CloneModel(m);
  for (auto& b : scaled.weights.blocks) {
    for (int64_t j = 0; j < b.fc2.weight.size(); ++j) b.fc2.weight.f32()[j] *= 10;
    for (int64_t j = 0; j < b.fc2.bias.size(); ++j) b.fc2.bias.f32()[j] *= 10;
  }
  MixedPrecisionReport rs;
  QuantizeReport qs;
  ASSERT_TRUE(QuantizeMixedPrecision(scaled, cs, q, free, &rs, &qs).ok());
  // Module 1 is blocks.0.mlp, and block 0's output is the first thing scaled.
  ASSERT_EQ(rs.modules[1], "blocks.0.mlp");
  EXPECT_NEAR(rs.frobenius2[1] / rf.frobenius2[1], 100.0, 1.0);
  for (size_t c = 0; c < rs.candidates.size(); ++c)
    EXPECT_NEAR(rs.omega[1][c] / rf.omega[1][c], 1.0, 0.05) << rs.candidates[c];
  EXPECT_FALSE(ParseOmegaCriterion("nuclear").ok());
}

TEST(MixedPrecision, ImpossibleBudgetsAndCandidatesAreRefused) {
  ViTModel m = RandomModel(testing::SmallConfig(), 22);
  CalibrationSet cs = testing::RandomCalibration(m.spec.config, 2);
  const QuantizeOptions q = QuietMinmax();
  MixedPrecisionReport r;
  QuantizeReport qr;
  MixedPrecisionOptions tiny;
  tiny.target_size_mb = 0.001;
  tiny.candidates = {4, 6, 8};
  auto p = QuantizeMixedPrecision(m, cs, q, tiny, &r, &qr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(p.status().message().find("below the smallest model"), std::string::npos)
      << p.status().message();
  MixedPrecisionOptions bad;
  bad.target_bits = 6;
  bad.candidates = {4, 9};
  EXPECT_NE(bad.Validate().message().find("candidate bit-width 9 outside 2-8"), std::string::npos);
  MixedPrecisionOptions none;
  EXPECT_FALSE(none.Validate().ok());
}

}  // namespace
}  // namespace vitq
