// The simulated (fake-quant) path equals a hand-quantized layer; plans are validated against the
// model; the .vitq file round-trips.
#include "vitq/simulate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "test_util.h"
#include "vitq/engine.h"
#include "vitq/qfile.h"

namespace vitq {
namespace {

QuantPlan MinMaxLikePlan(const ViTModel& m, int bits) {
  QuantPlan p;
  p.method = "hand";
  for (const auto& name : QuantSiteNames(m.spec.config))
    p.sites[name] = {SymmetricScheme(bits), {{0.05f}, {0}}};
  for (const auto& [layer, w] : LinearLayers(m)) {
    p.sites[layer + ":w"] = {SymmetricScheme(bits), MinMaxParams(w->weight.f32(), w->weight.size(),
                                                                 SymmetricScheme(bits))};
  }
  p.biases["head"] = std::vector<float>(m.spec.config.num_classes, 0.25f);
  return p;
}

class Capture : public Observer {
 public:
  bool Wants(const Site& s) const override { return s.layer == SiteLayer::kPatchEmbed; }
  void Observe(const Site& s, TensorView t) override {
    (s.role == SiteRole::kIn ? in : out).assign(t.data, t.data + t.size());
  }
  std::vector<float> in, out;
};

TEST(Simulate, PatchEmbeddingEqualsHandQuantizedLayer) {
  ViTModel m = RandomModel(testing::SmallConfig(), 3);
  QuantPlan plan = MinMaxLikePlan(m, 6);
  auto sim = SimulatedModel::Create(m, plan);
  ASSERT_TRUE(sim.ok()) << sim.status().message();
  const ViTConfig& c = m.spec.config;
  std::vector<float> x(2 * 3 * 32 * 32);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 1);
  for (auto& v : x) v = nd(rng);
  // Capture the raw patches from the float engine, then the simulated layer's output.
  Engine fe(m);
  Capture raw;
  std::vector<float> logits(2 * c.num_classes);
  fe.Forward(x.data(), 2, logits.data(), &raw);
  Capture qcap;
  FakeQuantObserver fq(plan, &qcap);
  Engine qe((*sim)->model());
  qe.Forward(x.data(), 2, logits.data(), &fq);
  const SitePlan& w = plan.sites["patch_embed.proj:w"];
  const int64_t rows = 2 * c.num_patches(), k = c.patch_dim(), n = c.embed_dim;
  ASSERT_EQ(qcap.out.size(), static_cast<size_t>(rows * n));
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < n; ++o) {
      double acc = m.weights.patch_embed.bias.f32()[o];
      for (int64_t j = 0; j < k; ++j) {
        int qx = QuantizeValue(raw.in[r * k + j], 0.05f, 0, -32, 31);
        int qw = QuantizeValue(m.weights.patch_embed.weight.f32()[o * k + j], w.params.scale[0], 0,
                               -32, 31);
        acc += static_cast<double>(qx) * qw * 0.05 * w.params.scale[0];
      }
      worst = std::max(worst, std::fabs(acc - qcap.out[r * n + o]));
    }
  }
  EXPECT_LE(worst, 1e-4);
}

// Leaving activation sites float: with every one of them float the fake-quant path is the float
// engine over the quantized weights, exactly; a pattern that matches nothing is a usage error.
TEST(Simulate, KeepActivationsFloatRemovesOnlyMatchingActivationSites) {
  ViTModel m = RandomModel(testing::SmallConfig(), 3);
  QuantPlan plan = MinMaxLikePlan(m, 4);
  const size_t sites = plan.sites.size();
  QuantPlan one = plan;
  auto n = KeepActivationsFloat(&one, {"blocks.1.mlp.fc2:in"});
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(n.value(), 1);
  EXPECT_EQ(one.Find("blocks.1.mlp.fc2:in"), nullptr);
  EXPECT_NE(one.Find("blocks.0.mlp.fc2:in"), nullptr);
  EXPECT_EQ(one.sites.size(), sites - 1);
  auto bad = KeepActivationsFloat(&one, {"fc2:w"});
  EXPECT_EQ(bad.status().code(), StatusCode::kUsage);
  EXPECT_NE(bad.status().message().find("'fc2:w' matches no activation site"), std::string::npos)
      << bad.status().message();
  QuantPlan none = plan;
  auto all = KeepActivationsFloat(&none, {":in", ":a", ":b"});
  ASSERT_TRUE(all.ok());
  const ViTConfig& c = m.spec.config;
  EXPECT_EQ(all.value(), 4 * c.depth + 2 + 2 * 2 * c.depth + (c.head_dist ? 1 : 0));
  for (const auto& [name, site] : none.sites) EXPECT_EQ(name.back(), 'w') << name;
  std::vector<float> x(2 * c.in_chans * c.img_size * c.img_size);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0, 1);
  for (auto& v : x) v = nd(rng);
  auto sim = SimulatedModel::Create(m, none);
  ASSERT_TRUE(sim.ok());
  auto wq = ApplyPlanToWeights(m, plan);
  ASSERT_TRUE(wq.ok());
  std::vector<float> a(2 * c.num_classes), b(a.size()), q(a.size());
  (*sim)->Forward(x.data(), 2, a.data());
  Engine(wq.value()).Forward(x.data(), 2, b.data());
  EXPECT_EQ(a, b);
  auto full = SimulatedModel::Create(m, plan);
  ASSERT_TRUE(full.ok());
  (*full)->Forward(x.data(), 2, q.data());
  EXPECT_NE(q, b);  // the activation grids do change the logits
}

TEST(Simulate, PlanMustMatchTheModel) {
  ViTModel m = RandomModel(testing::SmallConfig(), 3);
  QuantPlan plan = MinMaxLikePlan(m, 8);
  plan.sites["blocks.7.attn.qkv:w"] = {SymmetricScheme(8), {{0.1f}, {0}}};
  Status s = ValidatePlan(plan, m);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blocks.7.attn.qkv:w"), std::string::npos);
  QuantPlan plan2 = MinMaxLikePlan(m, 8);
  plan2.biases["head"] = {1.0f};
  Status s2 = ValidatePlan(plan2, m);
  ASSERT_FALSE(s2.ok());
  EXPECT_NE(s2.message().find("1 values"), std::string::npos) << s2.message();
  QuantPlan plan3 = MinMaxLikePlan(m, 8);
  QuantScheme pc = SymmetricScheme(8);
  pc.granularity = Granularity::kPerChannel;
  plan3.sites["head:w"] = {pc, {{0.1f, 0.1f}, {0, 0}}};
  EXPECT_FALSE(ValidatePlan(plan3, m).ok());
}

TEST(Simulate, ModelSizeCountsBitsOfLinearWeights) {
  ViTModel m = RandomModel(testing::SmallConfig(), 3);
  QuantPlan none;
  EXPECT_EQ(ModelSizeBytes(m, none), m.NumParams() * 4);
  QuantPlan p8 = MinMaxLikePlan(m, 8);
  int64_t linear = 0;
  for (const auto& [name, w] : LinearLayers(m)) linear += w->weight.size();
  EXPECT_EQ(ModelSizeBytes(m, p8), (m.NumParams() - linear) * 4 + linear);
}

// CloneModel(model, i): a one-block model whose block 0 computes exactly what block i of the
// whole model computes (mixed precision's Omega table relies on it), with the plan's sites of
// block i renamed to blocks.0.
TEST(Simulate, OneBlockCloneComputesThatBlock) {
  ViTModel m = RandomModel(testing::SmallConfig(), 5);
  const ViTConfig& c = m.spec.config;
  ASSERT_GE(c.depth, 2);
  const int block = c.depth - 1;
  ViTModel one = CloneModel(m, block);
  EXPECT_EQ(one.spec.config.depth, 1);
  ASSERT_EQ(one.weights.blocks.size(), 1u);
  const int64_t n = 2LL * c.num_tokens() * c.embed_dim;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  std::vector<float> a = x, b = x;
  Engine whole(m), single(one);
  whole.Block(block, a.data(), 2);
  single.Block(0, b.data(), 2);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float)));
  // The same with the block's weights quantized by a plan, named as in the one-block model.
  QuantPlan plan = MinMaxLikePlan(one, 4);
  auto q = ApplyPlanToWeights(one, plan);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_NE(
      0, std::memcmp(q->weights.blocks[0].fc1.weight.f32(), one.weights.blocks[0].fc1.weight.f32(),
                     one.weights.blocks[0].fc1.weight.num_bytes()));
}

}  // namespace
}  // namespace vitq
