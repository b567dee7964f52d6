// `vitq export MODEL --format onnx|onnx-float --out M.onnx`: a .vitq file as a Q/DQ ONNX graph,
// or a float model as ONNX (cli).
#include <cstdio>

#include "common.h"
#include "vitq/export.h"
#include "vitq/qfile.h"

namespace vitq::cli {

void RegisterExport(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand(
      "export", "write a quantized model as Q/DQ ONNX, or a float model as ONNX");
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
                "write parts Q/DQ cannot express (a log-sqrt2 attention grid) as float "
                "operations instead of refusing the export; the output lists them");
  AddCommonOptions(cmd, &args->common, false);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      Status paths = CheckOutputPaths({{"--out", args->out}}, ModelInputFiles(args->model));
      if (!paths.ok()) return ReportError(paths);
      const bool quantized_file = IsQuantizedFile(args->model);
      Result<OnnxExportInfo> info = Status::Internal("not run");
      if (args->format == "onnx") {
        if (!quantized_file) {
          return ReportError(Status::InvalidInput(
              "'" + args->model +
              "' is a float model; --format onnx exports a quantized .vitq file (make one with "
              "vitq quantize), --format onnx-float exports this model as it is"));
        }
        auto q = LoadQuantizedFile(args->model);
        if (!q.ok()) return ReportError(q.status());
        OnnxExportOptions opt;
        opt.approximate = args->approximate;
        info = ExportOnnx(q.value(), args->out, opt);
      } else if (quantized_file) {
        auto q = LoadQuantizedFile(args->model);
        if (!q.ok()) return ReportError(q.status());
        info = ExportOnnxFloat(DequantizedModel(q.value()), args->out);
      } else {
        auto m = LoadModel(args->model);
        if (!m.ok()) return ReportError(m.status());
        info = ExportOnnxFloat(m.value(), args->out);
      }
      if (!info.ok()) return ReportError(info.status().WithContext("'" + args->model + "'"));
      if (args->common.json) {
        PrintJson({{"model", args->model},
                   {"out", args->out},
                   {"format", args->format},
                   {"opset", info->opset},
                   {"nodes", info->nodes},
                   {"qdq_sites", info->qdq_sites},
                   {"int8_weights", info->int8_weights},
                   {"clipped_sites", info->clipped_sites},
                   {"approximations", info->approximations},
                   {"input", info->input},
                   {"output", info->output},
                   {"bytes", info->bytes}});
        return 0;
      }
      std::printf("wrote %s (%.2f MB, opset %d, %lld nodes", args->out.c_str(), info->bytes / 1e6,
                  info->opset, static_cast<long long>(info->nodes));
      if (args->format == "onnx") {
        std::printf(", %lld int8 weight tensors, %lld Q/DQ activation sites",
                    static_cast<long long>(info->int8_weights),
                    static_cast<long long>(info->qdq_sites));
        if (info->clipped_sites > 0) {
          std::printf(" (%lld on sub-8-bit grids with a Clip)",
                      static_cast<long long>(info->clipped_sites));
        }
      }
      std::printf(")\ninput %s [N, C, H, W] float, preprocessed as `vitq info` describes; output %s\n",
                  info->input.c_str(), info->output.c_str());
      for (const std::string& a : info->approximations) {
        std::printf("approximation: %s\n", a.c_str());
      }
      return 0;
    };
  });
}

}  // namespace vitq::cli
