// Tests of the search stage: ranking-loss implementations against the O(w²) definition, bias
// correction, the alternating search on synthetic problems with known optima.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "methods.h"
#include "op_search.h"
#include "ranking_loss.h"
#include "test_util.h"
#include "vitq/quant.h"
#include "vitq/quantize.h"
#include "vitq/simulate.h"

namespace vitq::search {
namespace {

TEST(RankingLoss, FastImplementationsMatchBruteForce) {
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0, 2);
  for (int trial = 0; trial < 200; ++trial) {
    const int w = 1 + trial % 60 + (trial % 7 == 0 ? 180 : 0);  // also rows longer than 197
    std::vector<float> a(w), b(w);
    for (int i = 0; i < w; ++i) {
      a[i] = std::round(n(rng) * 4) / 4;  // ties in the float scores
      b[i] = a[i] + n(rng) * (trial % 3 == 0 ? 0.01f : 0.3f);
    }
    RankSum ref = RankingRowBruteForce(a.data(), b.data(), w, 0.2f);
    RowOrder ro = SortRow(a.data(), w);
    std::vector<float> scratch(RankingScratchSize(w));
    FenwickScratch fs;
    RankSum fw = RankingRowFenwick(ro, b.data(), w, 0.2f, &fs);
    std::vector<float> a_sorted(w);
    for (int p = 0; p < w; ++p) a_sorted[p] = a[ro.order[p]];
    for (RankingKernel kernel : {RankingKernel::kBest, RankingKernel::kPortable}) {
      RankSum wf = RankingRowWindowedFlat(ro.order.data(), ro.group_end.data(), a_sorted.data(),
                                          b.data(), w, 0.2f, scratch.data(), kernel);
      ASSERT_EQ(wf.pairs, ref.pairs);
      ASSERT_NEAR(wf.sum, ref.sum, 1e-3 * (1 + ref.sum)) << trial;
    }
    std::vector<int32_t> acc(w);
    for (int i = 0; i < w; ++i) acc[i] = static_cast<int32_t>(std::lround(b[i] * 64));
    std::vector<float> b_acc(w);
    for (int i = 0; i < w; ++i) b_acc[i] = acc[i] / 64.0f;
    RankSum ref_acc = RankingRowBruteForce(a.data(), b_acc.data(), w, 0.2f);
    RankSum wa = RankingRowWindowedAcc(ro.order.data(), ro.group_end.data(), a_sorted.data(),
                                       acc.data(), 1.0f / 64, w, 0.2f, scratch.data());
    ASSERT_EQ(wa.pairs, ref_acc.pairs);
    ASSERT_NEAR(wa.sum, ref_acc.sum, 1e-3 * (1 + ref_acc.sum)) << trial;
    ASSERT_EQ(fw.pairs, ref.pairs);
    ASSERT_NEAR(fw.sum, ref.sum, 1e-3 * (1 + ref.sum)) << trial;
  }
}

TEST(RankingLoss, PerfectOrderWithLargeGapsHasZeroLoss) {
  float a[4] = {4, 3, 2, 1}, b[4] = {4, 3, 2, 1};
  EXPECT_EQ(RankingRowBruteForce(a, b, 4, 0.2f).sum, 0.0);
  float swapped[4] = {3, 4, 2, 1};  // one inverted pair: hinge 0.2 - (-1) = 1.2
  EXPECT_NEAR(RankingRowBruteForce(a, swapped, 4, 0.2f).sum, 1.2, 1e-6);
}

struct Linear {
  std::vector<float> x, w;
  OpTensors op;
};

// x: `rows` x k values k_i * step_x (integers in [-mx, mx]); w: integers in [-mw, mw] * step_w.
Linear GridProblem(int images, int rows, int k, int n, float step_x, int mx, float step_w, int mw) {
  Linear l;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> ux(-mx, mx), uw(-mw, mw);
  l.x.resize(static_cast<size_t>(images) * rows * k);
  for (auto& v : l.x) v = ux(rng) * step_x;
  l.x[0] = mx * step_x;  // the maximum is attained
  l.w.resize(static_cast<size_t>(n) * k);
  for (auto& v : l.w) v = uw(rng) * step_w;
  l.w[0] = mw * step_w;
  l.op.name = "synthetic";
  l.op.images = images;
  l.op.x = l.x.data();
  l.op.rows = rows;
  l.op.k = k;
  l.op.n = n;
  l.op.weight = l.w.data();
  l.op.bias.assign(n, 0.5f);
  return l;
}

TEST(Search, FindsTheExactGridOfASyntheticLayer) {
  // Values on grids of steps 0.05 (x, |k| <= 100) and 0.02 (w, |k| <= 50): quantizing with exactly
  // those steps is lossless, any other candidate is not. The candidate grid holds both steps.
  Linear l = GridProblem(4, 16, 32, 24, 0.05f, 100, 0.02f, 50);
  kernels::DnnlContext ctx;
  SearchOptions o;
  o.bits_w = o.bits_x = 8;
  const float d0x = InitialScale(l.x.data(), l.x.size(), 8),
              d0w = InitialScale(l.w.data(), l.w.size(), 8);
  // Grid: alpha, (alpha+beta)/2, beta with the middle at the exact step, for both operands at once:
  // the ratios step/Δ0 are 0.05 * 128 / 5 = 1.28 and 0.02 * 128 / 1 = 2.56; use separate runs.
  ASSERT_NEAR(0.05f / d0x, 1.28f, 1e-5);
  o.candidates = 3;
  o.alpha = 0.28f;
  o.beta = 2.28f;  // middle = 1.28
  o.bias_correction = false;
  OpResult exact = SearchOp(l.op, o, &ctx, /*fixed_w=*/0.02f, /*fixed_x=*/0.05f);
  EXPECT_NEAR(exact.similarity_after, 1.0, 1e-6);  // lossless at the true steps (float sums)
  EXPECT_NEAR(d0w * 2.56f, 0.02f, 1e-6);
  OpResult r = SearchOp(l.op, o, &ctx);
  EXPECT_NEAR(r.scale_x, 0.05f, 1e-6);  // the search lands on the exact x step
}

TEST(Search, AlternatingResultIsCoordinatewiseOptimalOnTheGrid) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 1);
  Linear l = GridProblem(3, 20, 48, 16, 0.01f, 300, 0.01f, 100);
  for (auto& v : l.x) v = nd(rng) * (nd(rng) > 2.0f ? 6.0f : 1.0f);  // outliers
  for (auto& v : l.w) v = nd(rng) * 0.1f;
  kernels::DnnlContext ctx;
  SearchOptions o;
  o.bits_w = o.bits_x = 4;
  o.candidates = 20;
  o.bias_correction = false;
  OpResult r = SearchOp(l.op, o, &ctx);
  const float d0x = InitialScale(l.x.data(), l.x.size(), 4),
              d0w = InitialScale(l.w.data(), l.w.size(), 4);
  MethodContext mc;
  mc.bits_w = mc.bits_x = 4;
  mc.ctx = &ctx;
  const double best = EvaluateFixed(l.op, mc, r.scale_w, r.scale_x).similarity_after;
  EXPECT_NEAR(best, r.similarity_after, 1e-9);
  for (int i = 0; i < o.candidates; ++i) {
    float f = o.alpha + (o.beta - o.alpha) * i / (o.candidates - 1);
    EXPECT_LE(EvaluateFixed(l.op, mc, d0w * f, r.scale_x).similarity_after, best + 1e-9) << i;
    EXPECT_LE(EvaluateFixed(l.op, mc, r.scale_w, d0x * f).similarity_after, best + 1e-9) << i;
  }
  EXPECT_GT(r.similarity_after, r.similarity_before);
}

TEST(Search, CoarseToFineIsLocallyOptimalWithFewerEvaluations) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0, 1);
  Linear l = GridProblem(3, 20, 48, 16, 0.01f, 300, 0.01f, 100);
  for (auto& v : l.x) v = nd(rng) * (nd(rng) > 2.0f ? 6.0f : 1.0f);
  for (auto& v : l.w) v = nd(rng) * 0.1f;
  kernels::DnnlContext ctx;
  SearchOptions o;
  o.bits_w = o.bits_x = 4;
  o.bias_correction = false;
  OpResult full = SearchOp(l.op, o, &ctx);
  o.coarse_step = 10;
  OpResult c2f = SearchOp(l.op, o, &ctx);
  EXPECT_LT(c2f.evaluations, full.evaluations / 2);
  EXPECT_GE(c2f.similarity_after, full.similarity_after - 1e-3);
  // The result is a grid point, better than every coarse point and its two neighbours.
  const float d0x = InitialScale(l.x.data(), l.x.size(), 4),
              d0w = InitialScale(l.w.data(), l.w.size(), 4);
  auto grid = [&](float d0, int i) { return d0 * (o.alpha + (o.beta - o.alpha) * i / 99); };
  int ix = -1, iw = -1;
  for (int i = 0; i < 100; ++i) {
    if (grid(d0x, i) == c2f.scale_x) ix = i;
    if (grid(d0w, i) == c2f.scale_w) iw = i;
  }
  ASSERT_GE(ix, 0);
  ASSERT_GE(iw, 0);
  MethodContext mc;
  mc.bits_w = mc.bits_x = 4;
  mc.ctx = &ctx;
  const double best = EvaluateFixed(l.op, mc, c2f.scale_w, c2f.scale_x).similarity_after;
  std::vector<int> visited = {99, ix - 1, ix + 1};
  for (int i = 0; i < 100; i += 10) visited.push_back(i);
  for (int i : visited) {
    if (i < 0 || i >= 100) continue;
    EXPECT_LE(EvaluateFixed(l.op, mc, c2f.scale_w, grid(d0x, i)).similarity_after, best + 1e-9)
        << i;
  }
  // QuantizeOptions: the coarse step is the rounded-up square root of the grid.
  QuantizeOptions q;
  EXPECT_EQ(q.CoarseStep(), 0);
  q.coarse_to_fine = true;
  EXPECT_EQ(q.CoarseStep(), 10);
  q.candidates = 50;
  EXPECT_EQ(q.CoarseStep(), 8);
}

TEST(Search, BiasCorrectionRemovesTheMeanOutputError) {
  // Inputs all at 0.7 steps: rounding always goes up, a systematic per-channel output error.
  Linear l = GridProblem(2, 10, 16, 8, 0.01f, 50, 0.01f, 50);
  for (auto& v : l.x) v = 0.7f * 0.1f;
  l.x[0] = 0.7f * 0.1f;
  kernels::DnnlContext ctx;
  SearchOptions o;
  o.bias_correction = true;
  o.search = false;
  OpResult corrected = SearchOp(l.op, o, &ctx, 0.01f, 0.1f);
  o.bias_correction = false;
  OpResult raw = SearchOp(l.op, o, &ctx, 0.01f, 0.1f);
  EXPECT_GT(corrected.bias_shift, 1e-3);
  // With the corrected bias the mean error per channel is zero, by hand in double precision.
  const int rows = 2 * 10, k = 16, n = 8;
  for (int c = 0; c < n; ++c) {
    double err = 0;
    for (int r = 0; r < rows; ++r) {
      double o = l.op.bias[c], q = corrected.bias[c];
      for (int j = 0; j < k; ++j) {
        o += static_cast<double>(l.x[r * k + j]) * l.w[c * k + j];
        q += QuantizeValue(l.x[r * k + j], 0.1f, 0, -128, 127) * 0.1 *
             QuantizeValue(l.w[c * k + j], 0.01f, 0, -128, 127) * 0.01;
      }
      err += q - o;
    }
    EXPECT_NEAR(err / rows, 0.0, 1e-5) << c;
  }
  EXPECT_GT(corrected.sqnr_db, raw.sqnr_db);
}

}  // namespace
}  // namespace vitq::search

namespace vitq {
namespace {

// Quiet options of `method` at `bits` for weights and activations.
QuantizeOptions Options(const std::string& method, int bits) {
  QuantizeOptions o;
  o.method = method;
  o.wbits = o.abits = bits;
  o.quiet = true;
  return o;
}

TEST(QuantizeModel, ParallelAndSequentialPlansCoverEverySite) {
  ViTModel m = RandomModel(testing::SmallConfig(), 2);
  CalibrationSet cs = testing::RandomCalibration(m.spec.config, 6);
  QuantizeOptions o = Options("minmax", 4);
  QuantizeReport rp, rs;
  auto par = QuantizeModel(m, cs, o, &rp);
  o.sequential = true;
  auto seq = QuantizeModel(m, cs, o, &rs);
  ASSERT_TRUE(par.ok()) << par.status().message();
  ASSERT_TRUE(seq.ok()) << seq.status().message();
  for (const auto& name : QuantSiteNames(m.spec.config)) {
    ASSERT_NE(par->Find(name), nullptr) << name;
    ASSERT_NE(seq->Find(name), nullptr) << name;
  }
  EXPECT_EQ(rp.ops.size(), 6u * 2 + 2);
  // The first operation sees the same (float) input either way; later inputs come from the
  // 4-bit quantized prefix in sequential mode and differ.
  EXPECT_EQ(par->Find("patch_embed.proj:in")->params.scale[0],
            seq->Find("patch_embed.proj:in")->params.scale[0]);
  EXPECT_NE(par->Find("blocks.1.mlp.fc2:in")->params.scale[0],
            seq->Find("blocks.1.mlp.fc2:in")->params.scale[0]);
  EXPECT_TRUE(ValidatePlan(seq.value(), m).ok());
  EXPECT_EQ(par->calib_hash, cs.hash);
}

TEST(QuantizeModel, Liu2021ImprovesSimilarityAndCorrectsBiases) {
  ViTModel m = RandomModel(testing::SmallConfig(), 3);
  CalibrationSet cs = testing::RandomCalibration(m.spec.config, 4);
  QuantizeOptions o = Options("liu2021", 4);
  o.candidates = 20;
  QuantizeReport r;
  auto plan = QuantizeModel(m, cs, o, &r);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  double before = 0, after = 0;
  for (const auto& op : r.ops) {
    before += op.similarity_before;
    after += op.similarity_after;
  }
  EXPECT_GT(after, before);
  EXPECT_FALSE(plan->biases.empty());
  QuantizeOptions bad = o;
  bad.method = "nope";
  EXPECT_FALSE(QuantizeModel(m, cs, bad, &r).ok());
}

// vitq keeps the image (the patch embedding's input) at 8 bits below 8-bit activations unless
// asked otherwise; every other activation site follows abits; impossible values are refused.
TEST(QuantizeModel, VitqKeepsTheImageAtItsOwnBits) {
  ViTModel m = RandomModel(testing::SmallConfig(), 3);
  CalibrationSet cs = testing::RandomCalibration(m.spec.config, 4);
  QuantizeOptions o = Options("vitq", 4);
  for (int image_bits : {8, 0, 6}) {
    o.image_bits = image_bits;
    QuantizeReport r;
    auto plan = QuantizeModel(m, cs, o, &r);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(plan->Find("patch_embed.proj:in")->scheme.bits, image_bits == 0 ? 4 : image_bits);
    EXPECT_EQ(plan->Find("patch_embed.proj:w")->scheme.bits, 4);
    EXPECT_EQ(plan->Find("blocks.0.attn.qkv:in")->scheme.bits, 4);
    EXPECT_EQ(plan->Find("head:in")->scheme.bits, 4);
    EXPECT_TRUE(ValidatePlan(plan.value(), m).ok());
  }
  for (int bad : {1, 9, -1}) {
    o.image_bits = bad;
    const Status st = o.Validate();
    EXPECT_EQ(st.code(), StatusCode::kUsage) << bad;
    EXPECT_NE(st.message().find("--image-bits"), std::string::npos) << st.message();
  }
}

// MPI: a plan and report made on one process arrive whole on the others (vitq compare deals
// cells to processes); a cut payload is refused, never read past its end.
TEST(QuantizeModel, PlanAndReportSurviveTheTripBetweenProcesses) {
  ViTModel m = RandomModel(testing::SmallConfig(), 3);
  CalibrationSet cs = testing::RandomCalibration(m.spec.config, 4);
  // vitq: per-channel scales, zero points, float tensors the plan replaced.
  QuantizeOptions o = Options("vitq", 4);
  QuantizeReport r;
  auto plan = QuantizeModel(m, cs, o, &r);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_FALSE(r.ops.empty());
  r.reconstruction.push_back({"blocks.0", 1.5, 0.5, 0.5, false, 2.0});
  dist::Writer w;
  PutPlan(&w, plan.value());
  PutReport(&w, r);
  dist::Reader rd(w.bytes());
  auto back = GetPlan(&rd, "test");
  ASSERT_TRUE(back.ok()) << back.status().message();
  const QuantizeReport r2 = GetReport(&rd);
  EXPECT_EQ(PlanToJson(back.value()), PlanToJson(plan.value()));
  EXPECT_EQ(back->tensors, plan->tensors);
  EXPECT_EQ(r2.ToJson(), r.ToJson());
  const std::string cut = w.bytes().substr(0, w.bytes().size() - 3);
  dist::Reader short_reader(cut);
  ASSERT_TRUE(GetPlan(&short_reader, "test").ok());
  EXPECT_THROW(GetReport(&short_reader), std::length_error);
}

}  // namespace
}  // namespace vitq
