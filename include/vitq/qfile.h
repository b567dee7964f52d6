// The .vitq file (qmodel stage): a safetensors container with the quantized linear layers'
// integer weights (int8, or 2-7-bit values bit-packed: four 6-bit values in three bytes), their
// scales and corrected biases, every float tensor that stays float (LayerNorm, embeddings,
// tokens), the model description, the QuantPlan and an xxHash checksum of the tensor data in the
// metadata (docs/FORMAT.md). Written atomically; loaded with mmap, checked against the checksum
// and validated against the plan.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vitq/model.h"
#include "vitq/plan.h"

namespace vitq {

// One linear layer's weights on the plan's integer grid, kept as stored (packed): the integer
// engine unpacks one layer at a time into its GEMM operand, so no int8 copy of the whole model
// is held beside the GEMMs' own.
struct QuantizedLinear {
  QuantScheme scheme;
  QParams params;              // the plan's scales and zero points for "<layer>:w"
  int64_t rows = 0, cols = 0;  // [out, in]
  // 8 bits: I8 [rows, cols]; 2-7 bits: U8 [rows, PackedRowBytes(cols, bits)] (PackWeights).
  Tensor packed;
  // I8 [rows, cols], one value per byte (a new tensor).
  Tensor Unpacked() const;
};

struct QuantizedModel {
  // The float parts. Quantized layers have an empty weight tensor and their corrected bias.
  ViTModel model;
  // The plan; its corrected biases are folded into `model` (plan.biases is empty).
  QuantPlan plan;
  std::map<std::string, QuantizedLinear> linear;  // by layer name ("blocks.0.attn.qkv")
  // Bytes of the parameters as stored: packed integer weights, their scales, float tensors.
  int64_t StoredBytes() const;
  int format_version = 0;         // of the file it was loaded from
  double checksum_seconds = 0.0;  // time spent verifying the checksum on load (0: none stored)
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

// Weight packing (format version 3), bits 2-8: each row is a little-endian bit string, value j
// in bits [j*bits, (j+1)*bits) (bit i of the row is bit i%8 of byte i/8), two's complement,
// each row padded to whole bytes with zero bits. 8 bits is one value per byte.
int64_t PackedRowBytes(int64_t cols, int bits);
// rows x cols int8 values (each in the bits' signed range) -> rows x PackedRowBytes bytes.
std::vector<uint8_t> PackWeights(const int8_t* q, int64_t rows, int64_t cols, int bits);
// The inverse (values sign-extended).
void UnpackWeights(const uint8_t* packed, int64_t rows, int64_t cols, int bits, int8_t* q);
// The version-2 layout (read only): bits 5-8 one value per byte, 3-4 two per byte, 2 four per
// byte, at bit offset (j mod k)*(8/k).
int64_t PackedRowBytesV2(int64_t cols, int bits);
void UnpackWeightsV2(const uint8_t* packed, int64_t rows, int64_t cols, int bits, int8_t* q);
// The checksum the metadata stores ("xxh3-64:" and 16 hex digits) of byte ranges hashed in order.
std::string TensorDataChecksum(const std::vector<std::pair<const uint8_t*, size_t>>& ranges);

}  // namespace vitq
