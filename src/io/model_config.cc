// Parsing of timm hub and Hugging Face transformers configs into ModelSpec (io stage).
#include "vitq/model_config.h"

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

namespace vitq {
namespace fs = std::filesystem;
using nlohmann::json;

const char* InterpolationName(Interpolation interp) {
  switch (interp) {
    case Interpolation::kNearest:
      return "nearest";
    case Interpolation::kBilinear:
      return "bilinear";
    case Interpolation::kBicubic:
      return "bicubic";
  }
  return "?";
}

std::string PreprocessConfig::Describe() const {
  std::ostringstream os;
  if (resize_shorter > 0) {
    os << "resize shorter side to " << resize_shorter;
  } else {
    os << "resize to " << resize_height << "x" << resize_width;
  }
  os << " (" << InterpolationName(interpolation) << "), center crop " << crop_height << "x"
     << crop_width << ", /255, mean [" << mean[0] << ", " << mean[1] << ", " << mean[2]
     << "], std [" << std[0] << ", " << std[1] << ", " << std[2] << "]";
  return os.str();
}

Status ViTConfig::Validate(const std::string& source) const {
  auto bad = [&](const std::string& what) {
    return Status::InvalidInput("config '" + source + "': " + what);
  };
  if (embed_dim <= 0 || depth <= 0 || num_heads <= 0 || mlp_hidden <= 0 || num_classes <= 0 ||
      img_size <= 0 || patch_size <= 0 || in_chans <= 0) {
    return bad("dimensions must be positive (embed_dim " + std::to_string(embed_dim) + ", depth " +
               std::to_string(depth) + ", num_heads " + std::to_string(num_heads) +
               ", mlp hidden " + std::to_string(mlp_hidden) + ", num_classes " +
               std::to_string(num_classes) + ", img_size " + std::to_string(img_size) +
               ", patch_size " + std::to_string(patch_size) + ")");
  }
  if (embed_dim % num_heads != 0) {
    return bad("embed_dim " + std::to_string(embed_dim) + " is not divisible by num_heads " +
               std::to_string(num_heads));
  }
  if (img_size % patch_size != 0) {
    return bad("img_size " + std::to_string(img_size) + " is not a multiple of patch_size " +
               std::to_string(patch_size));
  }
  if (!(ln_eps > 0)) return bad("layer norm eps must be positive");
  return Status::Ok();
}

Result<ViTConfig> ConfigFromTimmName(const std::string& architecture) {
  static const std::regex re(
      R"(^(vit|deit)_(tiny|small|base|large|huge)_(distilled_)?patch(\d+)_(\d+)$)");
  std::smatch m;
  if (!std::regex_match(architecture, m, re)) {
    return Status::InvalidInput(
        "unknown architecture '" + architecture +
        "' (expected a timm name like vit_base_patch16_224 or deit_tiny_distilled_patch16_224, "
        "or a config with model_args)");
  }
  ViTConfig c;
  c.architecture = architecture;
  const std::string size = m[2];
  if (size == "tiny") {
    c.embed_dim = 192;
    c.depth = 12;
    c.num_heads = 3;
  }
  if (size == "small") {
    c.embed_dim = 384;
    c.depth = 12;
    c.num_heads = 6;
  }
  if (size == "base") {
    c.embed_dim = 768;
    c.depth = 12;
    c.num_heads = 12;
  }
  if (size == "large") {
    c.embed_dim = 1024;
    c.depth = 24;
    c.num_heads = 16;
  }
  if (size == "huge") {
    c.embed_dim = 1280;
    c.depth = 32;
    c.num_heads = 16;
  }
  c.mlp_hidden = 4 * c.embed_dim;
  c.patch_size = std::stoi(m[4]);
  c.img_size = std::stoi(m[5]);
  if (m[3].matched) {
    if (m[1] != "deit") {
      return Status::InvalidInput("unknown architecture '" + architecture +
                                  "': only deit_* models are distilled");
    }
    c.dist_token = c.head_dist = true;
  }
  return c;
}

Result<std::vector<std::string>> ReadClassNames(const std::string& path, bool display_names) {
  std::ifstream in(path);
  if (!in) return Status::InvalidInput("cannot read class list '" + path + "'");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string first, rest;
    if (!(ls >> first)) continue;
    std::getline(ls >> std::ws, rest);
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back()))) rest.pop_back();
    names.push_back(display_names && !rest.empty() ? rest : first);
  }
  if (names.empty()) return Status::InvalidInput("class list '" + path + "' has no names");
  return names;
}

namespace {

Result<json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidInput("cannot read '" + path + "'");
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    return Status::InvalidInput("'" + path + "' is not valid JSON: " + e.what());
  }
}

// Typed getters that name the key and file on a type mismatch.
template <typename T>
Status Get(const json& j, const std::string& key, const std::string& file, T* out) {
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  try {
    *out = j[key].get<T>();
  } catch (const std::exception&) {
    return Status::InvalidInput("config '" + file + "': key '" + key + "' has value " +
                                j[key].dump() + " of the wrong type");
  }
  return Status::Ok();
}

Status ParseMeanStd(const json& j, const std::string& key, const std::string& file, float* out) {
  if (!j.contains(key)) return Status::Ok();
  const json& v = j[key];
  if (v.is_number()) {
    out[0] = out[1] = out[2] = v.get<float>();
    return Status::Ok();
  }
  if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() ||
      !v[2].is_number()) {
    return Status::InvalidInput("config '" + file + "': '" + key + "' is " + v.dump() +
                                ", expected 3 numbers");
  }
  for (int i = 0; i < 3; ++i) out[i] = v[i].get<float>();
  return Status::Ok();
}

Status ParseTimm(const json& j, const std::string& file, ModelSpec* spec) {
  std::string arch;
  VITQ_RETURN_IF_ERROR(Get(j, "architecture", file, &arch));
  ViTConfig c;
  auto implied = ConfigFromTimmName(arch);
  if (implied.ok()) {
    c = implied.value();
  } else if (!j.contains("model_args")) {
    return implied.status().WithContext("config '" + file + "'");
  }
  c.architecture = arch;
  VITQ_RETURN_IF_ERROR(Get(j, "num_classes", file, &c.num_classes));
  if (j.contains("model_args")) {
    const json& a = j["model_args"];
    if (!a.is_object())
      return Status::InvalidInput("config '" + file + "': model_args is not an object");
    static const char* kKnown[] = {"img_size",    "patch_size",  "in_chans",    "embed_dim",
                                   "depth",       "num_heads",   "mlp_ratio",   "qkv_bias",
                                   "num_classes", "global_pool", "class_token", "distilled"};
    for (auto it = a.begin(); it != a.end(); ++it) {
      bool known = false;
      for (const char* k : kKnown) known |= it.key() == k;
      if (!known) {
        return Status::InvalidInput("config '" + file + "': model_args." + it.key() +
                                    " is not supported by vitq (supported: img_size, patch_size, "
                                    "in_chans, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, "
                                    "num_classes, global_pool=token, class_token=true, distilled)");
      }
    }
    double mlp_ratio = c.embed_dim > 0 ? static_cast<double>(c.mlp_hidden) / c.embed_dim : 4.0;
    VITQ_RETURN_IF_ERROR(Get(a, "img_size", file, &c.img_size));
    VITQ_RETURN_IF_ERROR(Get(a, "patch_size", file, &c.patch_size));
    VITQ_RETURN_IF_ERROR(Get(a, "in_chans", file, &c.in_chans));
    VITQ_RETURN_IF_ERROR(Get(a, "embed_dim", file, &c.embed_dim));
    VITQ_RETURN_IF_ERROR(Get(a, "depth", file, &c.depth));
    VITQ_RETURN_IF_ERROR(Get(a, "num_heads", file, &c.num_heads));
    VITQ_RETURN_IF_ERROR(Get(a, "mlp_ratio", file, &mlp_ratio));
    VITQ_RETURN_IF_ERROR(Get(a, "qkv_bias", file, &c.qkv_bias));
    VITQ_RETURN_IF_ERROR(Get(a, "num_classes", file, &c.num_classes));
    bool distilled = c.dist_token;
    VITQ_RETURN_IF_ERROR(Get(a, "distilled", file, &distilled));
    c.dist_token = c.head_dist = distilled;
    std::string pool = "token";
    VITQ_RETURN_IF_ERROR(Get(a, "global_pool", file, &pool));
    bool class_token = true;
    VITQ_RETURN_IF_ERROR(Get(a, "class_token", file, &class_token));
    if (pool != "token" || !class_token) {
      return Status::InvalidInput("config '" + file +
                                  "': only global_pool 'token' with a class token is supported, "
                                  "found global_pool '" +
                                  pool + "'");
    }
    c.mlp_hidden = static_cast<int>(std::lround(mlp_ratio * c.embed_dim));
  }
  VITQ_RETURN_IF_ERROR(c.Validate(file));
  spec->config = c;
  // Preprocessing from pretrained_cfg (timm's eval transform).
  PreprocessConfig& p = spec->preprocess;
  p.crop_height = p.crop_width = c.img_size;
  double crop_pct = 0.875;
  std::string interp = "bicubic", crop_mode = "center";
  if (j.contains("pretrained_cfg")) {
    const json& pc = j["pretrained_cfg"];
    if (pc.contains("input_size")) {
      std::vector<int> in;
      VITQ_RETURN_IF_ERROR(Get(pc, "input_size", file, &in));
      if (in.size() != 3 || in[0] != c.in_chans || in[1] != c.img_size || in[2] != c.img_size) {
        return Status::InvalidInput("config '" + file + "': pretrained_cfg.input_size " +
                                    pc["input_size"].dump() + " disagrees with the architecture (" +
                                    std::to_string(c.in_chans) + ", " + std::to_string(c.img_size) +
                                    ", " + std::to_string(c.img_size) + ")");
      }
    }
    VITQ_RETURN_IF_ERROR(Get(pc, "crop_pct", file, &crop_pct));
    VITQ_RETURN_IF_ERROR(Get(pc, "interpolation", file, &interp));
    VITQ_RETURN_IF_ERROR(Get(pc, "crop_mode", file, &crop_mode));
    VITQ_RETURN_IF_ERROR(ParseMeanStd(pc, "mean", file, p.mean));
    VITQ_RETURN_IF_ERROR(ParseMeanStd(pc, "std", file, p.std));
  }
  if (interp == "bicubic")
    p.interpolation = Interpolation::kBicubic;
  else if (interp == "bilinear")
    p.interpolation = Interpolation::kBilinear;
  else if (interp == "nearest")
    p.interpolation = Interpolation::kNearest;
  else
    return Status::InvalidInput("config '" + file + "': unsupported interpolation '" + interp +
                                "'");
  if (!(crop_pct > 0 && crop_pct <= 1.0 + 1e-9)) {
    return Status::InvalidInput("config '" + file + "': crop_pct " + std::to_string(crop_pct) +
                                " outside (0, 1]");
  }
  int scale_size = static_cast<int>(std::floor(c.img_size / crop_pct));
  if (crop_mode == "center") {
    p.resize_shorter = scale_size;
  } else if (crop_mode == "squash") {
    p.resize_shorter = 0;
    p.resize_height = p.resize_width = scale_size;
  } else {
    return Status::InvalidInput("config '" + file + "': unsupported crop_mode '" + crop_mode +
                                "' (expected center or squash)");
  }
  if (j.contains("label_names")) {
    VITQ_RETURN_IF_ERROR(Get(j, "label_names", file, &spec->class_names));
  }
  spec->layout = "timm";
  return Status::Ok();
}

Status ParseHfPreprocessor(const std::string& dir, ModelSpec* spec) {
  PreprocessConfig& p = spec->preprocess;
  std::string file = (fs::path(dir) / "preprocessor_config.json").string();
  // Defaults of transformers' ViTImageProcessor, used when the file is absent.
  p.resize_shorter = 0;
  p.resize_height = p.resize_width = spec->config.img_size;
  p.crop_height = p.crop_width = spec->config.img_size;
  p.interpolation = Interpolation::kBilinear;
  p.crop_offset_round = false;
  for (int i = 0; i < 3; ++i) p.mean[i] = p.std[i] = 0.5f;
  if (!fs::exists(file)) return Status::Ok();
  VITQ_ASSIGN_OR_RETURN(json j, ReadJson(file));
  bool do_resize = true, do_crop = false, do_normalize = true;
  VITQ_RETURN_IF_ERROR(Get(j, "do_resize", file, &do_resize));
  VITQ_RETURN_IF_ERROR(Get(j, "do_center_crop", file, &do_crop));
  VITQ_RETURN_IF_ERROR(Get(j, "do_normalize", file, &do_normalize));
  double rescale = 1.0 / 255.0;
  VITQ_RETURN_IF_ERROR(Get(j, "rescale_factor", file, &rescale));
  if (std::abs(rescale - 1.0 / 255.0) > 1e-9) {
    return Status::InvalidInput("preprocessor config '" + file + "': rescale_factor " +
                                std::to_string(rescale) + " is not supported (expected 1/255)");
  }
  if (j.contains("size")) {
    const json& s = j["size"];
    if (s.is_number_integer()) {
      p.resize_shorter = 0;
      p.resize_height = p.resize_width = s.get<int>();
    } else if (s.is_object() && s.contains("shortest_edge")) {
      p.resize_shorter = s["shortest_edge"].get<int>();
    } else if (s.is_object() && s.contains("height") && s.contains("width")) {
      p.resize_shorter = 0;
      p.resize_height = s["height"].get<int>();
      p.resize_width = s["width"].get<int>();
    } else {
      return Status::InvalidInput("preprocessor config '" + file + "': size " + s.dump() +
                                  " is not understood (expected shortest_edge or height/width)");
    }
  }
  if (!do_resize) {
    return Status::InvalidInput("preprocessor config '" + file +
                                "': do_resize false is not supported (inputs need a fixed size)");
  }
  if (do_crop && j.contains("crop_size")) {
    const json& s = j["crop_size"];
    if (s.is_number_integer()) {
      p.crop_height = p.crop_width = s.get<int>();
    } else if (s.is_object() && s.contains("height") && s.contains("width")) {
      p.crop_height = s["height"].get<int>();
      p.crop_width = s["width"].get<int>();
    }
  } else if (!do_crop) {
    p.crop_height = p.resize_shorter > 0 ? p.resize_shorter : p.resize_height;
    p.crop_width = p.resize_shorter > 0 ? p.resize_shorter : p.resize_width;
  }
  int resample = 2;
  VITQ_RETURN_IF_ERROR(Get(j, "resample", file, &resample));
  if (resample == 0)
    p.interpolation = Interpolation::kNearest;
  else if (resample == 2)
    p.interpolation = Interpolation::kBilinear;
  else if (resample == 3)
    p.interpolation = Interpolation::kBicubic;
  else
    return Status::InvalidInput("preprocessor config '" + file + "': resample " +
                                std::to_string(resample) + " is not supported (0, 2 or 3)");
  if (do_normalize) {
    VITQ_RETURN_IF_ERROR(ParseMeanStd(j, "image_mean", file, p.mean));
    VITQ_RETURN_IF_ERROR(ParseMeanStd(j, "image_std", file, p.std));
  } else {
    for (int i = 0; i < 3; ++i) {
      p.mean[i] = 0.f;
      p.std[i] = 1.f;
    }
  }
  if (p.crop_height != spec->config.img_size || p.crop_width != spec->config.img_size) {
    return Status::InvalidInput("preprocessor config '" + file + "': the model input is " +
                                std::to_string(p.crop_height) + "x" + std::to_string(p.crop_width) +
                                " but image_size is " + std::to_string(spec->config.img_size));
  }
  return Status::Ok();
}

Status ParseHf(const json& j, const std::string& file, const std::string& dir, ModelSpec* spec) {
  std::string model_type;
  VITQ_RETURN_IF_ERROR(Get(j, "model_type", file, &model_type));
  if (model_type != "vit" && model_type != "deit") {
    return Status::InvalidInput("config '" + file + "': model_type '" + model_type +
                                "' is not supported (expected vit or deit)");
  }
  std::string arch_class =
      model_type == "vit" ? "ViTForImageClassification" : "DeiTForImageClassification";
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty()) {
    arch_class = j["architectures"][0].get<std::string>();
  }
  ViTConfig c;
  c.architecture = arch_class;
  c.ln_eps = 1e-12f;
  VITQ_RETURN_IF_ERROR(Get(j, "hidden_size", file, &c.embed_dim));
  VITQ_RETURN_IF_ERROR(Get(j, "num_hidden_layers", file, &c.depth));
  VITQ_RETURN_IF_ERROR(Get(j, "num_attention_heads", file, &c.num_heads));
  VITQ_RETURN_IF_ERROR(Get(j, "intermediate_size", file, &c.mlp_hidden));
  VITQ_RETURN_IF_ERROR(Get(j, "layer_norm_eps", file, &c.ln_eps));
  VITQ_RETURN_IF_ERROR(Get(j, "image_size", file, &c.img_size));
  VITQ_RETURN_IF_ERROR(Get(j, "patch_size", file, &c.patch_size));
  VITQ_RETURN_IF_ERROR(Get(j, "num_channels", file, &c.in_chans));
  VITQ_RETURN_IF_ERROR(Get(j, "qkv_bias", file, &c.qkv_bias));
  std::string act = "gelu";
  VITQ_RETURN_IF_ERROR(Get(j, "hidden_act", file, &act));
  if (act != "gelu") {
    return Status::InvalidInput("config '" + file + "': hidden_act '" + act +
                                "' is not supported (expected exact 'gelu')");
  }
  if (arch_class == "ViTForImageClassification") {
  } else if (arch_class == "DeiTForImageClassification") {
    c.dist_token = true;
  } else if (arch_class == "DeiTForImageClassificationWithTeacher") {
    c.dist_token = c.head_dist = true;
  } else {
    return Status::InvalidInput(
        "config '" + file + "': architecture '" + arch_class +
        "' is not supported (ViTForImageClassification, "
        "DeiTForImageClassification, DeiTForImageClassificationWithTeacher)");
  }
  if (j.contains("id2label") && j["id2label"].is_object()) {
    const json& m = j["id2label"];
    c.num_classes = static_cast<int>(m.size());
    spec->class_names.assign(m.size(), "");
    for (auto it = m.begin(); it != m.end(); ++it) {
      size_t id = 0;
      try {
        id = std::stoul(it.key());
      } catch (const std::exception&) {
        id = m.size();
      }
      if (id >= m.size()) {
        return Status::InvalidInput("config '" + file + "': id2label key '" + it.key() +
                                    "' is not an index below " + std::to_string(m.size()));
      }
      spec->class_names[id] =
          it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    }
  }
  VITQ_RETURN_IF_ERROR(Get(j, "num_labels", file, &c.num_classes));
  if (!spec->class_names.empty() && static_cast<int>(spec->class_names.size()) != c.num_classes) {
    spec->class_names.clear();
  }
  VITQ_RETURN_IF_ERROR(c.Validate(file));
  spec->config = c;
  spec->layout = "huggingface";
  return ParseHfPreprocessor(dir, spec);
}

}  // namespace

std::string ModelSpecToJson(const ModelSpec& spec) {
  const ViTConfig& c = spec.config;
  const PreprocessConfig& p = spec.preprocess;
  nlohmann::ordered_json j;
  j["architecture"] = c.architecture;
  j["img_size"] = c.img_size;
  j["patch_size"] = c.patch_size;
  j["in_chans"] = c.in_chans;
  j["embed_dim"] = c.embed_dim;
  j["depth"] = c.depth;
  j["num_heads"] = c.num_heads;
  j["mlp_hidden"] = c.mlp_hidden;
  j["num_classes"] = c.num_classes;
  j["qkv_bias"] = c.qkv_bias;
  j["dist_token"] = c.dist_token;
  j["head_dist"] = c.head_dist;
  j["ln_eps"] = c.ln_eps;
  j["layout"] = spec.layout;
  j["preprocess"] = {{"crop_height", p.crop_height},
                     {"crop_width", p.crop_width},
                     {"resize_shorter", p.resize_shorter},
                     {"resize_height", p.resize_height},
                     {"resize_width", p.resize_width},
                     {"interpolation", InterpolationName(p.interpolation)},
                     {"crop_offset_round", p.crop_offset_round},
                     {"mean", {p.mean[0], p.mean[1], p.mean[2]}},
                     {"std", {p.std[0], p.std[1], p.std[2]}}};
  j["class_names"] = spec.class_names;
  return j.dump();
}

Result<ModelSpec> ModelSpecFromJson(const std::string& text, const std::string& source) {
  ModelSpec spec;
  try {
    json j = json::parse(text);
    ViTConfig& c = spec.config;
    c.architecture = j.at("architecture").get<std::string>();
    c.img_size = j.at("img_size").get<int>();
    c.patch_size = j.at("patch_size").get<int>();
    c.in_chans = j.at("in_chans").get<int>();
    c.embed_dim = j.at("embed_dim").get<int>();
    c.depth = j.at("depth").get<int>();
    c.num_heads = j.at("num_heads").get<int>();
    c.mlp_hidden = j.at("mlp_hidden").get<int>();
    c.num_classes = j.at("num_classes").get<int>();
    c.qkv_bias = j.at("qkv_bias").get<bool>();
    c.dist_token = j.at("dist_token").get<bool>();
    c.head_dist = j.at("head_dist").get<bool>();
    c.ln_eps = j.at("ln_eps").get<float>();
    spec.layout = j.value("layout", "timm");
    const json& p = j.at("preprocess");
    PreprocessConfig& pp = spec.preprocess;
    pp.crop_height = p.at("crop_height").get<int>();
    pp.crop_width = p.at("crop_width").get<int>();
    pp.resize_shorter = p.at("resize_shorter").get<int>();
    pp.resize_height = p.at("resize_height").get<int>();
    pp.resize_width = p.at("resize_width").get<int>();
    std::string interp = p.at("interpolation").get<std::string>();
    pp.interpolation = interp == "nearest"    ? Interpolation::kNearest
                       : interp == "bilinear" ? Interpolation::kBilinear
                                              : Interpolation::kBicubic;
    pp.crop_offset_round = p.at("crop_offset_round").get<bool>();
    for (int i = 0; i < 3; ++i) {
      pp.mean[i] = p.at("mean")[i].get<float>();
      pp.std[i] = p.at("std")[i].get<float>();
    }
    spec.class_names = j.value("class_names", std::vector<std::string>{});
  } catch (const std::exception& e) {
    return Status::InvalidInput("'" + source + "': model description is malformed: " + e.what());
  }
  VITQ_RETURN_IF_ERROR(spec.config.Validate(source));
  return spec;
}

Result<ModelSpec> LoadModelSpec(const std::string& model_path) {
  ModelSpec spec;
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) {
    spec.dir = model_path;
    spec.weights_path = (fs::path(model_path) / "model.safetensors").string();
  } else if (fs::is_regular_file(model_path, ec)) {
    spec.dir = fs::path(model_path).parent_path().string();
    if (spec.dir.empty()) spec.dir = ".";
    spec.weights_path = model_path;
  } else {
    return Status::InvalidInput("model '" + model_path +
                                "' does not exist (expected a directory with config.json and "
                                "model.safetensors, or a .safetensors file)");
  }
  spec.config_path = (fs::path(spec.dir) / "config.json").string();
  if (!fs::exists(spec.config_path)) {
    return Status::InvalidInput("model '" + model_path + "': missing '" + spec.config_path + "'");
  }
  if (!fs::exists(spec.weights_path)) {
    return Status::InvalidInput("model '" + model_path + "': missing '" + spec.weights_path + "'");
  }
  VITQ_ASSIGN_OR_RETURN(json j, ReadJson(spec.config_path));
  if (!j.is_object())
    return Status::InvalidInput("config '" + spec.config_path + "' is not a JSON object");
  if (j.contains("architecture")) {
    VITQ_RETURN_IF_ERROR(ParseTimm(j, spec.config_path, &spec));
  } else if (j.contains("model_type")) {
    VITQ_RETURN_IF_ERROR(ParseHf(j, spec.config_path, spec.dir, &spec));
  } else {
    return Status::InvalidInput("config '" + spec.config_path +
                                "': neither a timm config (no 'architecture') nor a Hugging Face "
                                "config (no 'model_type')");
  }
  std::string classes = (fs::path(spec.dir) / "classes.txt").string();
  if (spec.class_names.empty() && fs::exists(classes)) {
    VITQ_ASSIGN_OR_RETURN(spec.class_names, ReadClassNames(classes, /*display_names=*/true));
  }
  if (!spec.class_names.empty() &&
      static_cast<int>(spec.class_names.size()) != spec.config.num_classes) {
    return Status::InvalidInput(
        "model '" + model_path + "': " + std::to_string(spec.class_names.size()) +
        " class names for " + std::to_string(spec.config.num_classes) + " classes");
  }
  return spec;
}

}  // namespace vitq
