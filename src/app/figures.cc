// The figures `vitq info` and `vitq eval` print, as JSON (app).
#include <filesystem>

#include "vitq/app.h"
#include "vitq/dist.h"

namespace vitq {

std::string DumpJson(const nlohmann::ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<ModelInfo> DescribeModel(const std::string& path) {
  std::unique_ptr<QuantizedModel> quantized;
  Result<ViTModel> model = Status::Internal("unset");
  int64_t stored_bytes = 0;
  if (IsQuantizedFile(path)) {
    VITQ_ASSIGN_OR_RETURN(QuantizedModel q, LoadQuantizedFile(path));
    quantized = std::make_unique<QuantizedModel>(std::move(q));
    stored_bytes = quantized->StoredBytes();
    model = std::move(quantized->model);  // `quantized` keeps the plan and integer weights
  } else {
    model = LoadModel(path);
  }
  if (!model.ok()) return model.status();
  const ViTConfig& c = model->spec.config;
  int64_t params = model->NumParams();
  if (quantized) {
    for (const auto& [name, l] : quantized->linear) params += l.rows * l.cols;
  }
  std::error_code ec;
  auto file_bytes = std::filesystem::file_size(model->spec.weights_path, ec);
  // The model description (architecture numbers, preprocessing, class names) as stored in .vitq
  // files, plus the figures of this command.
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(ModelSpecToJson(model->spec));
  j["model"] = path;
  j["tokens"] = c.num_tokens();
  j["parameters"] = params;
  j["fp32_bytes"] = params * 4;
  j["file_bytes"] = ec ? 0 : static_cast<int64_t>(file_bytes);
  if (!quantized) return ModelInfo{model->spec, std::move(j)};
  // Bits per module of a quantized file: weights and inputs of each linear layer.
  const QuantPlan& plan = quantized->plan;
  j["method"] = plan.method;
  j["quantized_bytes"] = stored_bytes;
  j["format_version"] = quantized->format_version;
  // Time to verify the xxHash checksum of the tensor data on load (0 for version 2).
  j["checksum_ms"] = quantized->checksum_seconds * 1e3;
  Status runs = CheckIntegerPlan(plan, c);
  j["integer_engine"] = runs.ok();
  if (!runs.ok()) j["integer_engine_note"] = runs.message();
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const auto& [layer, shape] : LinearShapes(c)) {
    const SitePlan* sw = plan.Find(layer + ":w");
    const SitePlan* sx = plan.Find(layer + ":in");
    const int64_t n = shape[0] * shape[1];
    int64_t bytes = n * 4;
    auto it = quantized->linear.find(layer);
    if (it != quantized->linear.end()) {
      bytes = shape[0] * PackedRowBytes(shape[1], it->second.scheme.bits) +
              static_cast<int64_t>(it->second.params.scale.size()) * 4;
    }
    layers.push_back({{"layer", layer},
                      {"wbits", sw ? sw->scheme.bits : 32},
                      {"abits", sx ? sx->scheme.bits : 32},
                      {"weights", n},
                      {"weight_bytes", bytes}});
  }
  j["layers"] = layers;
  return ModelInfo{model->spec, std::move(j)};
}

void AddProcessFigures(nlohmann::ordered_json* j) {
  (*j)["processes"] = dist::Size();
  if (dist::Size() > 1) {  // what this process (rank 0) received from the collectives
    (*j)["collectives"] = dist::Collectives();
    (*j)["bytes_received"] = dist::BytesReceived();
  }
}

nlohmann::ordered_json EvalFigures(const EvalResult& r, const Runnable& model,
                                   const std::string& model_path, const std::string& data,
                                   const std::string& reference, int batch, int threads) {
  nlohmann::ordered_json j;
  j["model"] = model_path;
  j["data"] = data;
  j["engine"] = model.engine;
  if (model.float_sites > 0) j["float_activation_sites"] = model.float_sites;
  j["top1"] = r.top1;
  j["top5"] = r.top5;
  j["images"] = r.images;
  j["skipped"] = r.skipped;
  j["seconds"] = r.seconds;
  j["images_per_second"] = r.images_per_second;
  j["batch"] = batch;
  j["threads"] = threads;
  AddProcessFigures(&j);
  j["size_bytes"] = model.size_bytes;
  if (!reference.empty()) {
    j["reference"] = reference;
    j["agreement"] = r.agreement;
    j["kl"] = r.kl;
    j["logits_sqnr_db"] = r.sqnr_db;
  }
  return j;
}

}  // namespace vitq
