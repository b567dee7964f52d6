// .vitq save/load (qmodel stage). See docs/FORMAT.md.
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "vitq/qfile.h"
#include "vitq/safetensors.h"
#include "vitq/simulate.h"

namespace vitq {

namespace {
constexpr const char* kFormat = "vitq";
constexpr const char* kFormatVersion = "3";
constexpr const char* kChecksumKey = "vitq.checksum";
constexpr const char* kChecksumPrefix = "xxh3-64:";

int ValuesPerByteV2(int bits) { return bits <= 2 ? 4 : bits <= 4 ? 2 : 1; }

// The channel of element (r, c) of a [rows, cols] weight under `scheme`.
int64_t ChannelOf(const QuantScheme& s, int64_t r, int64_t c) {
  if (s.granularity == Granularity::kPerTensor) return 0;
  return s.axis == 0 ? r : c;
}

Tensor QuantizeWeight(const Tensor& w, const QuantScheme& s, const QParams& p) {
  const int64_t rows = w.dim(0), cols = w.dim(1);
  Tensor q(DType::kI8, {rows, cols});
  const float* x = w.f32();
  int8_t* out = q.data<int8_t>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      int64_t ch = ChannelOf(s, r, c);
      out[r * cols + c] = static_cast<int8_t>(
          QuantizeValue(x[r * cols + c], p.scale[ch], p.zero_point[ch], s.qmin(), s.qmax()));
    }
  }
  return q;
}

std::string Where(const std::string& path) { return "'" + path + "'"; }
}  // namespace

int64_t PackedRowBytes(int64_t cols, int bits) { return (cols * bits + 7) / 8; }

std::vector<uint8_t> PackWeights(const int8_t* q, int64_t rows, int64_t cols, int bits) {
  const int64_t row_bytes = PackedRowBytes(cols, bits);
  const uint32_t mask = (1u << bits) - 1;
  std::vector<uint8_t> out(static_cast<size_t>(rows * row_bytes), 0);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = out.data() + r * row_bytes;
    const int8_t* src = q + r * cols;
    uint32_t acc = 0;  // pending bits, low first
    int pending = 0;
    for (int64_t c = 0; c < cols; ++c) {
      acc |= (static_cast<uint32_t>(static_cast<uint8_t>(src[c])) & mask) << pending;
      pending += bits;
      while (pending >= 8) {
        *dst++ = static_cast<uint8_t>(acc);
        acc >>= 8;
        pending -= 8;
      }
    }
    if (pending > 0) *dst = static_cast<uint8_t>(acc);
  }
  return out;
}

void UnpackWeights(const uint8_t* packed, int64_t rows, int64_t cols, int bits, int8_t* q) {
  const int64_t row_bytes = PackedRowBytes(cols, bits);
  const uint32_t mask = (1u << bits) - 1;
  const int shift = 32 - bits;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = packed + r * row_bytes;
    int8_t* dst = q + r * cols;
    uint32_t acc = 0;
    int avail = 0;
    for (int64_t c = 0; c < cols; ++c) {
      if (avail < bits) {  // bits <= 8, so one more byte always suffices
        acc |= static_cast<uint32_t>(*src++) << avail;
        avail += 8;
      }
      // Sign-extend the low `bits` bits.
      dst[c] = static_cast<int8_t>(static_cast<int32_t>((acc & mask) << shift) >> shift);
      acc >>= bits;
      avail -= bits;
    }
  }
}

int64_t PackedRowBytesV2(int64_t cols, int bits) {
  const int per = ValuesPerByteV2(bits);
  return (cols + per - 1) / per;
}

void UnpackWeightsV2(const uint8_t* packed, int64_t rows, int64_t cols, int bits, int8_t* q) {
  const int per = ValuesPerByteV2(bits), width = 8 / per;
  const int64_t row_bytes = PackedRowBytesV2(cols, bits);
  const unsigned mask = (1u << width) - 1, sign = 1u << (width - 1);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      unsigned v = (packed[r * row_bytes + c / per] >> ((c % per) * width)) & mask;
      int value =
          (v & sign) ? static_cast<int>(v) - static_cast<int>(1u << width) : static_cast<int>(v);
      q[r * cols + c] = static_cast<int8_t>(value);
    }
  }
}

std::string TensorDataChecksum(const std::vector<std::pair<const uint8_t*, size_t>>& ranges) {
  XXH3_state_t* state = XXH3_createState();
  VITQ_CHECK(state != nullptr, "XXH3_createState failed");
  XXH3_64bits_reset(state);
  for (const auto& [data, bytes] : ranges) {
    if (bytes > 0) XXH3_64bits_update(state, data, bytes);
  }
  const XXH64_hash_t hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(hash));
  return std::string(kChecksumPrefix) + hex;
}

Tensor QuantizedLinear::Unpacked() const {
  Tensor q(DType::kI8, {rows, cols});
  if (scheme.bits == 8) {
    std::memcpy(q.data<int8_t>(), packed.data<int8_t>(), static_cast<size_t>(rows * cols));
  } else {
    UnpackWeights(packed.data<uint8_t>(), rows, cols, scheme.bits, q.data<int8_t>());
  }
  return q;
}

int64_t QuantizedModel::StoredBytes() const {
  int64_t bytes = 0;
  for (const auto& [name, t] : TimmStateDict(model)) bytes += static_cast<int64_t>(t->num_bytes());
  for (const auto& [name, l] : linear) {
    bytes += l.rows * PackedRowBytes(l.cols, l.scheme.bits);
    bytes += static_cast<int64_t>(l.params.scale.size()) * 4;
  }
  return bytes;
}

Status SaveQuantizedFile(const std::string& path, const ViTModel& model, const QuantPlan& plan) {
  VITQ_RETURN_IF_ERROR(ValidatePlan(plan, model));
  if (!plan.tensors.empty()) {  // the method's replaced tensors become the stored model
    VITQ_ASSIGN_OR_RETURN(ViTModel replaced, ApplyPlanTensors(model, plan));
    QuantPlan rest = plan;
    rest.tensors.clear();
    return SaveQuantizedFile(path, replaced, rest);
  }
  // Integer weights, scales and corrected biases of the quantized layers.
  std::set<std::string> replaced;
  std::vector<std::pair<std::string, Tensor>> extra;
  for (const auto& [layer, w] : LinearLayers(model)) {
    const SitePlan* sp = plan.Find(layer + ":w");
    if (sp == nullptr) continue;
    if (!sp->scheme.is_signed) {
      return Status::InvalidInput("plan site '" + layer +
                                  ":w' uses an unsigned grid; .vitq files store signed weights");
    }
    Tensor q = QuantizeWeight(w->weight, sp->scheme, sp->params);
    const int bits = sp->scheme.bits;
    Tensor stored;
    if (bits == 8) {
      stored = std::move(q);
    } else {
      std::vector<uint8_t> packed = PackWeights(q.data<int8_t>(), q.dim(0), q.dim(1), bits);
      stored = Tensor(DType::kU8, {q.dim(0), PackedRowBytes(q.dim(1), bits)});
      std::memcpy(stored.data<uint8_t>(), packed.data(), packed.size());
    }
    Tensor scale = Tensor::F32({static_cast<int64_t>(sp->params.scale.size())});
    std::copy(sp->params.scale.begin(), sp->params.scale.end(), scale.f32());
    Tensor bias = w->bias.Clone();
    auto it = plan.biases.find(layer);
    if (it != plan.biases.end()) std::copy(it->second.begin(), it->second.end(), bias.f32());
    extra.emplace_back(layer + ".weight", std::move(stored));
    extra.emplace_back(layer + ".weight_scale", std::move(scale));
    extra.emplace_back(layer + ".bias", std::move(bias));
    replaced.insert(layer + ".weight");
    replaced.insert(layer + ".bias");
  }
  std::vector<std::pair<std::string, Tensor>> stored = TimmCheckpointTensors(model);
  std::vector<NamedTensor> tensors;
  for (const auto& [name, t] : stored) {
    if (!replaced.count(name)) tensors.push_back({name, &t});
  }
  for (const auto& [name, t] : extra) tensors.push_back({name, &t});
  QuantPlan stripped = plan;
  stripped.biases.clear();  // stored as tensors
  // The search's per-operation report (`vitq quantize --report` writes it) is not stored: it
  // was a quarter of the header, 2 % of a DeiT-Tiny file beyond its size budget.
  stripped.report_json.clear();
  // WriteSafetensors writes the tensors' data in this order, so this is the data section's hash.
  std::vector<std::pair<const uint8_t*, size_t>> ranges;
  for (const auto& nt : tensors)
    ranges.emplace_back(nt.tensor->data<uint8_t>(), nt.tensor->num_bytes());
  std::map<std::string, std::string> meta = {{"format", kFormat},
                                             {"vitq.version", kFormatVersion},
                                             {"vitq.model", ModelSpecToJson(model.spec)},
                                             {"vitq.plan", PlanToJson(stripped)},
                                             {kChecksumKey, TensorDataChecksum(ranges)}};
  return WriteSafetensors(path, tensors, meta);
}

Result<QuantizedModel> LoadQuantizedFile(const std::string& path) {
  VITQ_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::Open(path));
  const auto& meta = file.metadata();
  auto get = [&](const char* key) -> Result<std::string> {
    auto it = meta.find(key);
    if (it == meta.end()) {
      return Status::InvalidInput(Where(path) + " is not a .vitq file (metadata has no '" + key +
                                  "')");
    }
    return it->second;
  };
  VITQ_ASSIGN_OR_RETURN(std::string format, get("format"));
  if (format != kFormat)
    return Status::InvalidInput(Where(path) + ": format '" + format + "', expected 'vitq'");
  VITQ_ASSIGN_OR_RETURN(std::string version, get("vitq.version"));
  if (version != kFormatVersion && version != "2") {
    return Status::InvalidInput(Where(path) + ": .vitq version " + version +
                                " is not supported (this vitq reads versions 2 and " +
                                kFormatVersion + "; re-run `vitq quantize` to write one)");
  }
  const bool v2 = version == "2";
  QuantizedModel q;
  q.format_version = v2 ? 2 : 3;
  if (!v2) {
    // The checksum covers every tensor's bytes in file order (the whole data section).
    auto it = meta.find(kChecksumKey);
    if (it == meta.end()) {
      return Status::InvalidInput(Where(path) + ": version " + version + " metadata has no '" +
                                  kChecksumKey + "'");
    }
    const std::string& expected = it->second;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::pair<const uint8_t*, size_t>> ranges;
    for (const auto& e : file.entries()) ranges.emplace_back(e.data, e.num_bytes);
    std::sort(ranges.begin(), ranges.end());
    const std::string actual = TensorDataChecksum(ranges);
    q.checksum_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (actual != expected) {
      return Status::InvalidInput(Where(path) + ": checksum mismatch: the tensor data hash to " +
                                  actual + " but the metadata says " + expected +
                                  " (the file is corrupt or was modified)");
    }
  }
  VITQ_ASSIGN_OR_RETURN(std::string spec_json, get("vitq.model"));
  VITQ_ASSIGN_OR_RETURN(std::string plan_json, get("vitq.plan"));
  VITQ_ASSIGN_OR_RETURN(q.model.spec, ModelSpecFromJson(spec_json, path));
  q.model.spec.weights_path = path;
  VITQ_ASSIGN_OR_RETURN(q.plan, PlanFromJson(plan_json, path));
  const ViTConfig& c = q.model.spec.config;
  {
    Status s = ValidatePlan(q.plan, c);
    if (!s.ok()) return s.WithContext(Where(path));
  }
  if (!q.plan.biases.empty()) {
    return Status::InvalidInput(Where(path) + ": the plan lists corrected biases; version " +
                                version + " stores them as tensors");
  }
  std::set<std::string> skip;
  for (const auto& [layer, shape] : LinearShapes(c)) {
    if (q.plan.Find(layer + ":w") != nullptr) {
      skip.insert(layer + ".weight");
      skip.insert(layer + ".bias");
    }
  }
  VITQ_ASSIGN_OR_RETURN(q.model.weights, ReadTimmWeights(file, c, skip));
  std::map<std::string, LinearWeights*> layers;
  for (const auto& [name, w] : MutableLinearLayers(&q.model)) layers[name] = w;
  for (const auto& [layer, shape] : LinearShapes(c)) {
    const SitePlan* sp = q.plan.Find(layer + ":w");
    if (sp == nullptr) continue;
    const std::string where = Where(path) + ", tensor '" + layer;
    if (!sp->scheme.is_signed) {
      return Status::InvalidInput(where + ".weight': plan site '" + layer +
                                  ":w' has an unsigned grid; the format stores signed weights");
    }
    const int bits = sp->scheme.bits;
    const int64_t rows = shape[0], cols = shape[1];
    QuantizedLinear ql;
    ql.scheme = sp->scheme;
    ql.params = sp->params;
    ql.rows = rows;
    ql.cols = cols;
    if (bits == 8 || (v2 && ValuesPerByteV2(bits) == 1)) {
      VITQ_ASSIGN_OR_RETURN(Tensor q8, file.ReadExact(layer + ".weight", DType::kI8, {rows, cols}));
      if (bits == 8) {
        ql.packed = std::move(q8);
      } else {  // a version-2 file's 5-7-bit layer: repack
        std::vector<uint8_t> p = PackWeights(q8.data<int8_t>(), rows, cols, bits);
        ql.packed = Tensor(DType::kU8, {rows, PackedRowBytes(cols, bits)});
        std::memcpy(ql.packed.data<uint8_t>(), p.data(), p.size());
      }
    } else {
      const int64_t row_bytes = v2 ? PackedRowBytesV2(cols, bits) : PackedRowBytes(cols, bits);
      VITQ_ASSIGN_OR_RETURN(Tensor stored,
                            file.ReadExact(layer + ".weight", DType::kU8, {rows, row_bytes}));
      if (v2) {
        Tensor q8(DType::kI8, {rows, cols});
        UnpackWeightsV2(stored.data<uint8_t>(), rows, cols, bits, q8.data<int8_t>());
        std::vector<uint8_t> p = PackWeights(q8.data<int8_t>(), rows, cols, bits);
        ql.packed = Tensor(DType::kU8, {rows, PackedRowBytes(cols, bits)});
        std::memcpy(ql.packed.data<uint8_t>(), p.data(), p.size());
      } else {
        ql.packed = std::move(stored);
      }
    }
    {
      // Every value inside the grid (one layer unpacked at a time, then dropped).
      const Tensor unpacked = ql.Unpacked();
      const int8_t* qv = unpacked.data<int8_t>();
      for (int64_t i = 0; i < unpacked.size(); ++i) {
        if (qv[i] < sp->scheme.qmin() || qv[i] > sp->scheme.qmax()) {
          return Status::InvalidInput(
              where + ".weight': value " + std::to_string(qv[i]) + " at index " +
              std::to_string(i) + " is outside the " + std::to_string(bits) + "-bit grid [" +
              std::to_string(sp->scheme.qmin()) + ", " + std::to_string(sp->scheme.qmax()) + "]");
        }
      }
    }
    const int64_t nscale = static_cast<int64_t>(sp->params.scale.size());
    VITQ_ASSIGN_OR_RETURN(Tensor scale,
                          file.ReadExact(layer + ".weight_scale", DType::kF32, {nscale}));
    for (int64_t i = 0; i < nscale; ++i) {
      if (scale.f32()[i] != sp->params.scale[i]) {
        return Status::InvalidInput(where + ".weight_scale'[" + std::to_string(i) + "] is " +
                                    std::to_string(scale.f32()[i]) + " but the plan says " +
                                    std::to_string(sp->params.scale[i]) +
                                    " (tensors and plan disagree)");
      }
    }
    VITQ_ASSIGN_OR_RETURN(Tensor bias, file.ReadExact(layer + ".bias", DType::kF32, {rows}));
    for (int64_t i = 0; i < rows; ++i) {
      if (!std::isfinite(bias.f32()[i])) {
        return Status::InvalidInput(where + ".bias'[" + std::to_string(i) + "] is not finite");
      }
    }
    layers[layer]->bias = std::move(bias);
    layers[layer]->weight = Tensor();
    q.linear.emplace(layer, std::move(ql));
  }
  return q;
}

ViTModel DequantizedModel(const QuantizedModel& q) {
  ViTModel m = CloneModel(q.model);
  for (auto& [layer, w] : MutableLinearLayers(&m)) {
    auto it = q.linear.find(layer);
    if (it == q.linear.end()) continue;
    const QuantizedLinear& l = it->second;
    const int64_t rows = l.rows, cols = l.cols;
    w->weight = Tensor::F32({rows, cols});
    const Tensor unpacked = l.Unpacked();
    const int8_t* qv = unpacked.data<int8_t>();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        int64_t ch = ChannelOf(l.scheme, r, c);
        w->weight.f32()[r * cols + c] =
            static_cast<float>(qv[r * cols + c] - l.params.zero_point[ch]) * l.params.scale[ch];
      }
    }
  }
  return m;
}

bool IsQuantizedFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  auto f = SafetensorsFile::Open(path);
  if (f.ok()) {
    auto it = f->metadata().find("format");
    return it != f->metadata().end() && it->second == kFormat;
  }
  return std::filesystem::path(path).extension() == ".vitq";
}

}  // namespace vitq
