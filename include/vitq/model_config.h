// Model configuration: architecture numbers and eval preprocessing, parsed from timm hub configs
// or Hugging Face transformers configs (io stage). Both layouts map onto the same structs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vitq/status.h"

namespace vitq {

// Bounds on every size read from a config or a .vitq file, checked before anything is allocated.
constexpr int kMaxImageSide = 4096;   // img_size, patch_size, resize and crop targets
constexpr int kMaxPatches = 16384;    // (img_size / patch_size)^2
constexpr int kMaxEmbedDim = 16384;   // embed_dim (num_heads at most as many)
constexpr int kMaxDepth = 256;        // transformer blocks
constexpr int kMaxMlpHidden = 65536;  // fc1 output features
constexpr int kMaxClasses = 1 << 20;  // classes (and class-list lines)
constexpr int64_t kMaxParameters = int64_t{4} << 30;  // about 4.3e9 parameters

struct ViTConfig {
  std::string architecture;  // timm name, e.g. "deit_tiny_patch16_224"
  int img_size = 224;
  int patch_size = 16;
  int in_chans = 3;
  int embed_dim = 0;
  int depth = 0;
  int num_heads = 0;
  int mlp_hidden = 0;  // fc1 output features
  int num_classes = 1000;
  bool qkv_bias = true;
  bool dist_token = false;  // distilled DeiT: a second prefix token after cls
  bool head_dist = false;   // ... with its own head; logits = (head(cls) + head_dist(dist)) / 2
  float ln_eps = 1e-6f;

  int num_prefix_tokens() const { return dist_token ? 2 : 1; }
  int grid() const { return img_size / patch_size; }
  int num_patches() const { return grid() * grid(); }
  int num_tokens() const { return num_patches() + num_prefix_tokens(); }
  int head_dim() const { return embed_dim / num_heads; }
  int patch_dim() const { return in_chans * patch_size * patch_size; }
  // Checks the numbers for consistency and against the bounds above (in_chans must be 3);
  // errors name `source` (the config file).
  Status Validate(const std::string& source) const;
};

enum class Interpolation { kNearest, kBilinear, kBicubic };
const char* InterpolationName(Interpolation interp);

// Eval preprocessing: resize, center crop, x/255, (x - mean) / std.
struct PreprocessConfig {
  int crop_height = 224, crop_width = 224;
  // Resize: the shorter side to `resize_shorter` (aspect kept), or when it is 0 to exactly
  // resize_height x resize_width.
  int resize_shorter = 256;
  int resize_height = 0, resize_width = 0;
  Interpolation interpolation = Interpolation::kBicubic;
  // torchvision's CenterCrop rounds the offset half-to-even; Hugging Face's floors it.
  bool crop_offset_round = true;
  float mean[3] = {0.485f, 0.456f, 0.406f};
  float std[3] = {0.229f, 0.224f, 0.225f};
  std::string Describe() const;
};

// Checks preprocessing against the model: the center crop equals img_size, resize targets in
// [1, kMaxImageSide], mean and std finite (std non-zero). Errors name `source`.
Status ValidatePreprocess(const PreprocessConfig& p, const ViTConfig& c, const std::string& source);

// "bicubic", "bilinear" or "nearest"; any other name is an error.
Result<Interpolation> ParseInterpolation(const std::string& name);

struct ModelSpec {
  ViTConfig config;
  PreprocessConfig preprocess;
  std::vector<std::string> class_names;  // empty when the checkpoint names none
  std::string layout;                    // "timm" or "huggingface"
  std::string dir, config_path, weights_path;
};

// ModelSpec as vitq's own JSON (architecture numbers, preprocessing, class names, source layout),
// stored inside .vitq files.
std::string ModelSpecToJson(const ModelSpec& spec);
Result<ModelSpec> ModelSpecFromJson(const std::string& text, const std::string& source);

// Resolves MODEL (a directory with config.json + model.safetensors, or a .safetensors file with
// config.json beside it) and parses the config of either layout.
Result<ModelSpec> LoadModelSpec(const std::string& model_path);

// The numbers a timm architecture name implies (vit_/deit_ tiny|small|base|large|huge,
// patchP, size S, deit distilled). Unknown names give an error.
Result<ViTConfig> ConfigFromTimmName(const std::string& architecture);

// Reads a class list, one class a line (e.g. ImageNet's "n01440764 tench"): the first word of
// each line (the folder name in a dataset), or with display_names the rest of the line when
// there is one. A model directory may hold such a classes.txt to name its classes.
// A class listed twice is an error naming it (it would shift every later label).
Result<std::vector<std::string>> ReadClassNames(const std::string& path, bool display_names);
// The same from the file's text (`path` names it in errors).
Result<std::vector<std::string>> ParseClassNames(const std::string& text, const std::string& path,
                                                 bool display_names);

}  // namespace vitq
