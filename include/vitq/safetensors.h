// safetensors files: mmap'd, bounds-checked reading and atomic writing (io stage).
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets},
// "__metadata__": {str: str}}, then the raw little-endian tensor data.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vitq/status.h"
#include "vitq/tensor.h"

namespace vitq {

class SafetensorsFile {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    const uint8_t* data;  // points into the mapping; valid while the file object lives
    size_t num_bytes;
  };

  // Maps and validates the whole header: every entry's dtype, shape and offsets must be
  // consistent and inside the file. Errors name the file and the offending tensor or offset.
  static Result<SafetensorsFile> Open(const std::string& path);

  const std::string& path() const { return path_; }
  const Entry* Find(const std::string& name) const;
  const std::vector<Entry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Reads tensor `name` as float32 (F32, F16 and BF16 are accepted and converted). When
  // `expected` is non-empty the shape must match exactly. Errors name file, tensor, both shapes.
  Result<Tensor> ReadF32(const std::string& name, const Shape& expected = {}) const;
  // Reads tensor `name` with exactly this dtype and shape (no conversion).
  Result<Tensor> ReadExact(const std::string& name, DType dtype, const Shape& expected) const;

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: name and a tensor (any dtype) that stays alive during the call.
struct NamedTensor {
  std::string name;
  const Tensor* tensor;
};

// Writes a safetensors file atomically (a temporary file in the same folder, then rename), so
// `path` is either untouched or complete.
Status WriteSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

// Writes text atomically (temporary file + rename).
Status WriteFileAtomic(const std::string& path, const std::string& contents);

float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

}  // namespace vitq
