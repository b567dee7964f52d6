// .vitq save/load (qmodel stage). See docs/FORMAT.md.
#include <filesystem>

#include "vitq/qfile.h"
#include "vitq/safetensors.h"
#include "vitq/simulate.h"

namespace vitq {

namespace {
constexpr const char* kFormat = "vitq";
constexpr const char* kFormatVersion = "1";
}  // namespace

Status SaveQuantizedFile(const std::string& path, const ViTModel& model, const QuantPlan& plan) {
  VITQ_RETURN_IF_ERROR(ValidatePlan(plan, model));
  std::vector<std::pair<std::string, Tensor>> stored = TimmCheckpointTensors(model);
  std::vector<NamedTensor> tensors;
  for (const auto& [name, t] : stored) tensors.push_back({name, &t});
  std::map<std::string, std::string> meta = {{"format", kFormat},
                                             {"vitq.version", kFormatVersion},
                                             {"vitq.model", ModelSpecToJson(model.spec)},
                                             {"vitq.plan", PlanToJson(plan)}};
  return WriteSafetensors(path, tensors, meta);
}

Result<QuantizedModel> LoadQuantizedFile(const std::string& path) {
  VITQ_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(path));
  const auto& meta = file.metadata();
  auto get = [&](const char* key) -> Result<std::string> {
    auto it = meta.find(key);
    if (it == meta.end()) {
      return Status::InvalidInput("'" + path + "' is not a .vitq file (metadata has no '" + key +
                                  "')");
    }
    return it->second;
  };
  VITQ_ASSIGN_OR_RETURN(std::string format, get("format"));
  if (format != kFormat)
    return Status::InvalidInput("'" + path + "': format '" + format + "', expected 'vitq'");
  VITQ_ASSIGN_OR_RETURN(std::string version, get("vitq.version"));
  if (version != kFormatVersion) {
    return Status::InvalidInput("'" + path + "': .vitq version " + version +
                                " is not supported (this vitq reads " + kFormatVersion + ")");
  }
  VITQ_ASSIGN_OR_RETURN(std::string spec_json, get("vitq.model"));
  VITQ_ASSIGN_OR_RETURN(std::string plan_json, get("vitq.plan"));
  QuantizedModel q;
  VITQ_ASSIGN_OR_RETURN(q.model.spec, ModelSpecFromJson(spec_json, path));
  q.model.spec.weights_path = path;
  VITQ_ASSIGN_OR_RETURN(q.model.weights, ReadTimmWeights(file, q.model.spec.config));
  VITQ_ASSIGN_OR_RETURN(q.plan, PlanFromJson(plan_json, path));
  Status s = ValidatePlan(q.plan, q.model);
  if (!s.ok()) return s.WithContext("'" + path + "'");
  return q;
}

bool IsQuantizedFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  auto f = SafetensorsFile::Open(path);
  if (f.ok()) {
    auto it = f->metadata().find("format");
    return it != f->metadata().end() && it->second == kFormat;
  }
  return std::filesystem::path(path).extension() == ".vitq";
}

}  // namespace vitq
