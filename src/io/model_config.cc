// Parsing of timm hub and Hugging Face transformers configs into ModelSpec (io stage).
#include "vitq/model_config.h"

#include <cctype>
#include <climits>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "json_strict.h"
#include "vitq/files.h"
#include "vitq/json_depth.h"

namespace vitq {
namespace fs = std::filesystem;
using json_strict::Convert;
using json_strict::Get;
using json_strict::Need;
using json_strict::ParseMeanStd;
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
  // The digits may be any length: sizes beyond the limits are refused, never overflowed.
  auto number = [](const std::string& digits) {
    return digits.size() > 6 ? kMaxImageSide + 1 : std::stoi(digits);
  };
  c.patch_size = number(m[4]);
  c.img_size = number(m[5]);
  if (m[3].matched) {
    if (m[1] != "deit") {
      return Status::InvalidInput("unknown architecture '" + architecture +
                                  "': only deit_* models are distilled");
    }
    c.dist_token = c.head_dist = true;
  }
  VITQ_RETURN_IF_ERROR(c.Validate("architecture " + architecture));
  return c;
}

namespace {

Result<json> ReadJson(const std::string& path) {
  VITQ_ASSIGN_OR_RETURN(std::string text, ReadRegularFile(path, "config", kMaxTextFileBytes));
  try {
    return json::parse(text, JsonDepthGuard<json>());
  } catch (const std::exception& e) {
    return Status::InvalidInput("'" + path + "' is not valid JSON: " + e.what());
  }
}

// timm's model_args (architectures timm does not name, e.g. the bundled CIFAR-10 ViT) over the
// config the name implied, if any.
Status ParseModelArgs(const json& j, const std::string& file, ViTConfig* config) {
  ViTConfig& c = *config;
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
  VITQ_RETURN_IF_ERROR(Get(a, "img_size", file, &c.img_size, "model_args."));
  VITQ_RETURN_IF_ERROR(Get(a, "patch_size", file, &c.patch_size, "model_args."));
  VITQ_RETURN_IF_ERROR(Get(a, "in_chans", file, &c.in_chans, "model_args."));
  VITQ_RETURN_IF_ERROR(Get(a, "embed_dim", file, &c.embed_dim, "model_args."));
  VITQ_RETURN_IF_ERROR(Get(a, "depth", file, &c.depth, "model_args."));
  VITQ_RETURN_IF_ERROR(Get(a, "num_heads", file, &c.num_heads, "model_args."));
  VITQ_RETURN_IF_ERROR(Get(a, "mlp_ratio", file, &mlp_ratio, "model_args."));
  VITQ_RETURN_IF_ERROR(Get(a, "qkv_bias", file, &c.qkv_bias, "model_args."));
  VITQ_RETURN_IF_ERROR(Get(a, "num_classes", file, &c.num_classes, "model_args."));
  bool distilled = c.dist_token;
  VITQ_RETURN_IF_ERROR(Get(a, "distilled", file, &distilled, "model_args."));
  c.dist_token = c.head_dist = distilled;
  std::string pool = "token";
  VITQ_RETURN_IF_ERROR(Get(a, "global_pool", file, &pool, "model_args."));
  bool class_token = true;
  VITQ_RETURN_IF_ERROR(Get(a, "class_token", file, &class_token, "model_args."));
  if (pool != "token" || !class_token) {
    return Status::InvalidInput("config '" + file +
                                "': only global_pool 'token' with a class token is supported, "
                                "found global_pool '" +
                                pool + "'");
  }
  const double hidden = mlp_ratio * c.embed_dim;
  if (c.embed_dim < 1 || c.embed_dim > kMaxEmbedDim) {
    c.mlp_hidden = 1;  // Validate below names embed_dim
  } else if (!(hidden >= 1 && hidden <= kMaxMlpHidden)) {
    return Status::InvalidInput(
        "config '" + file + "': model_args.mlp_ratio " + std::to_string(mlp_ratio) +
        " gives an MLP hidden size outside [1, " + std::to_string(kMaxMlpHidden) + "]");
  } else {
    c.mlp_hidden = static_cast<int>(std::lround(hidden));
  }
  return Status::Ok();
}

// The preprocessing of timm's eval transform from pretrained_cfg (input size, crop_pct,
// interpolation, crop mode, mean and std).
Status ParsePretrainedCfg(const json& j, const std::string& file, const ViTConfig& c,
                          PreprocessConfig* preprocess) {
  PreprocessConfig& p = *preprocess;
  p.crop_height = p.crop_width = c.img_size;
  double crop_pct = 0.875;
  std::string interp = "bicubic", crop_mode = "center";
  if (j.contains("pretrained_cfg")) {
    const json& pc = j["pretrained_cfg"];
    if (!pc.is_object()) {
      return Status::InvalidInput("config '" + file + "': key 'pretrained_cfg' is " +
                                  pc.dump(-1, ' ', false, json::error_handler_t::replace) +
                                  ", expected an object");
    }
    if (pc.contains("input_size")) {
      std::vector<int> in;
      VITQ_RETURN_IF_ERROR(Get(pc, "input_size", file, &in, "pretrained_cfg."));
      if (in.size() != 3 || in[0] != c.in_chans || in[1] != c.img_size || in[2] != c.img_size) {
        return Status::InvalidInput("config '" + file + "': pretrained_cfg.input_size " +
                                    pc["input_size"].dump() + " disagrees with the architecture (" +
                                    std::to_string(c.in_chans) + ", " + std::to_string(c.img_size) +
                                    ", " + std::to_string(c.img_size) + ")");
      }
    }
    VITQ_RETURN_IF_ERROR(Get(pc, "crop_pct", file, &crop_pct, "pretrained_cfg."));
    VITQ_RETURN_IF_ERROR(Get(pc, "interpolation", file, &interp, "pretrained_cfg."));
    VITQ_RETURN_IF_ERROR(Get(pc, "crop_mode", file, &crop_mode, "pretrained_cfg."));
    VITQ_RETURN_IF_ERROR(ParseMeanStd(pc, "mean", file, p.mean));
    VITQ_RETURN_IF_ERROR(ParseMeanStd(pc, "std", file, p.std));
  }
  {
    auto parsed = ParseInterpolation(interp);
    if (!parsed.ok()) return parsed.status().WithContext("config '" + file + "'");
    p.interpolation = parsed.value();
  }
  if (!(crop_pct > 0 && crop_pct <= 1.0 + 1e-9)) {
    return Status::InvalidInput("config '" + file + "': crop_pct " + std::to_string(crop_pct) +
                                " outside (0, 1]");
  }
  // In double first: a tiny crop_pct would overflow an int.
  const double scale = std::floor(c.img_size / crop_pct);
  if (scale > kMaxImageSide) {
    return Status::InvalidInput("config '" + file + "': crop_pct " + std::to_string(crop_pct) +
                                " gives a resize target of " + std::to_string(scale) +
                                " pixels, above the limit " + std::to_string(kMaxImageSide));
  }
  int scale_size = static_cast<int>(scale);
  if (crop_mode == "center") {
    p.resize_shorter = scale_size;
  } else if (crop_mode == "squash") {
    p.resize_shorter = 0;
    p.resize_height = p.resize_width = scale_size;
  } else {
    return Status::InvalidInput("config '" + file + "': unsupported crop_mode '" + crop_mode +
                                "' (expected center or squash)");
  }
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
  if (j.contains("model_args")) VITQ_RETURN_IF_ERROR(ParseModelArgs(j, file, &c));
  VITQ_RETURN_IF_ERROR(c.Validate(file));
  spec->config = c;
  VITQ_RETURN_IF_ERROR(ParsePretrainedCfg(j, file, c, &spec->preprocess));
  if (j.contains("label_names")) {
    VITQ_RETURN_IF_ERROR(Get(j, "label_names", file, &spec->class_names));
  }
  VITQ_RETURN_IF_ERROR(ValidatePreprocess(spec->preprocess, c, file));
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
  std::error_code ec;
  if (!fs::exists(file, ec) && !ec) return Status::Ok();
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
  if (!j.is_object()) {
    return Status::InvalidInput("preprocessor config '" + file + "' is not a JSON object");
  }
  if (j.contains("size") && !j["size"].is_null()) {
    const json& s = j["size"];
    if (s.is_number()) {
      int side = 0;
      VITQ_RETURN_IF_ERROR(Get(j, "size", file, &side));
      p.resize_shorter = 0;
      p.resize_height = p.resize_width = side;
    } else if (s.is_object() && s.contains("shortest_edge")) {
      VITQ_RETURN_IF_ERROR(Need(s, "shortest_edge", file, &p.resize_shorter, "size."));
      if (p.resize_shorter < 1) {
        return Status::InvalidInput("preprocessor config '" + file + "': size.shortest_edge " +
                                    std::to_string(p.resize_shorter) + " is not positive");
      }
    } else if (s.is_object() && s.contains("height") && s.contains("width")) {
      p.resize_shorter = 0;
      VITQ_RETURN_IF_ERROR(Need(s, "height", file, &p.resize_height, "size."));
      VITQ_RETURN_IF_ERROR(Need(s, "width", file, &p.resize_width, "size."));
    } else {
      return Status::InvalidInput("preprocessor config '" + file + "': size " +
                                  s.dump(-1, ' ', false, json::error_handler_t::replace) +
                                  " is not understood (expected shortest_edge or height/width)");
    }
  }
  if (!do_resize) {
    return Status::InvalidInput("preprocessor config '" + file +
                                "': do_resize false is not supported (inputs need a fixed size)");
  }
  if (do_crop && j.contains("crop_size") && !j["crop_size"].is_null()) {
    const json& s = j["crop_size"];
    if (s.is_number()) {
      VITQ_RETURN_IF_ERROR(Get(j, "crop_size", file, &p.crop_height));
      p.crop_width = p.crop_height;
    } else if (s.is_object() && s.contains("height") && s.contains("width")) {
      VITQ_RETURN_IF_ERROR(Need(s, "height", file, &p.crop_height, "crop_size."));
      VITQ_RETURN_IF_ERROR(Need(s, "width", file, &p.crop_width, "crop_size."));
    } else {
      return Status::InvalidInput("preprocessor config '" + file + "': crop_size " +
                                  s.dump(-1, ' ', false, json::error_handler_t::replace) +
                                  " is not understood (expected an integer or height/width)");
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
  return ValidatePreprocess(p, spec->config, file);
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
  if (j.contains("architectures") && !j["architectures"].is_null()) {
    std::vector<std::string> archs;
    VITQ_RETURN_IF_ERROR(Get(j, "architectures", file, &archs));
    if (!archs.empty()) arch_class = archs[0];
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
  if (j.contains("id2label") && !j["id2label"].is_null()) {
    const json& m = j["id2label"];
    if (!m.is_object()) {
      return Status::InvalidInput("config '" + file + "': key 'id2label' is " +
                                  m.dump(-1, ' ', false, json::error_handler_t::replace) +
                                  ", expected an object");
    }
    if (m.size() > static_cast<size_t>(kMaxClasses)) {
      return Status::InvalidInput("config '" + file + "': id2label has " +
                                  std::to_string(m.size()) + " entries, more than the limit " +
                                  std::to_string(kMaxClasses));
    }
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
      VITQ_RETURN_IF_ERROR(Get(m, it.key(), file, &spec->class_names[id], "id2label."));
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
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<ModelSpec> ModelSpecFromJson(const std::string& text, const std::string& source) {
  ModelSpec spec;
  json j;
  try {
    j = json::parse(text, JsonDepthGuard<json>());
  } catch (const std::exception& e) {
    return Status::InvalidInput("'" + source +
                                "': model description is not valid JSON: " + e.what());
  }
  if (!j.is_object()) {
    return Status::InvalidInput("'" + source + "': model description is not a JSON object");
  }
  const std::string pre = "vitq.model.";
  ViTConfig& c = spec.config;
  VITQ_RETURN_IF_ERROR(Need(j, "architecture", source, &c.architecture, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "img_size", source, &c.img_size, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "patch_size", source, &c.patch_size, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "in_chans", source, &c.in_chans, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "embed_dim", source, &c.embed_dim, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "depth", source, &c.depth, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "num_heads", source, &c.num_heads, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "mlp_hidden", source, &c.mlp_hidden, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "num_classes", source, &c.num_classes, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "qkv_bias", source, &c.qkv_bias, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "dist_token", source, &c.dist_token, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "head_dist", source, &c.head_dist, pre));
  VITQ_RETURN_IF_ERROR(Need(j, "ln_eps", source, &c.ln_eps, pre));
  spec.layout = "timm";
  VITQ_RETURN_IF_ERROR(Get(j, "layout", source, &spec.layout, pre));
  VITQ_RETURN_IF_ERROR(c.Validate(source));
  if (!j.contains("preprocess") || !j["preprocess"].is_object()) {
    return Status::InvalidInput("config '" + source + "': key '" + pre +
                                "preprocess' is missing or not an object");
  }
  const json& p = j["preprocess"];
  const std::string ppre = pre + "preprocess.";
  PreprocessConfig& pp = spec.preprocess;
  VITQ_RETURN_IF_ERROR(Need(p, "crop_height", source, &pp.crop_height, ppre));
  VITQ_RETURN_IF_ERROR(Need(p, "crop_width", source, &pp.crop_width, ppre));
  VITQ_RETURN_IF_ERROR(Need(p, "resize_shorter", source, &pp.resize_shorter, ppre));
  VITQ_RETURN_IF_ERROR(Need(p, "resize_height", source, &pp.resize_height, ppre));
  VITQ_RETURN_IF_ERROR(Need(p, "resize_width", source, &pp.resize_width, ppre));
  std::string interp;
  VITQ_RETURN_IF_ERROR(Need(p, "interpolation", source, &interp, ppre));
  {
    auto parsed = ParseInterpolation(interp);
    if (!parsed.ok()) return parsed.status().WithContext("config '" + source + "'");
    pp.interpolation = parsed.value();
  }
  VITQ_RETURN_IF_ERROR(Need(p, "crop_offset_round", source, &pp.crop_offset_round, ppre));
  std::vector<float> mean, std;
  VITQ_RETURN_IF_ERROR(Need(p, "mean", source, &mean, ppre));
  VITQ_RETURN_IF_ERROR(Need(p, "std", source, &std, ppre));
  if (mean.size() != 3 || std.size() != 3) {
    return Status::InvalidInput("config '" + source + "': " + ppre +
                                "mean and std must hold 3 numbers each");
  }
  for (int i = 0; i < 3; ++i) {
    pp.mean[i] = mean[i];
    pp.std[i] = std[i];
  }
  VITQ_RETURN_IF_ERROR(ValidatePreprocess(pp, c, source));
  VITQ_RETURN_IF_ERROR(Get(j, "class_names", source, &spec.class_names, pre));
  if (!spec.class_names.empty() && spec.class_names.size() != static_cast<size_t>(c.num_classes)) {
    return Status::InvalidInput("config '" + source +
                                "': " + std::to_string(spec.class_names.size()) +
                                " class names for " + std::to_string(c.num_classes) + " classes");
  }
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
  } else if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::InvalidInput("model '" + model_path + "': " + ec.message());
  } else if (fs::exists(model_path, ec)) {
    return Status::InvalidInput("model '" + model_path +
                                "' is neither a directory nor a regular file");
  } else {
    return Status::InvalidInput("model '" + model_path +
                                "' does not exist (expected a directory with config.json and "
                                "model.safetensors, or a .safetensors file)");
  }
  spec.config_path = (fs::path(spec.dir) / "config.json").string();
  if (!fs::exists(spec.config_path, ec)) {
    return Status::InvalidInput("model '" + model_path + "': missing '" + spec.config_path + "'" +
                                (ec ? " (" + ec.message() + ")" : ""));
  }
  if (!fs::exists(spec.weights_path, ec)) {
    return Status::InvalidInput("model '" + model_path + "': missing '" + spec.weights_path + "'" +
                                (ec ? " (" + ec.message() + ")" : ""));
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
  if (spec.class_names.empty() && fs::exists(classes, ec)) {
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
