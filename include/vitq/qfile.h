// The .vitq file (qmodel stage): a safetensors container holding the model's tensors under timm
// names, with the model description (architecture, preprocessing, class names) and the
// QuantPlan in its metadata. This version stores float weights plus the plan (the integer
// engine's packed int8/int4 format is a later version). Written atomically; loaded with mmap
// and validated against the plan.
#pragma once

#include <string>

#include "vitq/model.h"
#include "vitq/plan.h"

namespace vitq {

struct QuantizedModel {
  ViTModel model;  // float weights as calibrated (the plan says how to quantize them)
  QuantPlan plan;
};

Status SaveQuantizedFile(const std::string& path, const ViTModel& model, const QuantPlan& plan);
Result<QuantizedModel> LoadQuantizedFile(const std::string& path);
// True when `path` names a .vitq file (by its metadata, or failing that by extension).
bool IsQuantizedFile(const std::string& path);

}  // namespace vitq
