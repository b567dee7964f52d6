// Tensor (owning, 64-byte aligned) and TensorView (non-owning): the core data containers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vitq {

enum class DType : uint8_t { kF32, kF16, kBF16, kI8, kU8, kI32 };

struct DTypeInfo {
  DType dtype;
  const char* name;  // safetensors spelling: "F32", "I8", ...
  size_t num_bytes;
};
const DTypeInfo& GetDTypeInfo(DType dtype);
// Parses a safetensors dtype name; returns false when it is not one vitq knows.
bool ParseDType(const std::string& name, DType* dtype);

using Shape = std::vector<int64_t>;
int64_t NumElements(const Shape& shape);
std::string ShapeToString(const Shape& shape);  // "[197, 192]"

// A non-owning view of contiguous row-major float data. The observer hooks of the forward pass
// hand these out; a hook may modify the values in place (fake quantization does).
struct TensorView {
  float* data = nullptr;
  Shape shape;
  int64_t size() const { return NumElements(shape); }
};

// Owning, 64-byte aligned, contiguous row-major tensor of one dtype.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);  // zero-initialized
  static Tensor F32(Shape shape) { return Tensor(DType::kF32, std::move(shape)); }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t size() const { return NumElements(shape_); }
  size_t num_bytes() const { return static_cast<size_t>(size()) * GetDTypeInfo(dtype_).num_bytes; }
  bool empty() const { return size() == 0; }

  template <typename T>
  T* data() {
    return reinterpret_cast<T*>(buffer_.get());
  }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(buffer_.get());
  }
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }
  TensorView view() { return TensorView{f32(), shape_}; }

  // Same data, new shape with the same number of elements.
  void Reshape(Shape shape);
  Tensor Clone() const;

 private:
  struct FreeDeleter {
    void operator()(void* p) const;
  };
  DType dtype_ = DType::kF32;
  Shape shape_ = {0};  // default-constructed: no elements
  std::unique_ptr<void, FreeDeleter> buffer_;
};

}  // namespace vitq
