// `vitq export MODEL --format onnx|onnx-float --out M.onnx`: a .vitq file as a Q/DQ ONNX graph,
// or a float model as ONNX (cli).
#include <cstdio>

#include "common.h"

namespace vitq::cli {

void RegisterExport(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("export",
                                  "write a quantized model as Q/DQ ONNX, or a float model as ONNX");
  struct Args {
    std::string model, out, format = "onnx";
    bool approximate = false;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model,
                  ".vitq file (--format onnx), or a model directory / .safetensors / .vitq file "
                  "(--format onnx-float; a .vitq file gives its dequantized weights)")
      ->required();
  cmd->add_option("--out", args->out, "the ONNX file to write (atomically)")->required();
  cmd->add_option("--format", args->format,
                  "onnx: int8 weights and Q/DQ pairs at every site of the plan (opset 17); "
                  "onnx-float: the float model")
      ->check(CLI::IsMember({"onnx", "onnx-float"}))
      ->capture_default_str();
  cmd->add_flag("--approximate", args->approximate,
                "write parts Q/DQ cannot express (a log-sqrt2 or per-row attention grid, fc2's "
                "per-token input grid) as float operations instead of refusing the export; the "
                "output lists them");
  AddCommonOptions(cmd, &args->common, false);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      ExportJob job;
      job.model = args->model;
      job.out = args->out;
      job.format = args->format;
      job.approximate = args->approximate;
      auto r = RunExportJob(job);
      if (!r.ok()) return ReportError(r.status());
      const nlohmann::ordered_json& j = r.value();
      if (args->common.json) {
        PrintJson(j);
        return 0;
      }
      auto num = [&](const char* key) { return static_cast<long long>(j[key].get<int64_t>()); };
      std::printf("wrote %s (%.2f MB, opset %lld, %lld nodes", args->out.c_str(),
                  num("bytes") / 1e6, num("opset"), num("nodes"));
      if (args->format == "onnx") {
        std::printf(", %lld int8 weight tensors, %lld Q/DQ activation sites", num("int8_weights"),
                    num("qdq_sites"));
        if (num("clipped_sites") > 0) {
          std::printf(" (%lld on sub-8-bit grids with a Clip)", num("clipped_sites"));
        }
      }
      std::printf(
          ")\ninput %s [N, C, H, W] float, preprocessed as `vitq info` describes; output %s\n",
          j["input"].get<std::string>().c_str(), j["output"].get<std::string>().c_str());
      for (const auto& a : j["approximations"]) {
        std::printf("approximation: %s\n", a.get<std::string>().c_str());
      }
      return 0;
    };
  });
}

}  // namespace vitq::cli
