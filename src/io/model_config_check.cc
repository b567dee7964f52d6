// Checks of ViTConfig and PreprocessConfig against sane bounds, and class-list parsing: the
// validation every config and .vitq file passes before anything is allocated (io stage).
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>

#include "vitq/files.h"
#include "vitq/model_config.h"

namespace vitq {

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
  // Upper bounds, checked before anything is allocated from these numbers.
  struct Bound {
    const char* name;
    int value, max;
  };
  for (const Bound& b :
       {Bound{"embed_dim", embed_dim, kMaxEmbedDim}, Bound{"depth", depth, kMaxDepth},
        Bound{"num_heads", num_heads, kMaxEmbedDim},
        Bound{"mlp hidden size", mlp_hidden, kMaxMlpHidden},
        Bound{"num_classes", num_classes, kMaxClasses}, Bound{"img_size", img_size, kMaxImageSide},
        Bound{"patch_size", patch_size, kMaxImageSide}}) {
    if (b.value > b.max) {
      return bad(std::string(b.name) + " " + std::to_string(b.value) + " exceeds the limit " +
                 std::to_string(b.max));
    }
  }
  if (in_chans != 3) {
    return bad("in_chans " + std::to_string(in_chans) +
               " is not supported (images are decoded to 3 channels, RGB)");
  }
  if (embed_dim % num_heads != 0) {
    return bad("embed_dim " + std::to_string(embed_dim) + " is not divisible by num_heads " +
               std::to_string(num_heads));
  }
  if (img_size % patch_size != 0) {
    return bad("img_size " + std::to_string(img_size) + " is not a multiple of patch_size " +
               std::to_string(patch_size));
  }
  if (num_patches() > kMaxPatches) {
    return bad(std::to_string(num_patches()) + " patches (img_size " + std::to_string(img_size) +
               " / patch_size " + std::to_string(patch_size) + ", squared) exceed the limit " +
               std::to_string(kMaxPatches));
  }
  // Parameters in int64: per block qkv, proj, fc1, fc2 (+ biases, norms), patch embedding, head.
  const int64_t d = embed_dim, h = mlp_hidden;
  const int64_t per_block = 4 * d * d + 2 * d * h + 9 * d + h;
  const int64_t params = depth * per_block + static_cast<int64_t>(patch_dim()) * d +
                         static_cast<int64_t>(num_tokens()) * d +
                         (head_dist ? 2 : 1) * (d + 1) * num_classes;
  if (params > kMaxParameters) {
    return bad("about " + std::to_string(params) + " parameters exceed the limit " +
               std::to_string(kMaxParameters));
  }
  if (!(ln_eps > 0) || !std::isfinite(ln_eps)) return bad("layer norm eps must be positive");
  return Status::Ok();
}

Status ValidatePreprocess(const PreprocessConfig& p, const ViTConfig& c,
                          const std::string& source) {
  auto bad = [&](const std::string& what) {
    return Status::InvalidInput("preprocessing of '" + source + "': " + what);
  };
  if (p.crop_height != c.img_size || p.crop_width != c.img_size) {
    return bad("center crop " + std::to_string(p.crop_height) + "x" + std::to_string(p.crop_width) +
               " differs from the model's image size " + std::to_string(c.img_size));
  }
  if (p.resize_shorter < 0 || p.resize_shorter > kMaxImageSide) {
    return bad("resize target (shorter side) " + std::to_string(p.resize_shorter) +
               " outside [1, " + std::to_string(kMaxImageSide) + "]");
  }
  if (p.resize_shorter == 0 && (p.resize_height < 1 || p.resize_height > kMaxImageSide ||
                                p.resize_width < 1 || p.resize_width > kMaxImageSide)) {
    return bad("resize target " + std::to_string(p.resize_height) + "x" +
               std::to_string(p.resize_width) + " outside [1, " + std::to_string(kMaxImageSide) +
               "]");
  }
  for (int i = 0; i < 3; ++i) {
    if (!std::isfinite(p.mean[i])) {
      return bad("mean[" + std::to_string(i) + "] is not finite");
    }
    if (!std::isfinite(p.std[i]) || !(p.std[i] != 0)) {
      return bad("std[" + std::to_string(i) + "] is " + std::to_string(p.std[i]) +
                 ", expected a finite non-zero number");
    }
  }
  return Status::Ok();
}

Result<Interpolation> ParseInterpolation(const std::string& name) {
  if (name == "bicubic") return Interpolation::kBicubic;
  if (name == "bilinear") return Interpolation::kBilinear;
  if (name == "nearest") return Interpolation::kNearest;
  return Status::InvalidInput("unsupported interpolation '" + name +
                              "' (expected bicubic, bilinear or nearest)");
}

Result<std::vector<std::string>> ReadClassNames(const std::string& path, bool display_names) {
  VITQ_ASSIGN_OR_RETURN(std::string text, ReadRegularFile(path, "class list", kMaxTextFileBytes));
  return ParseClassNames(text, path, display_names);
}

Result<std::vector<std::string>> ParseClassNames(const std::string& text, const std::string& path,
                                                 bool display_names) {
  std::istringstream in(text);
  std::vector<std::string> names;
  std::set<std::string> seen;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ls(line);
    std::string first, rest;
    if (!(ls >> first)) continue;
    // A repeated class would shift every later label by one.
    if (!seen.insert(first).second) {
      return Status::InvalidInput("class list '" + path + "': class '" + first + "' on line " +
                                  std::to_string(line_no) + " is listed twice");
    }
    if (names.size() >= static_cast<size_t>(kMaxClasses)) {
      return Status::InvalidInput("class list '" + path + "' has more than " +
                                  std::to_string(kMaxClasses) + " classes");
    }
    std::getline(ls >> std::ws, rest);
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back()))) rest.pop_back();
    names.push_back(display_names && !rest.empty() ? rest : first);
  }
  if (names.empty()) return Status::InvalidInput("class list '" + path + "' has no names");
  return names;
}

}  // namespace vitq
