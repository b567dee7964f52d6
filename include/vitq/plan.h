// QuantPlan: what each quantization site gets (bits, scheme, intervals), the corrected biases,
// and the provenance of the plan; serializable to JSON (quant stage). A hand-written plan can be
// applied without a search.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vitq/quant.h"
#include "vitq/status.h"

namespace vitq {

struct SitePlan {
  QuantScheme scheme;
  QParams params;
};

struct QuantPlan {
  // 2: quantizer kinds (log_sqrt2; log_sqrt2_row and uniform_row added within version 2: older
  // readers refuse them by name); 1 still read.
  static constexpr int kVersion = 2;
  // Provenance.
  std::string method;        // "liu2021", "minmax", ...
  std::string options_json;  // the method's options as a JSON object (text)
  uint64_t seed = 0;
  std::string calib_dir;
  int calib_size = 0;
  std::string calib_hash;  // HashItemList of the calibration files
  std::string tool_version;
  std::string architecture;
  // Sites: weights "<layer>:w", inputs "<layer>:in", matmul operands "<block>.attn.qk:a" etc.
  std::map<std::string, SitePlan> sites;
  // Corrected biases by layer name (bias correction); layers not listed keep their bias.
  std::map<std::string, std::vector<float>> biases;
  // Float tensors the method replaced, by timm name ("blocks.0.norm1.weight",
  // "blocks.0.attn.qkv.weight"): LayerNorm parameters and weights after the reparameterization,
  // weights already on their integer grid after error-compensated rounding (so that rounding
  // them to the grid returns the method's integers). Applied wherever the plan meets the model
  // (ApplyPlanTensors); a .vitq file stores the result, so the JSON form does not carry them.
  std::map<std::string, std::vector<float>> tensors;
  // Free-form per-site report figures (Pearson before/after, SQNR, ...), kept in the JSON.
  std::string report_json;

  const SitePlan* Find(const std::string& site) const {
    auto it = sites.find(site);
    return it == sites.end() ? nullptr : &it->second;
  }
};

std::string PlanToJson(const QuantPlan& plan);
// Parses and validates (schemes, scale counts, positive finite scales); errors name `source`
// and the site.
Result<QuantPlan> PlanFromJson(const std::string& text, const std::string& source);

}  // namespace vitq
