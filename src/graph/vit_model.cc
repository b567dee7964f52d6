// Loading, random initialization and saving of float ViT weights (graph stage).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <nlohmann/json.hpp>
#include <random>

#include "vitq/model.h"
#include "vitq/safetensors.h"

namespace vitq {
namespace fs = std::filesystem;

int64_t ViTModel::NumParams() const {
  int64_t n = 0;
  for (const auto& [name, t] : TimmStateDict(*this)) n += t->size();
  return n;
}

std::vector<std::pair<std::string, const Tensor*>> TimmStateDict(const ViTModel& model) {
  const ViTConfig& c = model.spec.config;
  const ViTWeights& w = model.weights;
  std::vector<std::pair<std::string, const Tensor*>> out;
  out.push_back({"cls_token", &w.cls_token});
  if (c.dist_token) out.push_back({"dist_token", &w.dist_token});
  out.push_back({"pos_embed", &w.pos_embed});
  out.push_back({"patch_embed.proj.weight", &w.patch_embed.weight});
  out.push_back({"patch_embed.proj.bias", &w.patch_embed.bias});
  for (int i = 0; i < c.depth; ++i) {
    const BlockWeights& b = w.blocks[i];
    std::string p = "blocks." + std::to_string(i) + ".";
    out.push_back({p + "norm1.weight", &b.norm1_weight});
    out.push_back({p + "norm1.bias", &b.norm1_bias});
    out.push_back({p + "attn.qkv.weight", &b.qkv.weight});
    if (c.qkv_bias) out.push_back({p + "attn.qkv.bias", &b.qkv.bias});
    out.push_back({p + "attn.proj.weight", &b.proj.weight});
    out.push_back({p + "attn.proj.bias", &b.proj.bias});
    out.push_back({p + "norm2.weight", &b.norm2_weight});
    out.push_back({p + "norm2.bias", &b.norm2_bias});
    out.push_back({p + "mlp.fc1.weight", &b.fc1.weight});
    out.push_back({p + "mlp.fc1.bias", &b.fc1.bias});
    out.push_back({p + "mlp.fc2.weight", &b.fc2.weight});
    out.push_back({p + "mlp.fc2.bias", &b.fc2.bias});
  }
  out.push_back({"norm.weight", &w.norm_weight});
  out.push_back({"norm.bias", &w.norm_bias});
  out.push_back({"head.weight", &w.head.weight});
  out.push_back({"head.bias", &w.head.bias});
  if (c.head_dist) {
    out.push_back({"head_dist.weight", &w.head_dist.weight});
    out.push_back({"head_dist.bias", &w.head_dist.bias});
  }
  return out;
}

namespace {

// Reads one tensor by its timm name with its timm shape; `Source` hides the checkpoint layout.
using Source = std::function<Result<Tensor>(const std::string& timm_name, const Shape& shape)>;

Source TimmSource(const SafetensorsFile& file, const ViTConfig& c,
                  const std::set<std::string>* skip = nullptr) {
  return [&file, c, skip](const std::string& name, const Shape& shape) -> Result<Tensor> {
    if (skip != nullptr && skip->count(name)) return Tensor();
    // timm stores cls/dist tokens as [1, 1, D], pos_embed as [1, T, D], the patch conv as
    // [D, C, p, p]; vitq keeps them flattened.
    Shape stored = shape;
    if (name == "cls_token" || name == "dist_token") stored = {1, 1, shape[0]};
    if (name == "pos_embed") stored = {1, shape[0], shape[1]};
    if (name == "patch_embed.proj.weight")
      stored = {shape[0], c.in_chans, c.patch_size, c.patch_size};
    VITQ_ASSIGN_OR_RETURN(Tensor t, file.ReadF32(name, stored));
    t.Reshape(shape);
    return t;
  };
}

Source HfSource(const SafetensorsFile& file, const ViTConfig& c, const std::string& prefix) {
  return [&file, c, prefix](const std::string& name, const Shape& shape) -> Result<Tensor> {
    auto read = [&](const std::string& hf, const Shape& s) { return file.ReadF32(hf, s); };
    const int64_t d = c.embed_dim;
    if (name == "cls_token" || name == "dist_token") {
      std::string hf =
          prefix + (name == "cls_token" ? "embeddings.cls_token" : "embeddings.distillation_token");
      VITQ_ASSIGN_OR_RETURN(Tensor t, read(hf, {1, 1, d}));
      t.Reshape(shape);
      return t;
    }
    if (name == "pos_embed") {
      VITQ_ASSIGN_OR_RETURN(Tensor t,
                            read(prefix + "embeddings.position_embeddings", {1, shape[0], d}));
      t.Reshape(shape);
      return t;
    }
    if (name.rfind("patch_embed.proj.", 0) == 0) {
      std::string hf = prefix + "embeddings.patch_embeddings.projection." + name.substr(17);
      if (name.back() == 't') {  // weight
        VITQ_ASSIGN_OR_RETURN(Tensor t, read(hf, {d, c.in_chans, c.patch_size, c.patch_size}));
        t.Reshape(shape);
        return t;
      }
      return read(hf, shape);
    }
    if (name.rfind("blocks.", 0) == 0) {
      size_t dot = name.find('.', 7);
      std::string idx = name.substr(7, dot - 7), rest = name.substr(dot + 1);
      std::string layer = prefix + "encoder.layer." + idx + ".";
      static const std::pair<const char*, const char*> kMap[] = {
          {"norm1.", "layernorm_before."},
          {"norm2.", "layernorm_after."},
          {"attn.proj.", "attention.output.dense."},
          {"mlp.fc1.", "intermediate.dense."},
          {"mlp.fc2.", "output.dense."}};
      for (const auto& [timm, hf] : kMap) {
        if (rest.rfind(timm, 0) == 0)
          return read(layer + hf + rest.substr(std::strlen(timm)), shape);
      }
      if (rest == "attn.qkv.weight" || rest == "attn.qkv.bias") {
        bool is_weight = rest.back() == 't';
        Tensor out = Tensor::F32(shape);
        const char* parts[] = {"query", "key", "value"};
        int64_t chunk = out.size() / 3;
        for (int p = 0; p < 3; ++p) {
          std::string hf =
              layer + "attention.attention." + parts[p] + (is_weight ? ".weight" : ".bias");
          VITQ_ASSIGN_OR_RETURN(Tensor t, read(hf, is_weight ? Shape{d, d} : Shape{d}));
          std::memcpy(out.f32() + p * chunk, t.f32(), chunk * sizeof(float));
        }
        return out;
      }
    }
    if (name == "norm.weight" || name == "norm.bias")
      return read(prefix + "layernorm." + name.substr(5), shape);
    if (name.rfind("head.", 0) == 0) {
      std::string hf = c.head_dist ? "cls_classifier." : "classifier.";
      return read(hf + name.substr(5), shape);
    }
    if (name.rfind("head_dist.", 0) == 0)
      return read("distillation_classifier." + name.substr(10), shape);
    return Status::Internal("no Hugging Face name for '" + name + "'");
  };
}

Status ReadLinear(const Source& src, const std::string& name, int64_t out, int64_t in, bool bias,
                  LinearWeights* w) {
  VITQ_ASSIGN_OR_RETURN(w->weight, src(name + ".weight", {out, in}));
  if (bias) {
    VITQ_ASSIGN_OR_RETURN(w->bias, src(name + ".bias", {out}));
  } else {
    w->bias = Tensor::F32({out});
  }
  return Status::Ok();
}

Status ReadWeights(const Source& src, const ViTConfig& c, ViTWeights* w) {
  const int64_t d = c.embed_dim, h = c.mlp_hidden;
  VITQ_RETURN_IF_ERROR(
      ReadLinear(src, "patch_embed.proj", d, c.patch_dim(), true, &w->patch_embed));
  VITQ_ASSIGN_OR_RETURN(w->cls_token, src("cls_token", {d}));
  if (c.dist_token) {
    VITQ_ASSIGN_OR_RETURN(w->dist_token, src("dist_token", {d}));
  }
  VITQ_ASSIGN_OR_RETURN(w->pos_embed, src("pos_embed", {c.num_tokens(), d}));
  w->blocks.resize(c.depth);
  for (int i = 0; i < c.depth; ++i) {
    BlockWeights& b = w->blocks[i];
    std::string p = "blocks." + std::to_string(i) + ".";
    VITQ_ASSIGN_OR_RETURN(b.norm1_weight, src(p + "norm1.weight", {d}));
    VITQ_ASSIGN_OR_RETURN(b.norm1_bias, src(p + "norm1.bias", {d}));
    VITQ_RETURN_IF_ERROR(ReadLinear(src, p + "attn.qkv", 3 * d, d, c.qkv_bias, &b.qkv));
    VITQ_RETURN_IF_ERROR(ReadLinear(src, p + "attn.proj", d, d, true, &b.proj));
    VITQ_ASSIGN_OR_RETURN(b.norm2_weight, src(p + "norm2.weight", {d}));
    VITQ_ASSIGN_OR_RETURN(b.norm2_bias, src(p + "norm2.bias", {d}));
    VITQ_RETURN_IF_ERROR(ReadLinear(src, p + "mlp.fc1", h, d, true, &b.fc1));
    VITQ_RETURN_IF_ERROR(ReadLinear(src, p + "mlp.fc2", d, h, true, &b.fc2));
  }
  VITQ_ASSIGN_OR_RETURN(w->norm_weight, src("norm.weight", {d}));
  VITQ_ASSIGN_OR_RETURN(w->norm_bias, src("norm.bias", {d}));
  VITQ_RETURN_IF_ERROR(ReadLinear(src, "head", c.num_classes, d, true, &w->head));
  if (c.head_dist)
    VITQ_RETURN_IF_ERROR(ReadLinear(src, "head_dist", c.num_classes, d, true, &w->head_dist));
  return Status::Ok();
}

}  // namespace

Result<ViTWeights> ReadTimmWeights(const SafetensorsFile& file, const ViTConfig& config,
                                   const std::set<std::string>& skip) {
  ViTWeights w;
  VITQ_RETURN_IF_ERROR(ReadWeights(TimmSource(file, config, &skip), config, &w));
  return w;
}

Result<ViTModel> LoadModel(const std::string& model_path) {
  ViTModel model;
  VITQ_ASSIGN_OR_RETURN(model.spec, LoadModelSpec(model_path));
  VITQ_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(model.spec.weights_path));
  const ViTConfig& c = model.spec.config;
  if (model.spec.layout == "timm") {
    VITQ_RETURN_IF_ERROR(ReadWeights(TimmSource(file, c), c, &model.weights));
  } else {
    std::string prefix = c.architecture.rfind("ViT", 0) == 0 ? "vit." : "deit.";
    VITQ_RETURN_IF_ERROR(ReadWeights(HfSource(file, c, prefix), c, &model.weights));
  }
  return model;
}

ViTModel RandomModel(const ViTConfig& c, uint64_t seed) {
  ViTModel m;
  m.spec.config = c;
  m.spec.layout = "timm";
  m.spec.preprocess.crop_height = m.spec.preprocess.crop_width = c.img_size;
  m.spec.preprocess.resize_shorter = static_cast<int>(std::floor(c.img_size / 0.875));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  auto trunc = [&](Shape s) {
    Tensor t = Tensor::F32(std::move(s));
    for (int64_t i = 0; i < t.size(); ++i) {
      float v;
      do v = normal(rng);
      while (std::fabs(v) > 0.04f);
      t.f32()[i] = v;
    }
    return t;
  };
  auto ones = [](int64_t n) {
    Tensor t = Tensor::F32({n});
    for (int64_t i = 0; i < n; ++i) t.f32()[i] = 1.0f;
    return t;
  };
  auto linear = [&](int64_t out, int64_t in) {
    return LinearWeights{trunc({out, in}), Tensor::F32({out})};
  };
  const int64_t d = c.embed_dim;
  ViTWeights& w = m.weights;
  w.patch_embed = linear(d, c.patch_dim());
  w.cls_token = trunc({d});
  if (c.dist_token) w.dist_token = trunc({d});
  w.pos_embed = trunc({c.num_tokens(), d});
  w.blocks.resize(c.depth);
  for (auto& b : w.blocks) {
    b.norm1_weight = ones(d);
    b.norm1_bias = Tensor::F32({d});
    b.qkv = linear(3 * d, d);
    b.proj = linear(d, d);
    b.norm2_weight = ones(d);
    b.norm2_bias = Tensor::F32({d});
    b.fc1 = linear(c.mlp_hidden, d);
    b.fc2 = linear(d, c.mlp_hidden);
  }
  w.norm_weight = ones(d);
  w.norm_bias = Tensor::F32({d});
  w.head = linear(c.num_classes, d);
  if (c.head_dist) w.head_dist = linear(c.num_classes, d);
  return m;
}

std::vector<std::pair<std::string, Tensor>> TimmCheckpointTensors(const ViTModel& model) {
  const ViTConfig& c = model.spec.config;
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, t] : TimmStateDict(model)) {
    Tensor copy = t->Clone();
    if (name == "cls_token" || name == "dist_token") copy.Reshape({1, 1, t->dim(0)});
    if (name == "pos_embed") copy.Reshape({1, t->dim(0), t->dim(1)});
    if (name == "patch_embed.proj.weight")
      copy.Reshape({t->dim(0), c.in_chans, c.patch_size, c.patch_size});
    out.emplace_back(name, std::move(copy));
  }
  return out;
}

Status SaveTimmCheckpoint(const ViTModel& model, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::InvalidInput("cannot create directory '" + dir + "': " + ec.message());
  const ViTConfig& c = model.spec.config;
  const PreprocessConfig& p = model.spec.preprocess;
  nlohmann::ordered_json j;
  j["architecture"] = c.architecture;
  j["num_classes"] = c.num_classes;
  j["num_features"] = c.embed_dim;
  j["global_pool"] = "token";
  j["model_args"] = {{"img_size", c.img_size},
                     {"patch_size", c.patch_size},
                     {"in_chans", c.in_chans},
                     {"embed_dim", c.embed_dim},
                     {"depth", c.depth},
                     {"num_heads", c.num_heads},
                     {"mlp_ratio", static_cast<double>(c.mlp_hidden) / c.embed_dim},
                     {"qkv_bias", c.qkv_bias},
                     {"num_classes", c.num_classes},
                     {"distilled", c.dist_token}};
  double crop_pct = p.resize_shorter > 0 ? static_cast<double>(c.img_size) / p.resize_shorter : 1.0;
  j["pretrained_cfg"] = {{"input_size", {c.in_chans, c.img_size, c.img_size}},
                         {"interpolation", InterpolationName(p.interpolation)},
                         {"crop_pct", crop_pct},
                         {"crop_mode", "center"},
                         {"mean", {p.mean[0], p.mean[1], p.mean[2]}},
                         {"std", {p.std[0], p.std[1], p.std[2]}},
                         {"num_classes", c.num_classes}};
  if (!model.spec.class_names.empty()) j["label_names"] = model.spec.class_names;
  std::vector<std::pair<std::string, Tensor>> stored = TimmCheckpointTensors(model);
  std::vector<NamedTensor> tensors;
  for (const auto& [name, t] : stored) tensors.push_back({name, &t});
  VITQ_RETURN_IF_ERROR(WriteSafetensors((fs::path(dir) / "model.safetensors").string(), tensors,
                                        {{"format", "pt"}}));
  return WriteFileAtomic((fs::path(dir) / "config.json").string(), j.dump(2) + "\n");
}

}  // namespace vitq
