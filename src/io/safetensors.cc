// safetensors reader (mmap + validation) and atomic writer (io stage).
#include "vitq/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "vitq/files.h"
#include "vitq/json_depth.h"

namespace vitq {

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr != nullptr && size > 0) munmap(addr, size);
  }
};

float HalfToFloat(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign << 31;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400) == 0);
      bits = (sign << 31) | ((127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = (sign << 31) | 0x7f800000u | (mant << 13);
  } else {
    bits = (sign << 31) | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    int shift = 14 - exp;
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return sign | half;
  }
  uint32_t half = sign | (exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;
  return half;
}

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  auto fail = [&](const std::string& what) {
    return Status::InvalidInput("safetensors file '" + path + "': " + what);
  };
  int fd;
  size_t file_size;
  VITQ_RETURN_IF_ERROR(OpenRegularFile(path, "safetensors file", &fd, &file_size));
  if (file_size < 8) {
    ::close(fd);
    return fail("file is " + std::to_string(file_size) +
                " bytes, expected at least 8 (the header length); truncated?");
  }
  auto mapping = std::make_shared<Mapping>();
  void* addr = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED) return fail(std::string("mmap failed: ") + std::strerror(errno));
  mapping->addr = addr;
  mapping->size = file_size;
  const uint8_t* base = static_cast<const uint8_t*>(addr);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  if (header_len > file_size - 8) {
    return fail("header length " + std::to_string(header_len) + " at byte 0 exceeds the file (" +
                std::to_string(file_size) + " bytes); truncated or not a safetensors file");
  }
  nlohmann::json header;
  try {
    header =
        nlohmann::json::parse(base + 8, base + 8 + header_len, JsonDepthGuard<nlohmann::json>());
  } catch (const std::exception& e) {
    return fail(std::string("header (bytes 8..") + std::to_string(8 + header_len) +
                ") is not valid JSON: " + e.what());
  }
  if (!header.is_object()) return fail("header is not a JSON object");
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = mapping;
  const uint8_t* data_start = base + 8 + header_len;
  size_t data_size = file_size - 8 - header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return fail("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return fail("__metadata__." + m.key() + " is not a string");
        file.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets")) {
      return bad("expected an object with dtype, shape and data_offsets");
    }
    Entry e;
    e.name = name;
    if (!v["dtype"].is_string() || !ParseDType(v["dtype"].get<std::string>(), &e.dtype)) {
      return bad("unsupported dtype " + v["dtype"].dump() +
                 " (expected F32, F16, BF16, I8, U8, I32)");
    }
    if (!v["shape"].is_array()) return bad("shape is not an array");
    if (v["shape"].size() > 8) return bad("shape " + v["shape"].dump() + " has more than 8 dims");
    uint64_t num_elements = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (int64_t{1} << 40))
        return bad("shape " + v["shape"].dump() + " has an invalid dimension");
      // The element count (and its byte size) must not overflow before it is compared with
      // the data offsets.
      if (__builtin_mul_overflow(num_elements, d.get<uint64_t>(), &num_elements) ||
          num_elements > (uint64_t{1} << 60)) {
        return bad("shape " + v["shape"].dump() + " has more elements than any file can hold");
      }
      e.shape.push_back(d.get<int64_t>());
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned()) {
      return bad("data_offsets " + off.dump() + " is not a pair of non-negative integers");
    }
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] point outside the data section (" + std::to_string(data_size) +
                 " bytes, starting at byte " + std::to_string(8 + header_len) + ")");
    }
    size_t expected_bytes =
        static_cast<size_t>(NumElements(e.shape)) * GetDTypeInfo(e.dtype).num_bytes;
    if (end - begin != expected_bytes) {
      return bad("data_offsets cover " + std::to_string(end - begin) + " bytes but " +
                 GetDTypeInfo(e.dtype).name + " " + ShapeToString(e.shape) + " needs " +
                 std::to_string(expected_bytes));
    }
    e.data = data_start + begin;
    e.num_bytes = expected_bytes;
    file.index_[name] = file.entries_.size();
    file.entries_.push_back(std::move(e));
  }
  // Tensors may not share bytes: overlapping offsets would alias one tensor's data as another's.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : file.entries_) {
    if (e.num_bytes > 0) by_offset.push_back(&e);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry* prev = by_offset[i - 1];
    const Entry* cur = by_offset[i];
    if (prev->data + prev->num_bytes > cur->data) {
      return fail("tensors '" + prev->name + "' and '" + cur->name +
                  "' overlap in the data section (byte " + std::to_string(cur->data - data_start) +
                  ")");
    }
  }
  return file;
}

const SafetensorsFile::Entry* SafetensorsFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Result<Tensor> SafetensorsFile::ReadF32(const std::string& name, const Shape& expected) const {
  const Entry* e = Find(name);
  if (e == nullptr) {
    return Status::InvalidInput(
        "safetensors file '" + path_ + "': missing tensor '" + name + "'" +
        (expected.empty() ? "" : " (expected shape " + ShapeToString(expected) + ")"));
  }
  if (!expected.empty() && e->shape != expected) {
    return Status::InvalidInput("safetensors file '" + path_ + "': tensor '" + name +
                                "' has shape " + ShapeToString(e->shape) + ", expected " +
                                ShapeToString(expected));
  }
  Tensor t = Tensor::F32(e->shape);
  float* out = t.f32();
  int64_t n = t.size();
  switch (e->dtype) {
    case DType::kF32:
      std::memcpy(out, e->data, e->num_bytes);
      break;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, e->data + 2 * i, 2);
        out[i] = HalfToFloat(h);
      }
      break;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, e->data + 2 * i, 2);
        uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    default:
      return Status::InvalidInput("safetensors file '" + path_ + "': tensor '" + name +
                                  "' has dtype " + GetDTypeInfo(e->dtype).name +
                                  ", expected a float dtype (F32, F16 or BF16)");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) {
      return Status::InvalidInput("safetensors file '" + path_ + "': tensor '" + name +
                                  "' has a non-finite value (" + std::to_string(out[i]) +
                                  ") at element " + std::to_string(i));
    }
  }
  return t;
}

Result<Tensor> SafetensorsFile::ReadExact(const std::string& name, DType dtype,
                                          const Shape& expected) const {
  const Entry* e = Find(name);
  if (e == nullptr) {
    return Status::InvalidInput("safetensors file '" + path_ + "': missing tensor '" + name + "'");
  }
  if (e->dtype != dtype || e->shape != expected) {
    return Status::InvalidInput("safetensors file '" + path_ + "': tensor '" + name + "' is " +
                                GetDTypeInfo(e->dtype).name + " " + ShapeToString(e->shape) +
                                ", expected " + GetDTypeInfo(dtype).name + " " +
                                ShapeToString(expected));
  }
  Tensor t(dtype, e->shape);
  if (e->num_bytes > 0) std::memcpy(t.data<uint8_t>(), e->data, e->num_bytes);
  return t;
}

namespace {

// The temporary file of the write in progress, removed by the SIGINT/SIGTERM handler so that an
// interrupted write leaves neither a partial output nor a stray temporary file.
std::mutex g_write_mutex;
char g_tmp_path[4096];
volatile sig_atomic_t g_tmp_active = 0;
struct sigaction g_old_int, g_old_term;

void RemoveTempAndReraise(int sig) {
  if (g_tmp_active) ::unlink(g_tmp_path);  // async-signal-safe
  sigaction(sig, sig == SIGINT ? &g_old_int : &g_old_term, nullptr);
  raise(sig);  // delivered with the previous disposition once this handler returns
}

// Installs the handler for the duration of one write; restores the previous ones on exit.
class TempFileGuard {
 public:
  explicit TempFileGuard(const std::string& tmp) {
    std::snprintf(g_tmp_path, sizeof g_tmp_path, "%s", tmp.c_str());
    g_tmp_active = tmp.size() < sizeof g_tmp_path;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = RemoveTempAndReraise;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &g_old_int);
    sigaction(SIGTERM, &sa, &g_old_term);
  }
  ~TempFileGuard() {
    sigaction(SIGINT, &g_old_int, nullptr);
    sigaction(SIGTERM, &g_old_term, nullptr);
    g_tmp_active = 0;
  }
};

}  // namespace

Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return Status::InvalidInput("output '" + path +
                                "' exists and is not a regular file; refusing to replace it");
  }
  std::lock_guard<std::mutex> lock(g_write_mutex);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  TempFileGuard guard(tmp);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::InvalidInput("cannot write '" + tmp + "': " + std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      return Status::InvalidInput("writing '" + tmp + "' failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::InvalidInput("cannot rename '" + tmp + "' to '" + path + "': " + err);
  }
  return Status::Ok();
}

Status WriteSafetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& nt : tensors) {
    size_t bytes = nt.tensor->num_bytes();
    header[nt.name] = {{"dtype", GetDTypeInfo(nt.tensor->dtype()).name},
                       {"shape", nt.tensor->shape()},
                       {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  while ((8 + json.size()) % 8 != 0) json.push_back(' ');  // align the data section
  std::string contents;
  contents.reserve(8 + json.size() + offset);
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) contents.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  contents += json;
  for (const auto& nt : tensors) {
    contents.append(reinterpret_cast<const char*>(nt.tensor->data<uint8_t>()),
                    nt.tensor->num_bytes());
  }
  return WriteFileAtomic(path, contents);
}

}  // namespace vitq
