// The .vitq file (qmodel stage): a safetensors container with the quantized linear layers'
// integer weights (int8, or 2-4-bit values packed several per byte), their scales and corrected
// biases, every float tensor that stays float (LayerNorm, embeddings, tokens), and the model
// description and QuantPlan in the metadata (docs/FORMAT.md). Written atomically; loaded with
// mmap and validated against the plan.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vitq/model.h"
#include "vitq/plan.h"

namespace vitq {

// One linear layer's weights on the plan's integer grid.
struct QuantizedLinear {
  QuantScheme scheme;
  QParams params;  // the plan's scales and zero points for "<layer>:w"
  Tensor q;        // I8 [out, in], one value per byte (unpacked on load)
};

struct QuantizedModel {
  // The float parts. Quantized layers have an empty weight tensor and their corrected bias.
  ViTModel model;
  // The plan; its corrected biases are folded into `model` (plan.biases is empty).
  QuantPlan plan;
  std::map<std::string, QuantizedLinear> linear;  // by layer name ("blocks.0.attn.qkv")
  // Bytes of the parameters as stored: packed integer weights, their scales, float tensors.
  int64_t StoredBytes() const;
};

// Quantizes `model`'s weights with `plan` and writes the .vitq file atomically. Errors: the plan
// does not fit the model, or a weight site uses an unsigned grid (the format stores signed ones).
Status SaveQuantizedFile(const std::string& path, const ViTModel& model, const QuantPlan& plan);
// Loads and validates a .vitq file (every error names the file and the tensor or site).
Result<QuantizedModel> LoadQuantizedFile(const std::string& path);
// The float model the file stands for: weights (q - zero_point) * scale, corrected biases (for
// the simulated path and for tests).
ViTModel DequantizedModel(const QuantizedModel& q);
// True when `path` names a .vitq file (by its metadata, or failing that by extension).
bool IsQuantizedFile(const std::string& path);

// Weight packing: bits 5-8 are stored one value per byte, 3-4 two per byte, 2 four per byte,
// low bits first, each row padded to whole bytes.
int ValuesPerByte(int bits);
int64_t PackedRowBytes(int64_t cols, int bits);
// rows x cols int8 values (each in the bits' signed range) -> rows x PackedRowBytes bytes.
std::vector<uint8_t> PackWeights(const int8_t* q, int64_t rows, int64_t cols, int bits);
// The inverse (values sign-extended).
void UnpackWeights(const uint8_t* packed, int64_t rows, int64_t cols, int bits, int8_t* q);

}  // namespace vitq
