// ONNX export (export stage): a .vitq file as a QDQ ONNX graph, or a float model as a plain ONNX
// graph, built with the ONNX protobuf library (Debian's libonnx-dev) and written atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vitq/model.h"
#include "vitq/qfile.h"
#include "vitq/status.h"

namespace vitq {

struct OnnxExportOptions {
  // Parts of a plan that Q/DQ cannot express (a log-√2 attention grid, fc2's per-token input
  // grid) are refused unless this is set; with it they are written as float operations
  // (OnnxExportInfo::approximations says what).
  bool approximate = false;
};

struct OnnxExportInfo {
  int opset = 0;
  int64_t nodes = 0;
  int64_t qdq_sites = 0;      // QuantizeLinear/DequantizeLinear pairs on activations
  int64_t int8_weights = 0;   // weight tensors stored as int8 behind DequantizeLinear
  int64_t clipped_sites = 0;  // sub-8-bit activation grids: a Clip before QuantizeLinear
  int64_t bytes = 0;          // of the written file
  std::vector<std::string> approximations;  // one line per part not exported as Q/DQ
  std::string input = "pixel_values", output = "logits";
};

// The quantized model as Q/DQ ONNX (opset 17): int8 weights (per output channel or per tensor)
// through DequantizeLinear, every activation site of the plan as a QuantizeLinear/
// DequantizeLinear pair at the place the integer engine quantizes it (both attention matmuls'
// operands included), LayerNorm, softmax and GELU in float. Input "pixel_values" [N, C, H, W]
// (preprocessed as the model's config says), output "logits" [N, classes]. Errors: a plan Q/DQ
// cannot express (log-√2 attention or per-token grids without `approximate`, per-channel
// activations, asymmetric weights), or the file cannot be written (nothing is left behind).
Result<OnnxExportInfo> ExportOnnx(const QuantizedModel& model, const std::string& path,
                                  const OnnxExportOptions& options = {});
// The float model as ONNX (opset 17), same inputs and outputs.
Result<OnnxExportInfo> ExportOnnxFloat(const ViTModel& model, const std::string& path);

}  // namespace vitq
