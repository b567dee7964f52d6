// The .vitq file: packing, round trip, sizes, mixed bit-widths, and tampered files.
#include <gtest/gtest.h>

#include <algorithm>
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

// testing::HandPlan with a corrected head bias.
QuantPlan HandPlan(const ViTModel& m, int wbits, int abits) {
  QuantPlan p = testing::HandPlan(m, wbits, abits);
  p.biases["head"] = std::vector<float>(m.spec.config.num_classes, 0.25f);
  return p;
}

// The scalar reference of the version-3 layout, one bit at a time: bit i of a row's bit string
// is bit i % 8 of byte i / 8; value j takes bits [j * bits, (j + 1) * bits), low bit first.
std::vector<uint8_t> ReferencePack(const std::vector<int8_t>& q, int64_t rows, int64_t cols,
                                   int bits) {
  const int64_t row_bytes = (cols * bits + 7) / 8;
  std::vector<uint8_t> out(rows * row_bytes, 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      for (int b = 0; b < bits; ++b) {
        const int bit = (static_cast<uint8_t>(q[r * cols + c]) >> b) & 1;
        const int64_t i = c * bits + b;
        out[r * row_bytes + i / 8] |= static_cast<uint8_t>(bit << (i % 8));
      }
    }
  }
  return out;
}

TEST(Packing, MatchesTheScalarReferenceAtEveryBitWidthAndOddSizes) {
  std::mt19937 rng(5);
  for (int bits = 2; bits <= 8; ++bits) {
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
             {1, 1}, {3, 37}, {2, 3}, {5, 101}, {4, 64}, {7, 5}}) {
      std::uniform_int_distribution<int> d(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
      std::vector<int8_t> q(rows * cols), back(rows * cols);
      for (auto& v : q) v = static_cast<int8_t>(d(rng));
      q[0] = static_cast<int8_t>(-(1 << (bits - 1)));  // both ends of the grid
      q[rows * cols - 1] = static_cast<int8_t>((1 << (bits - 1)) - 1);
      std::vector<uint8_t> packed = PackWeights(q.data(), rows, cols, bits);
      EXPECT_EQ(PackedRowBytes(cols, bits), (cols * bits + 7) / 8);
      EXPECT_EQ(packed, ReferencePack(q, rows, cols, bits)) << bits << " bits, " << cols;
      UnpackWeights(packed.data(), rows, cols, bits, back.data());
      EXPECT_EQ(back, q) << bits << " bits, " << rows << "x" << cols;
    }
  }
  // Four 6-bit values in three bytes.
  const std::vector<int8_t> four = {1, -1, 31, -32};
  EXPECT_EQ(PackWeights(four.data(), 1, 4, 6), ReferencePack(four, 1, 4, 6));
  EXPECT_EQ(PackWeights(four.data(), 1, 4, 6).size(), 3u);
}

TEST(Packing, ReadsTheVersion2Layout) {
  // Version 2: 3-4 bits two per byte in nibbles, 2 bits four per byte, 5-8 bits one per byte.
  const std::vector<uint8_t> v2_4bit = {0xF1, 0x07};  // 1, -1, 7 (and a zero pad nibble)
  std::vector<int8_t> q(3);
  EXPECT_EQ(PackedRowBytesV2(3, 4), 2);
  UnpackWeightsV2(v2_4bit.data(), 1, 3, 4, q.data());
  EXPECT_EQ(q, (std::vector<int8_t>{1, -1, 7}));
  const std::vector<uint8_t> v2_2bit = {0b10'01'11'00};  // 0, -1, 1, -2
  std::vector<int8_t> q2(4);
  UnpackWeightsV2(v2_2bit.data(), 1, 4, 2, q2.data());
  EXPECT_EQ(q2, (std::vector<int8_t>{0, -1, 1, -2}));
  EXPECT_EQ(PackedRowBytesV2(37, 6), 37);
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
  for (int bits : {8, 7, 6, 5, 4, 3, 2}) {
    auto path = dir.path("w" + std::to_string(bits) + ".vitq");
    ASSERT_TRUE(SaveQuantizedFile(path, m, HandPlan(m, bits, 8)).ok());
    auto q = LoadQuantizedFile(path);
    ASSERT_TRUE(q.ok()) << q.status().message();
    int64_t packed = 0;
    for (const auto& [layer, shape] : LinearShapes(m.spec.config))
      packed += shape[0] * ((shape[1] * bits + 7) / 8);
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

// The model and plan of tests/data/v2-small-mixed.vitq, written by the version-2 writer (commit
// ab42648): one layer at each bit-width 2-8, fc1 per output channel, a corrected head bias.
QuantPlan MixedPlan(const ViTModel& m) {
  QuantPlan p;
  p.method = "hand";
  for (const auto& name : QuantSiteNames(m.spec.config))
    p.sites[name] = {SymmetricScheme(8), {{0.05f}, {0}}};
  const std::map<std::string, int> bits = {{"patch_embed.proj", 8},   {"blocks.0.attn.qkv", 7},
                                           {"blocks.0.attn.proj", 6}, {"blocks.0.mlp.fc1", 5},
                                           {"blocks.0.mlp.fc2", 4},   {"blocks.1.attn.qkv", 3},
                                           {"blocks.1.attn.proj", 2}, {"blocks.1.mlp.fc1", 6},
                                           {"blocks.1.mlp.fc2", 5},   {"head", 7}};
  for (const auto& [layer, w] : LinearLayers(m)) {
    QuantScheme s = SymmetricScheme(bits.at(layer));
    QParams params = MinMaxParams(w->weight.f32(), w->weight.size(), s);
    if (layer.find("fc1") != std::string::npos) {
      s.granularity = Granularity::kPerChannel;
      params = {};
      const int64_t rows = w->weight.dim(0), cols = w->weight.dim(1);
      for (int64_t r = 0; r < rows; ++r) {
        QParams row =
            MinMaxParams(w->weight.f32() + r * cols, cols, SymmetricScheme(bits.at(layer)));
        params.scale.push_back(row.scale[0]);
        params.zero_point.push_back(0);
      }
    }
    p.sites[layer + ":w"] = {s, params};
  }
  p.biases["head"] = std::vector<float>(m.spec.config.num_classes, 0.25f);
  return p;
}

TEST(QuantizedFile, Version2FilesStillLoadAndVersion3PacksEveryBitWidth) {
  testing::TempDir dir;
  auto old = LoadQuantizedFile(testing::RepoPath("tests/data/v2-small-mixed.vitq"));
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->format_version, 2);
  ViTModel m = RandomModel(testing::SmallConfig(), 11);
  const std::string path = dir.path("v3.vitq");
  ASSERT_TRUE(SaveQuantizedFile(path, m, MixedPlan(m)).ok());
  auto now = LoadQuantizedFile(path);
  ASSERT_TRUE(now.ok()) << now.status().message();
  EXPECT_EQ(now->format_version, 3);
  EXPECT_GT(now->checksum_seconds, 0.0);
  EXPECT_LT(fs::file_size(path),
            fs::file_size(testing::RepoPath("tests/data/v2-small-mixed.vitq")));
  for (const auto& [layer, l] : now->linear) {
    const QuantizedLinear& o = old->linear.at(layer);
    EXPECT_EQ(o.scheme.bits, l.scheme.bits) << layer;
    // Both held packed in the version-3 layout; the same integers.
    EXPECT_EQ(o.packed.num_bytes(), l.packed.num_bytes()) << layer;
    EXPECT_EQ(0,
              std::memcmp(o.packed.data<uint8_t>(), l.packed.data<uint8_t>(), l.packed.num_bytes()))
        << layer;
    if (l.scheme.bits < 8) {
      EXPECT_EQ(l.packed.dim(1), (l.cols * l.scheme.bits + 7) / 8) << layer;
    }
  }
  // The integer engine equals its float simulation bit for bit on the packed file, and the
  // version-2 file gives the same logits.
  ASSERT_TRUE(ConfigureIsa().ok());
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int batch = 3;
  std::vector<float> x(batch * 3 * 32 * 32), a(batch * 10), b(batch * 10), c(batch * 10);
  for (auto& v : x) v = nd(rng);
  auto engine = IntegerEngine::Create(*now);
  auto sim = IntegerEngine::CreateSimulation(*now);
  auto engine_v2 = IntegerEngine::Create(*old);
  ASSERT_TRUE(engine.ok() && sim.ok() && engine_v2.ok());
  (*engine)->Forward(x.data(), batch, a.data());
  (*sim)->Forward(x.data(), batch, b.data());
  (*engine_v2)->Forward(x.data(), batch, c.data());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float)));
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
  std::vector<std::pair<const uint8_t*, size_t>> ranges;
  for (const auto& [name, t] : tensors) {
    list.push_back({name, &t});
    ranges.emplace_back(t.data<uint8_t>(), t.num_bytes());
  }
  // A deliberate edit: the checksum is recomputed so that the check under test is reached.
  if (meta.count("vitq.checksum")) meta["vitq.checksum"] = TensorDataChecksum(ranges);
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
  // A 6-bit layer stored one value per byte, or with a row too short for its bits.
  const std::string six = dir.path("six.vitq");
  QuantPlan p6 = HandPlan(m, 4, 8);
  p6.sites["blocks.0.attn.proj:w"].scheme.bits = 6;
  ASSERT_TRUE(SaveQuantizedFile(six, m, p6).ok());
  for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{
           {"six-unpacked.vitq", {32, 32}}, {"six-short.vitq", {32, 23}}}) {
    Rewrite(six, dir.path(name), [&shape = shape](auto* t, auto*) {
      (*t)["blocks.0.attn.proj.weight"] = Tensor(DType::kU8, shape);
    });
    auto q = LoadQuantizedFile(dir.path(name));
    ASSERT_FALSE(q.ok()) << name;
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(q.status().message().find("blocks.0.attn.proj.weight"), std::string::npos)
        << q.status().message();
    EXPECT_NE(q.status().message().find(name), std::string::npos) << q.status().message();
  }
  expect_error("no-checksum.vitq", "vitq.checksum",
               [](auto*, auto* meta) { meta->erase("vitq.checksum"); });
  expect_error("dtype.vitq", "blocks.1.attn.qkv.weight", [](auto* t, auto*) {
    Tensor& w = (*t)["blocks.1.attn.qkv.weight"];
    w = Tensor(DType::kI8, {w.dim(0), w.dim(1) * 2});
  });
  expect_error("missing.vitq", "head.weight_scale",
               [](auto* t, auto*) { t->erase("head.weight_scale"); });
  expect_error("scale-nan.vitq", "tensors and plan disagree", [](auto* t, auto*) {
    (*t)["blocks.0.attn.proj.weight_scale"].f32()[0] = std::nanf("");
  });
  expect_error("scale-other.vitq", "tensors and plan disagree",
               [](auto* t, auto*) { (*t)["head.weight_scale"].f32()[0] *= 2.0f; });
  expect_error("plan-zero.vitq", "blocks.0.mlp.fc1:in", [](auto*, auto* meta) {
    std::string& plan = (*meta)["vitq.plan"];
    size_t site = plan.find("\"blocks.0.mlp.fc1:in\"");
    size_t open = plan.find('[', plan.find("\"scale\"", site));
    plan.replace(open, plan.find(']', open) - open + 1, "[0.0]");
  });
  expect_error("bias-nan.vitq", "not finite",
               [](auto* t, auto*) { (*t)["blocks.1.mlp.fc2.bias"].f32()[3] = std::nanf(""); });
  expect_error("plan-site.vitq", "blocks.7.attn.qkv:w", [](auto*, auto* meta) {
    ReplaceOnce(&(*meta)["vitq.plan"], "\"blocks.1.attn.qkv:w\"", "\"blocks.7.attn.qkv:w\"");
  });
  // One flipped bit in a packed weight: the checksum of the tensor data no longer matches.
  std::string bytes = testing::ReadText(good);
  size_t weight_offset = 0;
  {
    auto f = SafetensorsFile::Open(good);
    ASSERT_TRUE(f.ok());
    const uint8_t* data_start = f->entries()[0].data;
    for (const auto& e : f->entries()) data_start = std::min(data_start, e.data);
    const SafetensorsFile::Entry* w = f->Find("blocks.1.mlp.fc1.weight");
    ASSERT_NE(w, nullptr);
    uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    weight_offset = 8 + header + static_cast<size_t>(w->data - data_start) + 5;
  }
  {
    std::string flipped = bytes;
    flipped[weight_offset] ^= 0x04;
    testing::WriteText(dir.path("flipped.vitq"), flipped);
    auto q = LoadQuantizedFile(dir.path("flipped.vitq"));
    ASSERT_FALSE(q.ok());
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(q.status().message().find("checksum mismatch"), std::string::npos)
        << q.status().message();
    EXPECT_NE(q.status().message().find("flipped.vitq"), std::string::npos);
  }
  // A truncated file.
  testing::WriteText(dir.path("trunc.vitq"), bytes.substr(0, bytes.size() * 2 / 3));
  auto t = LoadQuantizedFile(dir.path("trunc.vitq"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("trunc.vitq"), std::string::npos) << t.status().message();
}

TEST(IntegerPlan, UnsupportedGridsAreNamed) {
  ViTModel m = RandomModel(testing::SmallConfig(), 12);
  QuantPlan plan = HandPlan(m, 8, 8);
  EXPECT_TRUE(CheckIntegerPlan(plan, m.spec.config).ok());
  // A zero-point grid below 8 bits runs (stored as a shifted s8 range); an 8-bit one does not
  // fit s8.
  QuantPlan asym = plan;
  SitePlan& pv = asym.sites["blocks.1.attn.pv:a"];
  pv.scheme.symmetric = pv.scheme.is_signed = false;
  pv.scheme.bits = 6;
  pv.params.zero_point = {10};
  EXPECT_TRUE(CheckIntegerPlan(asym, m.spec.config).ok());
  pv.scheme.bits = 8;
  Status s = CheckIntegerPlan(asym, m.spec.config);
  EXPECT_NE(s.message().find("[-10, 245]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("blocks.1.attn.pv:a"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--simulate"), std::string::npos) << s.message();
  // P on the unsigned 8-bit grid with zero point 0 runs as u8; the same grid on another site
  // (V) does not.
  pv.params.zero_point = {0};
  EXPECT_TRUE(CheckIntegerPlan(asym, m.spec.config).ok());
  asym.sites["blocks.1.attn.pv:b"] = pv;
  Status v = CheckIntegerPlan(asym, m.spec.config);
  EXPECT_NE(v.message().find("blocks.1.attn.pv:b"), std::string::npos) << v.message();
  EXPECT_NE(v.message().find("[0, 255]"), std::string::npos) << v.message();
  // fc2's input on an 8-bit grid with any zero point in range runs (fc1 writes its u8 codes); the
  // same grid on fc1's input (written by LayerNorm as s8) does not.
  QuantPlan fc2 = plan;
  SitePlan& in = fc2.sites["blocks.1.mlp.fc2:in"];
  in.scheme.symmetric = in.scheme.is_signed = false;
  in.params.zero_point = {7};
  EXPECT_TRUE(CheckIntegerPlan(fc2, m.spec.config).ok());
  fc2.sites["blocks.1.mlp.fc1:in"] = in;
  Status f1 = CheckIntegerPlan(fc2, m.spec.config);
  EXPECT_NE(f1.message().find("blocks.1.mlp.fc1:in"), std::string::npos) << f1.message();
  EXPECT_NE(f1.message().find("[-7, 248]"), std::string::npos) << f1.message();
  QuantPlan partial = plan;
  partial.sites.erase("head:in");
  EXPECT_NE(CheckIntegerPlan(partial, m.spec.config).message().find("head:in"), std::string::npos);
}

}  // namespace
}  // namespace vitq
