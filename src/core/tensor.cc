// Tensor storage, dtype table and the internal check helper (core stage).
#include "vitq/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "vitq/status.h"

namespace vitq {
namespace {
constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},   {DType::kI32, "I32", 4},
};
}  // namespace

const DTypeInfo& GetDTypeInfo(DType dtype) { return kDTypes[static_cast<int>(dtype)]; }

bool ParseDType(const std::string& name, DType* dtype) {
  for (const auto& info : kDTypes) {
    if (name == info.name) {
      *dtype = info.dtype;
      return true;
    }
  }
  return false;
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

void Tensor::FreeDeleter::operator()(void* p) const { std::free(p); }

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_) VITQ_CHECK(d >= 0, "negative dimension in " + ShapeToString(shape_));
  size_t bytes = num_bytes();
  size_t padded = (bytes + 63) / 64 * 64;
  if (padded == 0) padded = 64;
  void* p = std::aligned_alloc(64, padded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, padded);
  buffer_.reset(p);
}

void Tensor::Reshape(Shape shape) {
  VITQ_CHECK(NumElements(shape) == size(),
             "reshape " + ShapeToString(shape_) + " to " + ShapeToString(shape));
  shape_ = std::move(shape);
}

Tensor Tensor::Clone() const {
  Tensor t(dtype_, shape_);
  if (num_bytes() > 0) std::memcpy(t.buffer_.get(), buffer_.get(), num_bytes());
  return t;
}

namespace internal {
void CheckFailed(const char* cond, const char* file, int line, const std::string& msg) {
  std::ostringstream os;
  os << "internal check failed at " << file << ":" << line << ": " << cond << " (" << msg << ")";
  throw std::logic_error(os.str());
}
}  // namespace internal

}  // namespace vitq
