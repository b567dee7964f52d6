// Tests of model loading (timm and Hugging Face layouts, distilled DeiT), checkpoint errors, and
// the forward pass' observer hooks.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vitq/engine.h"
#include "vitq/model.h"
#include "vitq/safetensors.h"

namespace vitq {
namespace {
using testing::RepoPath;
using testing::TempDir;
using testing::WriteText;

// Writes `m` in Hugging Face transformers' layout: renamed tensors, q/k/v split, HF config and
// preprocessor config (same preprocessing numbers as the model's).
void SaveAsHuggingFace(const ViTModel& m, const std::string& dir) {
  const ViTConfig& c = m.spec.config;
  const bool deit = c.dist_token;
  const std::string p = deit ? "deit." : "vit.";
  std::vector<Tensor> store;
  store.reserve(400);
  std::vector<NamedTensor> tensors;
  auto add = [&](const std::string& name, const Tensor& t, Shape shape) {
    store.push_back(t.Clone());
    store.back().Reshape(std::move(shape));
    tensors.push_back({name, &store.back()});
  };
  auto slice = [&](const std::string& name, const Tensor& t, int part, Shape shape) {
    Tensor s = Tensor::F32(shape);
    std::memcpy(s.f32(), t.f32() + part * s.size(), s.size() * sizeof(float));
    store.push_back(std::move(s));
    tensors.push_back({name, &store.back()});
  };
  const int64_t d = c.embed_dim;
  const ViTWeights& w = m.weights;
  add(p + "embeddings.cls_token", w.cls_token, {1, 1, d});
  if (deit) add(p + "embeddings.distillation_token", w.dist_token, {1, 1, d});
  add(p + "embeddings.position_embeddings", w.pos_embed, {1, c.num_tokens(), d});
  add(p + "embeddings.patch_embeddings.projection.weight", w.patch_embed.weight,
      {d, c.in_chans, c.patch_size, c.patch_size});
  add(p + "embeddings.patch_embeddings.projection.bias", w.patch_embed.bias, {d});
  for (int i = 0; i < c.depth; ++i) {
    const BlockWeights& b = w.blocks[i];
    std::string l = p + "encoder.layer." + std::to_string(i) + ".";
    add(l + "layernorm_before.weight", b.norm1_weight, {d});
    add(l + "layernorm_before.bias", b.norm1_bias, {d});
    const char* qkv[] = {"query", "key", "value"};
    for (int k = 0; k < 3; ++k) {
      slice(l + "attention.attention." + qkv[k] + ".weight", b.qkv.weight, k, {d, d});
      slice(l + "attention.attention." + qkv[k] + ".bias", b.qkv.bias, k, {d});
    }
    add(l + "attention.output.dense.weight", b.proj.weight, b.proj.weight.shape());
    add(l + "attention.output.dense.bias", b.proj.bias, {d});
    add(l + "layernorm_after.weight", b.norm2_weight, {d});
    add(l + "layernorm_after.bias", b.norm2_bias, {d});
    add(l + "intermediate.dense.weight", b.fc1.weight, b.fc1.weight.shape());
    add(l + "intermediate.dense.bias", b.fc1.bias, b.fc1.bias.shape());
    add(l + "output.dense.weight", b.fc2.weight, b.fc2.weight.shape());
    add(l + "output.dense.bias", b.fc2.bias, b.fc2.bias.shape());
  }
  add(p + "layernorm.weight", w.norm_weight, {d});
  add(p + "layernorm.bias", w.norm_bias, {d});
  std::string head = c.head_dist ? "cls_classifier." : "classifier.";
  add(head + "weight", w.head.weight, w.head.weight.shape());
  add(head + "bias", w.head.bias, w.head.bias.shape());
  if (c.head_dist) {
    add("distillation_classifier.weight", w.head_dist.weight, w.head_dist.weight.shape());
    add("distillation_classifier.bias", w.head_dist.bias, w.head_dist.bias.shape());
  }
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
  nlohmann::json cfg = {{"model_type", deit ? "deit" : "vit"},
                        {"architectures",
                         {deit ? (c.head_dist ? "DeiTForImageClassificationWithTeacher"
                                              : "DeiTForImageClassification")
                               : "ViTForImageClassification"}},
                        {"hidden_size", c.embed_dim},
                        {"num_hidden_layers", c.depth},
                        {"num_attention_heads", c.num_heads},
                        {"intermediate_size", c.mlp_hidden},
                        {"layer_norm_eps", c.ln_eps},
                        {"image_size", c.img_size},
                        {"patch_size", c.patch_size},
                        {"num_channels", c.in_chans},
                        {"hidden_act", "gelu"},
                        {"qkv_bias", true}};
  nlohmann::json id2label = nlohmann::json::object();
  for (int i = 0; i < c.num_classes; ++i) id2label[std::to_string(i)] = "class" + std::to_string(i);
  cfg["id2label"] = id2label;
  WriteText(dir + "/config.json", cfg.dump(2));
  const PreprocessConfig& pp = m.spec.preprocess;
  nlohmann::json pre = {{"do_resize", true},
                        {"size", {{"shortest_edge", pp.resize_shorter}}},
                        {"resample", 3},
                        {"do_center_crop", true},
                        {"crop_size", {{"height", pp.crop_height}, {"width", pp.crop_width}}},
                        {"do_normalize", true},
                        {"image_mean", {pp.mean[0], pp.mean[1], pp.mean[2]}},
                        {"image_std", {pp.std[0], pp.std[1], pp.std[2]}}};
  WriteText(dir + "/preprocessor_config.json", pre.dump(2));
}

std::vector<float> RandomInputs(const ViTConfig& c, int batch) {
  std::vector<float> x(static_cast<size_t>(batch) * c.in_chans * c.img_size * c.img_size);
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  for (auto& v : x) v = n(rng);
  return x;
}

std::vector<float> RunModel(const ViTModel& m, const std::vector<float>& x, int batch,
                            Observer* o = nullptr) {
  Engine e(m);
  std::vector<float> logits(static_cast<size_t>(batch) * m.spec.config.num_classes);
  e.Forward(x.data(), batch, logits.data(), o);
  return logits;
}

TEST(HuggingFaceLayout, DeitTinyCopyGivesIdenticalLogits) {
  auto timm = LoadModel(RepoPath("models/deit-tiny"));
  ASSERT_TRUE(timm.ok());
  TempDir dir;
  SaveAsHuggingFace(timm.value(), dir.path("hf"));
  auto hf = LoadModel(dir.path("hf"));
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  EXPECT_EQ(hf->spec.layout, "huggingface");
  EXPECT_EQ(hf->spec.class_names[7], "class7");
  EXPECT_EQ(hf->spec.preprocess.resize_shorter, 256);
  EXPECT_EQ(hf->NumParams(), timm->NumParams());
  auto x = testing::ReadF32File(
      RepoPath("data/imagenet-samples/reference-deit-tiny/inputs_8x3x224x224_f32.bin"));
  auto a = RunModel(timm.value(), x, 8), b = RunModel(hf.value(), x, 8);
  EXPECT_EQ(testing::MaxAbsDiff(a.data(), b.data(), a.size()), 0.0);
}

TEST(HuggingFaceLayout, DeitWithTeacherMatchesTimmDistilled) {
  ViTModel m = RandomModel(testing::SmallConfig(/*distilled=*/true), 5);
  TempDir dir;
  ASSERT_TRUE(SaveTimmCheckpoint(m, dir.path("timm")).ok());
  SaveAsHuggingFace(m, dir.path("hf"));
  auto timm = LoadModel(dir.path("timm"));
  auto hf = LoadModel(dir.path("hf"));
  ASSERT_TRUE(timm.ok()) << timm.status().message();
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  EXPECT_TRUE(hf->spec.config.head_dist);
  auto x = RandomInputs(m.spec.config, 3);
  auto a = RunModel(timm.value(), x, 3), b = RunModel(hf.value(), x, 3);
  EXPECT_EQ(testing::MaxAbsDiff(a.data(), b.data(), a.size()), 0.0);
}

// Records every observed site with its shape; optionally captures named tensors.
class Recorder : public Observer {
 public:
  bool Wants(const Site&) const override { return true; }
  void Observe(const Site& site, TensorView t) override {
    shapes[site.Name()] = t.shape;
    if (site.layer == SiteLayer::kHead || site.layer == SiteLayer::kHeadDist) {
      if (site.role == SiteRole::kOut)
        outputs[site.Name()] = std::vector<float>(t.data, t.data + t.size());
    }
  }
  std::map<std::string, Shape> shapes;
  std::map<std::string, std::vector<float>> outputs;
};

TEST(DistilledDeit, LogitsAverageBothHeads) {
  TempDir dir;
  ViTConfig c = ConfigFromTimmName("deit_tiny_distilled_patch16_224").value();
  c.depth = 2;  // keep it fast; the token/heads logic is the same
  ViTModel m = RandomModel(c, 11);
  ASSERT_TRUE(SaveTimmCheckpoint(m, dir.path("m")).ok());
  auto loaded = LoadModel(dir.path("m"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->spec.config.num_tokens(), 198);
  auto x = RandomInputs(c, 2);
  Recorder rec;
  auto logits = RunModel(loaded.value(), x, 2, &rec);
  const auto& h = rec.outputs["head:out"];
  const auto& hd = rec.outputs["head_dist:out"];
  ASSERT_EQ(h.size(), 2000u);
  ASSERT_EQ(hd.size(), 2000u);
  for (size_t i = 0; i < h.size(); ++i) ASSERT_FLOAT_EQ(logits[i], 0.5f * (h[i] + hd[i]));
  EXPECT_GT(testing::MaxAbsDiff(h.data(), hd.data(), h.size()), 0.0);
}

TEST(Observer, EverySiteIsOfferedWithItsShapeAndObservingChangesNothing) {
  ViTModel m = RandomModel(testing::SmallConfig(), 2);
  const ViTConfig& c = m.spec.config;
  auto x = RandomInputs(c, 3);
  auto plain = RunModel(m, x, 3);
  Recorder rec;
  auto observed = RunModel(m, x, 3, &rec);
  EXPECT_LE(testing::MaxAbsDiff(plain.data(), observed.data(), plain.size()), 1e-5);
  // patch_embed, head: in/out; per block qkv/proj/fc1/fc2 in/out + qk a/b + pv a/b.
  EXPECT_EQ(rec.shapes.size(), 4u + c.depth * 12u);
  const int64_t t = c.num_tokens();
  EXPECT_EQ(rec.shapes["patch_embed.proj:in"], (Shape{3, c.num_patches(), c.patch_dim()}));
  EXPECT_EQ(rec.shapes["blocks.1.attn.qkv:out"], (Shape{3, t, 3 * c.embed_dim}));
  EXPECT_EQ(rec.shapes["blocks.0.attn.qk:a"], (Shape{3, c.num_heads, t, c.head_dim()}));
  EXPECT_EQ(rec.shapes["blocks.0.attn.pv:a"], (Shape{3, c.num_heads, t, t}));
  EXPECT_EQ(rec.shapes["blocks.1.mlp.fc2:in"], (Shape{3, t, c.mlp_hidden}));
  EXPECT_EQ(rec.shapes["head:in"], (Shape{3, c.embed_dim}));
}

// An observer may rewrite a site in place: zeroing fc2's input removes the MLP's contribution
// except its bias, which a hand computation confirms through the residual stream.
class ZeroMlp : public Observer {
 public:
  bool Wants(const Site& s) const override {
    return s.layer == SiteLayer::kFc2 && s.role == SiteRole::kIn;
  }
  void Observe(const Site&, TensorView t) override { std::fill(t.data, t.data + t.size(), 0.0f); }
};

TEST(Observer, InPlaceModificationTakesEffect) {
  ViTModel m = RandomModel(testing::SmallConfig(), 4);
  ViTModel no_mlp = RandomModel(testing::SmallConfig(), 4);
  for (auto& b : no_mlp.weights.blocks)
    std::fill(b.fc2.weight.f32(), b.fc2.weight.f32() + b.fc2.weight.size(), 0.0f);
  auto x = RandomInputs(m.spec.config, 2);
  ZeroMlp zero;
  auto a = RunModel(m, x, 2, &zero), b = RunModel(no_mlp, x, 2);
  EXPECT_LE(testing::MaxAbsDiff(a.data(), b.data(), a.size()), 1e-5);
}

class CheckpointErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    ViTModel m = RandomModel(testing::SmallConfig(), 1);
    ASSERT_TRUE(SaveTimmCheckpoint(m, dir_.path("m")).ok());
    model_ = std::move(m);
  }
  // Rewrites the checkpoint with `edit` applied to the tensor list, then loads it.
  Status LoadEdited(
      const std::function<void(std::vector<NamedTensor>*, std::vector<Tensor>*)>& edit) {
    auto file = SafetensorsFile::Open(dir_.path("m/model.safetensors"));
    EXPECT_TRUE(file.ok());
    std::vector<Tensor> store;
    store.reserve(200);
    std::vector<NamedTensor> tensors;
    for (const auto& e : file->entries()) {
      store.push_back(file->ReadF32(e.name).value());
      tensors.push_back({e.name, &store.back()});
    }
    edit(&tensors, &store);
    EXPECT_TRUE(WriteSafetensors(dir_.path("m/model.safetensors"), tensors).ok());
    return LoadModel(dir_.path("m")).status();
  }
  TempDir dir_;
  ViTModel model_;
};

TEST_F(CheckpointErrors, MissingTensor) {
  Status s = LoadEdited([](auto* t, auto*) {
    t->erase(std::remove_if(t->begin(), t->end(),
                            [](const NamedTensor& n) { return n.name == "blocks.1.mlp.fc1.bias"; }),
             t->end());
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("missing tensor 'blocks.1.mlp.fc1.bias'"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("model.safetensors"), std::string::npos);
}

TEST_F(CheckpointErrors, WrongShape) {
  Status s = LoadEdited([](auto* t, auto* store) {
    for (auto& n : *t) {
      if (n.name == "blocks.0.attn.proj.weight") {
        store->push_back(Tensor::F32({32, 31}));
        n.tensor = &store->back();
      }
    }
  });
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'blocks.0.attn.proj.weight' has shape [32, 31], expected [32, 32]"),
            std::string::npos)
      << s.message();
}

TEST_F(CheckpointErrors, WrongDtype) {
  Status s = LoadEdited([](auto* t, auto* store) {
    for (auto& n : *t) {
      if (n.name == "norm.weight") {
        store->push_back(Tensor(DType::kI32, {32}));
        n.tensor = &store->back();
      }
    }
  });
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'norm.weight' has dtype I32"), std::string::npos) << s.message();
}

TEST_F(CheckpointErrors, HalfPrecisionCheckpointLoads) {
  Status s = LoadEdited([](auto* t, auto* store) {
    for (auto& n : *t) {
      Tensor h(DType::kF16, n.tensor->shape());
      for (int64_t i = 0; i < h.size(); ++i)
        h.data<uint16_t>()[i] = FloatToHalf(n.tensor->f32()[i]);
      store->push_back(std::move(h));
      n.tensor = &store->back();
    }
  });
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(SaveTimmCheckpoint, RoundTrip) {
  TempDir dir;
  ViTModel m = RandomModel(testing::SmallConfig(), 9);
  ASSERT_TRUE(SaveTimmCheckpoint(m, dir.path("m")).ok());
  auto loaded = LoadModel(dir.path("m"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto a = TimmStateDict(m), b = TimmStateDict(loaded.value());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second->size(), b[i].second->size());
    EXPECT_EQ(std::memcmp(a[i].second->f32(), b[i].second->f32(), a[i].second->num_bytes()), 0)
        << a[i].first;
  }
}

}  // namespace
}  // namespace vitq
