// .vitq save/load (qmodel stage). See docs/FORMAT.md.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "vitq/qfile.h"
#include "vitq/safetensors.h"
#include "vitq/simulate.h"

namespace vitq {

namespace {
constexpr const char* kFormat = "vitq";
constexpr const char* kFormatVersion = "2";

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

int ValuesPerByte(int bits) { return bits <= 2 ? 4 : bits <= 4 ? 2 : 1; }

int64_t PackedRowBytes(int64_t cols, int bits) {
  const int per = ValuesPerByte(bits);
  return (cols + per - 1) / per;
}

std::vector<uint8_t> PackWeights(const int8_t* q, int64_t rows, int64_t cols, int bits) {
  const int per = ValuesPerByte(bits), width = 8 / per;
  const int64_t row_bytes = PackedRowBytes(cols, bits);
  const unsigned mask = (1u << width) - 1;
  std::vector<uint8_t> out(static_cast<size_t>(rows * row_bytes), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      unsigned v = static_cast<unsigned>(static_cast<uint8_t>(q[r * cols + c])) & mask;
      out[r * row_bytes + c / per] |= static_cast<uint8_t>(v << ((c % per) * width));
    }
  }
  return out;
}

void UnpackWeights(const uint8_t* packed, int64_t rows, int64_t cols, int bits, int8_t* q) {
  const int per = ValuesPerByte(bits), width = 8 / per;
  const int64_t row_bytes = PackedRowBytes(cols, bits);
  const unsigned mask = (1u << width) - 1, sign = 1u << (width - 1);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      unsigned v = (packed[r * row_bytes + c / per] >> ((c % per) * width)) & mask;
      int value = (v & sign) ? static_cast<int>(v) - static_cast<int>(1u << width)
                             : static_cast<int>(v);
      q[r * cols + c] = static_cast<int8_t>(value);
    }
  }
}

int64_t QuantizedModel::StoredBytes() const {
  int64_t bytes = 0;
  for (const auto& [name, t] : TimmStateDict(model)) bytes += static_cast<int64_t>(t->num_bytes());
  for (const auto& [name, l] : linear) {
    bytes += l.q.dim(0) * PackedRowBytes(l.q.dim(1), l.scheme.bits);
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
    if (ValuesPerByte(bits) == 1) {
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
  std::map<std::string, std::string> meta = {{"format", kFormat},
                                             {"vitq.version", kFormatVersion},
                                             {"vitq.model", ModelSpecToJson(model.spec)},
                                             {"vitq.plan", PlanToJson(stripped)}};
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
  if (version != kFormatVersion) {
    return Status::InvalidInput(Where(path) + ": .vitq version " + version +
                                " is not supported (this vitq reads version " + kFormatVersion +
                                "; re-run `vitq quantize` to write one)");
  }
  VITQ_ASSIGN_OR_RETURN(std::string spec_json, get("vitq.model"));
  VITQ_ASSIGN_OR_RETURN(std::string plan_json, get("vitq.plan"));
  QuantizedModel q;
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
                                kFormatVersion + " stores them as tensors");
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
    if (ValuesPerByte(bits) == 1) {
      VITQ_ASSIGN_OR_RETURN(ql.q, file.ReadExact(layer + ".weight", DType::kI8, {rows, cols}));
    } else {
      VITQ_ASSIGN_OR_RETURN(Tensor packed, file.ReadExact(layer + ".weight", DType::kU8,
                                                          {rows, PackedRowBytes(cols, bits)}));
      ql.q = Tensor(DType::kI8, {rows, cols});
      UnpackWeights(packed.data<uint8_t>(), rows, cols, bits, ql.q.data<int8_t>());
    }
    const int8_t* qv = ql.q.data<int8_t>();
    for (int64_t i = 0; i < ql.q.size(); ++i) {
      if (qv[i] < sp->scheme.qmin() || qv[i] > sp->scheme.qmax()) {
        return Status::InvalidInput(where + ".weight': value " + std::to_string(qv[i]) +
                                    " at index " + std::to_string(i) + " is outside the " +
                                    std::to_string(bits) + "-bit grid [" +
                                    std::to_string(sp->scheme.qmin()) + ", " +
                                    std::to_string(sp->scheme.qmax()) + "]");
      }
    }
    const int64_t nscale = static_cast<int64_t>(sp->params.scale.size());
    VITQ_ASSIGN_OR_RETURN(Tensor scale, file.ReadExact(layer + ".weight_scale", DType::kF32,
                                                       {nscale}));
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
    const int64_t rows = l.q.dim(0), cols = l.q.dim(1);
    w->weight = Tensor::F32({rows, cols});
    const int8_t* qv = l.q.data<int8_t>();
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
