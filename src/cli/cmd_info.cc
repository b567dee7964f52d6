// `vitq info MODEL`: architecture, parameters, size and preprocessing of a checkpoint (cli).
#include <cstdio>

#include "common.h"

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
      auto info = DescribeModel(args->model);
      if (!info.ok()) return ReportError(info.status());
      const nlohmann::ordered_json& j = info->json;
      if (args->common.json) {
        PrintJson(j);
        return 0;
      }
      const ModelSpec& spec = info->spec;
      const ViTConfig& c = spec.config;
      const PreprocessConfig& p = spec.preprocess;
      const int64_t params = j["parameters"].get<int64_t>();
      const int64_t file_bytes = j["file_bytes"].get<int64_t>();
      std::printf("model          %s (%s layout)\n", args->model.c_str(),
                  spec.layout.c_str());
      std::printf("architecture   %s%s\n", c.architecture.c_str(),
                  c.dist_token ? " (distilled)" : "");
      std::printf("input          %dx%dx%d, patch %d, %d tokens\n", c.in_chans, c.img_size,
                  c.img_size, c.patch_size, c.num_tokens());
      std::printf("dims           embed %d, depth %d, heads %d, mlp %d, classes %d\n", c.embed_dim,
                  c.depth, c.num_heads, c.mlp_hidden, c.num_classes);
      std::printf("parameters     %lld (%.2f MB as fp32; file %.2f MB)\n",
                  static_cast<long long>(params), params * 4 / 1e6, file_bytes / 1e6);
      std::printf("preprocessing  %s\n", p.Describe().c_str());
      std::printf("class names    %s\n",
                  spec.class_names.empty() ? "none (indices only)" : "yes");
      if (j.contains("quantized_bytes")) {
        std::printf("quantized      %s, %.2f MB of parameters as stored (fp32 %.2f MB)\n",
                    j["method"].get<std::string>().c_str(), j["quantized_bytes"].get<int64_t>() / 1e6,
                    params * 4 / 1e6);
        if (j["format_version"].get<int>() >= 3) {
          std::printf("file format    version %d, checksum verified in %.2f ms\n",
                      j["format_version"].get<int>(), j["checksum_ms"].get<double>());
        } else {
          std::printf("file format    version %d (no checksum)\n", j["format_version"].get<int>());
        }
        std::printf("integer engine %s\n",
                    j["integer_engine"].get<bool>()
                        ? "yes"
                        : ("no: " + j["integer_engine_note"].get<std::string>()).c_str());
        std::printf("  %-22s %4s %4s %10s %12s\n", "layer", "W", "A", "weights", "bytes");
        for (const auto& l : j["layers"]) {
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
