// `vitq info MODEL`: architecture, parameters, size and preprocessing of a checkpoint (cli).
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "vitq/model.h"
#include "vitq/qfile.h"
#include "vitq/runtime.h"
#include "vitq/simulate.h"

namespace vitq::cli {

void RegisterInfo(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("info", "describe a model checkpoint");
  struct Args {
    std::string model;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model,
                  "model directory (config.json + model.safetensors) or .safetensors file")
      ->required();
  AddCommonOptions(cmd, &args->common, false);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      std::unique_ptr<QuantizedModel> quantized;
      Result<ViTModel> model = Status::Internal("unset");
      int64_t stored_bytes = 0;
      if (IsQuantizedFile(args->model)) {
        auto q = LoadQuantizedFile(args->model);
        if (!q.ok()) return ReportError(q.status());
        quantized = std::make_unique<QuantizedModel>(std::move(q).value());
        stored_bytes = quantized->StoredBytes();
        model = std::move(quantized->model);  // `quantized` keeps the plan and integer weights
      } else {
        model = LoadModel(args->model);
      }
      if (!model.ok()) return ReportError(model.status());
      const ViTConfig& c = model->spec.config;
      const PreprocessConfig& p = model->spec.preprocess;
      int64_t params = model->NumParams();
      if (quantized) {
        for (const auto& [name, l] : quantized->linear) params += l.rows * l.cols;
      }
      std::error_code ec;
      auto file_bytes = std::filesystem::file_size(model->spec.weights_path, ec);
      // The model description (architecture numbers, preprocessing, class names) as stored in
      // .vitq files, plus the figures of this command.
      nlohmann::ordered_json j = nlohmann::ordered_json::parse(ModelSpecToJson(model->spec));
      j["model"] = args->model;
      j["tokens"] = c.num_tokens();
      j["parameters"] = params;
      j["fp32_bytes"] = params * 4;
      j["file_bytes"] = ec ? 0 : static_cast<int64_t>(file_bytes);
      // Bits per module of a quantized file: weights and inputs of each linear layer.
      nlohmann::ordered_json layers = nlohmann::ordered_json::array();
      if (quantized) {
        const QuantPlan& plan = quantized->plan;
        j["method"] = plan.method;
        j["quantized_bytes"] = stored_bytes;
        j["format_version"] = quantized->format_version;
        // Time to verify the xxHash checksum of the tensor data on load (0 for version 2).
        j["checksum_ms"] = quantized->checksum_seconds * 1e3;
        Status runs = CheckIntegerPlan(plan, c);
        j["integer_engine"] = runs.ok();
        if (!runs.ok()) j["integer_engine_note"] = runs.message();
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
      }
      if (args->common.json) {
        PrintJson(j);
        return 0;
      }
      std::printf("model          %s (%s layout)\n", args->model.c_str(),
                  model->spec.layout.c_str());
      std::printf("architecture   %s%s\n", c.architecture.c_str(),
                  c.dist_token ? " (distilled)" : "");
      std::printf("input          %dx%dx%d, patch %d, %d tokens\n", c.in_chans, c.img_size,
                  c.img_size, c.patch_size, c.num_tokens());
      std::printf("dims           embed %d, depth %d, heads %d, mlp %d, classes %d\n", c.embed_dim,
                  c.depth, c.num_heads, c.mlp_hidden, c.num_classes);
      std::printf("parameters     %lld (%.2f MB as fp32; file %.2f MB)\n",
                  static_cast<long long>(params), params * 4 / 1e6, ec ? 0.0 : file_bytes / 1e6);
      std::printf("preprocessing  %s\n", p.Describe().c_str());
      std::printf("class names    %s\n",
                  model->spec.class_names.empty() ? "none (indices only)" : "yes");
      if (quantized) {
        std::printf("quantized      %s, %.2f MB of parameters as stored (fp32 %.2f MB)\n",
                    quantized->plan.method.c_str(), j["quantized_bytes"].get<int64_t>() / 1e6,
                    params * 4 / 1e6);
        if (quantized->format_version >= 3) {
          std::printf("file format    version %d, checksum verified in %.2f ms\n",
                      quantized->format_version, quantized->checksum_seconds * 1e3);
        } else {
          std::printf("file format    version %d (no checksum)\n", quantized->format_version);
        }
        std::printf("integer engine %s\n",
                    j["integer_engine"].get<bool>()
                        ? "yes"
                        : ("no: " + j["integer_engine_note"].get<std::string>()).c_str());
        std::printf("  %-22s %4s %4s %10s %12s\n", "layer", "W", "A", "weights", "bytes");
        for (const auto& l : layers) {
          std::printf("  %-22s %4d %4d %10lld %12lld\n", l["layer"].get<std::string>().c_str(),
                      l["wbits"].get<int>(), l["abits"].get<int>(),
                      static_cast<long long>(l["weights"].get<int64_t>()),
                      static_cast<long long>(l["weight_bytes"].get<int64_t>()));
        }
      }
      return 0;
    };
  });
}

}  // namespace vitq::cli
