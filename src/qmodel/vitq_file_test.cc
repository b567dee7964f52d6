// The .vitq file: packing, round trip, sizes, mixed bit-widths, and tampered files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include "test_util.h"
#include "vitq/qfile.h"
#include "vitq/runtime.h"
#include "vitq/safetensors.h"
#include "vitq/simulate.h"

namespace vitq {
namespace {
namespace fs = std::filesystem;

// A plan over every site: weights per tensor (or per channel for fc1) at `wbits` with minmax
// scales, activations at `abits` with a fixed scale, a corrected head bias.
QuantPlan HandPlan(const ViTModel& m, int wbits, int abits) {
  QuantPlan p;
  p.method = "hand";
  for (const auto& name : QuantSiteNames(m.spec.config))
    p.sites[name] = {SymmetricScheme(abits), {{0.05f}, {0}}};
  for (const auto& [layer, w] : LinearLayers(m)) {
    QuantScheme s = SymmetricScheme(wbits);
    QParams params = MinMaxParams(w->weight.f32(), w->weight.size(), s);
    if (layer.find("fc1") != std::string::npos) {  // per output channel
      s.granularity = Granularity::kPerChannel;
      params = {};
      const int64_t rows = w->weight.dim(0), cols = w->weight.dim(1);
      for (int64_t r = 0; r < rows; ++r) {
        QParams row = MinMaxParams(w->weight.f32() + r * cols, cols, SymmetricScheme(wbits));
        params.scale.push_back(row.scale[0]);
        params.zero_point.push_back(0);
      }
    }
    p.sites[layer + ":w"] = {s, params};
  }
  p.biases["head"] = std::vector<float>(m.spec.config.num_classes, 0.25f);
  return p;
}

TEST(Packing, RoundTripsEveryBitWidth) {
  std::mt19937 rng(5);
  for (int bits = 2; bits <= 8; ++bits) {
    const int64_t rows = 3, cols = 37;  // odd: rows are padded to whole bytes
    std::uniform_int_distribution<int> d(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
    std::vector<int8_t> q(rows * cols), back(rows * cols);
    for (auto& v : q) v = static_cast<int8_t>(d(rng));
    std::vector<uint8_t> packed = PackWeights(q.data(), rows, cols, bits);
    EXPECT_EQ(static_cast<int64_t>(packed.size()),
              rows * ((cols * (bits <= 2 ? 2 : bits <= 4 ? 4 : 8) + 7) / 8))
        << bits;
    UnpackWeights(packed.data(), rows, cols, bits, back.data());
    EXPECT_EQ(back, q) << bits;
  }
}

TEST(QuantizedFile, RoundTripGivesTheSameSimulation) {
  testing::TempDir dir;
  ViTModel m = RandomModel(testing::SmallConfig(), 8);
  QuantPlan plan = HandPlan(m, 8, 8);
  Status saved = SaveQuantizedFile(dir.path("m.vitq"), m, plan);
  ASSERT_TRUE(saved.ok()) << saved.message();
  EXPECT_TRUE(IsQuantizedFile(dir.path("m.vitq")));
  auto q = LoadQuantizedFile(dir.path("m.vitq"));
  ASSERT_TRUE(q.ok()) << q.status().message();
  // The sites come back unchanged; corrected biases are folded into the model's biases.
  QuantPlan expected = plan;
  expected.biases.clear();
  EXPECT_EQ(PlanToJson(q->plan), PlanToJson(expected));
  EXPECT_EQ(q->model.weights.head.bias.f32()[0], 0.25f);
  EXPECT_EQ(q->linear.size(), LinearLayers(m).size());
  auto a = SimulatedModel::Create(m, plan);
  auto b = SimulatedModel::Create(DequantizedModel(*q), q->plan);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<float> x(3 * 32 * 32, 0.5f), la(10), lb(10);
  (*a)->Forward(x.data(), 1, la.data());
  (*b)->Forward(x.data(), 1, lb.data());
  EXPECT_EQ(testing::MaxAbsDiff(la.data(), lb.data(), 10), 0.0);
  // A float checkpoint is not a .vitq file.
  ASSERT_TRUE(SaveTimmCheckpoint(m, dir.path("f")).ok());
  EXPECT_FALSE(IsQuantizedFile(dir.path("f/model.safetensors")));
  auto notq = LoadQuantizedFile(dir.path("f/model.safetensors"));
  ASSERT_FALSE(notq.ok());
  EXPECT_NE(notq.status().message().find("expected 'vitq'"), std::string::npos)
      << notq.status().message();
}

TEST(QuantizedFile, SizesFollowTheBitWidths) {
  testing::TempDir dir;
  ViTModel m = RandomModel(testing::SmallConfig(), 9);
  int64_t linear = 0;
  for (const auto& [name, w] : LinearLayers(m)) linear += w->weight.size();
  const int64_t other = m.NumParams() - linear;
  for (int bits : {8, 6, 4, 3, 2}) {
    auto path = dir.path("w" + std::to_string(bits) + ".vitq");
    ASSERT_TRUE(SaveQuantizedFile(path, m, HandPlan(m, bits, 8)).ok());
    auto q = LoadQuantizedFile(path);
    ASSERT_TRUE(q.ok()) << q.status().message();
    const int per = ValuesPerByte(bits);
    int64_t packed = 0;
    for (const auto& [layer, shape] : LinearShapes(m.spec.config))
      packed += shape[0] * ((shape[1] + per - 1) / per);
    // Integer weights at their packed size; scales; everything else (biases included) fp32.
    const int64_t scales = 4 * (static_cast<int64_t>(LinearLayers(m).size()) - 2 +
                                2 * m.spec.config.mlp_hidden);  // fc1 per channel (2 blocks)
    EXPECT_EQ(q->StoredBytes(), other * 4 + packed + scales) << bits;
    EXPECT_LE(static_cast<int64_t>(fs::file_size(path)), q->StoredBytes() + 64 * 1024) << bits;
  }
}

TEST(QuantizedFile, MixedBitWidthsRunOnTheIntegerEngine) {
  testing::TempDir dir;
  ViTModel m = RandomModel(testing::SmallConfig(), 10);
  QuantPlan plan = HandPlan(m, 8, 8);
  // Block 0 at W4A6, block 1 attention at W3A5, head at W2.
  for (auto& [name, sp] : plan.sites) {
    int bits = 0;
    if (name.rfind("blocks.0.", 0) == 0) bits = name.back() == 'w' ? 4 : 6;
    if (name.rfind("blocks.1.attn", 0) == 0) bits = name.back() == 'w' ? 3 : 5;
    if (name == "head:w") bits = 2;
    if (bits == 0) continue;
    sp.scheme.bits = bits;
    if (name.back() == 'w' && sp.scheme.granularity == Granularity::kPerTensor) {
      const LinearWeights* w = nullptr;
      for (const auto& [layer, lw] : LinearLayers(m))
        if (layer + ":w" == name) w = lw;
      sp.params = MinMaxParams(w->weight.f32(), w->weight.size(), sp.scheme);
    }
  }
  ASSERT_TRUE(SaveQuantizedFile(dir.path("mp.vitq"), m, plan).ok());
  auto q = LoadQuantizedFile(dir.path("mp.vitq"));
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->linear.at("blocks.0.mlp.fc1").scheme.bits, 4);
  EXPECT_EQ(q->linear.at("head").scheme.bits, 2);
  ASSERT_TRUE(ConfigureIsa().ok());
  auto engine = IntegerEngine::Create(*q);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto sim = SimulatedModel::Create(DequantizedModel(*q), q->plan);
  ASSERT_TRUE(sim.ok());
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int batch = 4;
  std::vector<float> x(batch * 3 * 32 * 32), li(batch * 10), ls(batch * 10);
  for (auto& v : x) v = nd(rng);
  (*engine)->Forward(x.data(), batch, li.data());
  (*sim)->Forward(x.data(), batch, ls.data());
  EXPECT_GT(Sqnr(ls.data(), li.data(), batch * 10), 30.0);
  // The float simulation of the engine reproduces it bit for bit at every bit-width.
  auto exact = IntegerEngine::CreateSimulation(*q);
  ASSERT_TRUE(exact.ok()) << exact.status().message();
  std::vector<float> le(li.size());
  (*exact)->Forward(x.data(), batch, le.data());
  EXPECT_EQ(0, std::memcmp(le.data(), li.data(), li.size() * sizeof(float)));
}

// Rewrites a safetensors file through `edit` (tensors by name, metadata).
void Rewrite(const std::string& in, const std::string& out,
             const std::function<void(std::map<std::string, Tensor>*,
                                      std::map<std::string, std::string>*)>& edit) {
  auto f = SafetensorsFile::Open(in);
  ASSERT_TRUE(f.ok());
  std::map<std::string, Tensor> tensors;
  for (const auto& e : f->entries()) {
    Tensor t(e.dtype, e.shape);
    if (e.num_bytes) std::memcpy(t.data<uint8_t>(), e.data, e.num_bytes);
    tensors.emplace(e.name, std::move(t));
  }
  std::map<std::string, std::string> meta = f->metadata();
  edit(&tensors, &meta);
  std::vector<NamedTensor> list;
  for (const auto& [name, t] : tensors) list.push_back({name, &t});
  ASSERT_TRUE(WriteSafetensors(out, list, meta).ok());
}

void ReplaceOnce(std::string* s, const std::string& from, const std::string& to) {
  size_t pos = s->find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  s->replace(pos, from.size(), to);
}

TEST(QuantizedFile, TamperedFilesAreRefusedWithTheReason) {
  testing::TempDir dir;
  ViTModel m = RandomModel(testing::SmallConfig(), 11);
  const std::string good = dir.path("good.vitq");
  ASSERT_TRUE(SaveQuantizedFile(good, m, HandPlan(m, 4, 8)).ok());
  auto expect_error = [&](const std::string& name, const std::string& needle,
                          const std::function<void(std::map<std::string, Tensor>*,
                                                   std::map<std::string, std::string>*)>& edit) {
    const std::string path = dir.path(name);
    Rewrite(good, path, edit);
    auto q = LoadQuantizedFile(path);
    ASSERT_FALSE(q.ok()) << name;
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(q.status().message().find(needle), std::string::npos)
        << name << ": " << q.status().message();
    EXPECT_NE(q.status().message().find(name), std::string::npos) << q.status().message();
  };
  expect_error("version.vitq", "version 7 is not supported",
               [](auto*, auto* meta) { (*meta)["vitq.version"] = "7"; });
  expect_error("shape.vitq", "blocks.0.mlp.fc2.weight", [](auto* t, auto*) {
    (*t)["blocks.0.mlp.fc2.weight"] = Tensor(DType::kU8, {32, 5});
  });
  expect_error("dtype.vitq", "blocks.1.attn.qkv.weight", [](auto* t, auto*) {
    Tensor& w = (*t)["blocks.1.attn.qkv.weight"];
    w = Tensor(DType::kI8, {w.dim(0), w.dim(1) * 2});
  });
  expect_error("missing.vitq", "head.weight_scale",
               [](auto* t, auto*) { t->erase("head.weight_scale"); });
  expect_error("scale-nan.vitq", "tensors and plan disagree", [](auto* t, auto*) {
    (*t)["blocks.0.attn.proj.weight_scale"].f32()[0] = std::nanf("");
  });
  expect_error("scale-other.vitq", "tensors and plan disagree", [](auto* t, auto*) {
    (*t)["head.weight_scale"].f32()[0] *= 2.0f;
  });
  expect_error("plan-zero.vitq", "blocks.0.mlp.fc1:in", [](auto*, auto* meta) {
    std::string& plan = (*meta)["vitq.plan"];
    size_t site = plan.find("\"blocks.0.mlp.fc1:in\"");
    size_t open = plan.find('[', plan.find("\"scale\"", site));
    plan.replace(open, plan.find(']', open) - open + 1, "[0.0]");
  });
  expect_error("bias-nan.vitq", "not finite", [](auto* t, auto*) {
    (*t)["blocks.1.mlp.fc2.bias"].f32()[3] = std::nanf("");
  });
  expect_error("plan-site.vitq", "blocks.7.attn.qkv:w", [](auto*, auto* meta) {
    ReplaceOnce(&(*meta)["vitq.plan"], "\"blocks.1.attn.qkv:w\"", "\"blocks.7.attn.qkv:w\"");
  });
  // A truncated file.
  std::string bytes = testing::ReadText(good);
  testing::WriteText(dir.path("trunc.vitq"), bytes.substr(0, bytes.size() * 2 / 3));
  auto t = LoadQuantizedFile(dir.path("trunc.vitq"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("trunc.vitq"), std::string::npos) << t.status().message();
}

TEST(IntegerPlan, UnsupportedGridsAreNamed) {
  ViTModel m = RandomModel(testing::SmallConfig(), 12);
  QuantPlan plan = HandPlan(m, 8, 8);
  EXPECT_TRUE(CheckIntegerPlan(plan, m.spec.config).ok());
  QuantPlan asym = plan;
  asym.sites["blocks.1.attn.pv:a"].scheme.symmetric = false;
  Status s = CheckIntegerPlan(asym, m.spec.config);
  EXPECT_NE(s.message().find("blocks.1.attn.pv:a"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--simulate"), std::string::npos) << s.message();
  QuantPlan partial = plan;
  partial.sites.erase("head:in");
  EXPECT_NE(CheckIntegerPlan(partial, m.spec.config).message().find("head:in"),
            std::string::npos);
}

}  // namespace
}  // namespace vitq
