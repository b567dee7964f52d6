// `vitq export` as the front ends run it (app): output checks, loading, the export, its figures.
#include "vitq/app.h"
#include "vitq/export.h"
#include "vitq/qfile.h"

namespace vitq {

Result<nlohmann::ordered_json> RunExportJob(const ExportJob& job) {
  if (job.format != "onnx" && job.format != "onnx-float") {
    return Status::Usage("format: expected 'onnx' or 'onnx-float', found '" + job.format + "'");
  }
  VITQ_RETURN_IF_ERROR(CheckOutputPaths({{"--out", job.out}}, ModelInputFiles(job.model)));
  const bool quantized_file = IsQuantizedFile(job.model);
  Result<OnnxExportInfo> info = Status::Internal("not run");
  if (job.format == "onnx") {
    if (!quantized_file) {
      return Status::InvalidInput(
          "'" + job.model +
          "' is a float model; --format onnx exports a quantized .vitq file (make one with "
          "vitq quantize), --format onnx-float exports this model as it is");
    }
    VITQ_ASSIGN_OR_RETURN(QuantizedModel q, LoadQuantizedFile(job.model));
    OnnxExportOptions opt;
    opt.approximate = job.approximate;
    info = ExportOnnx(q, job.out, opt);
  } else if (quantized_file) {
    VITQ_ASSIGN_OR_RETURN(QuantizedModel q, LoadQuantizedFile(job.model));
    info = ExportOnnxFloat(DequantizedModel(q), job.out);
  } else {
    VITQ_ASSIGN_OR_RETURN(ViTModel m, LoadModel(job.model));
    info = ExportOnnxFloat(m, job.out);
  }
  if (!info.ok()) return info.status().WithContext("'" + job.model + "'");
  return nlohmann::ordered_json{{"model", job.model},
                                {"out", job.out},
                                {"format", job.format},
                                {"opset", info->opset},
                                {"nodes", info->nodes},
                                {"qdq_sites", info->qdq_sites},
                                {"int8_weights", info->int8_weights},
                                {"clipped_sites", info->clipped_sites},
                                {"approximations", info->approximations},
                                {"input", info->input},
                                {"output", info->output},
                                {"bytes", info->bytes}};
}

}  // namespace vitq
