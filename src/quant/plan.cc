// QuantPlan JSON round trip with validation (quant stage).
#include "vitq/plan.h"

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "vitq/json_depth.h"

namespace vitq {
using nlohmann::ordered_json;

namespace {

// Removes wall-clock timings ("seconds", "*_seconds") from a report, so that the plan, and the
// .vitq file embedding it, are the same bytes whatever the thread count or machine load. The
// timings stay in the --report file.
void DropTimings(ordered_json* j) {
  if (j->is_object()) {
    for (auto it = j->begin(); it != j->end();) {
      const std::string& k = it.key();
      const bool timing =
          k == "seconds" || (k.size() > 8 && k.compare(k.size() - 8, 8, "_seconds") == 0);
      if (timing) {
        it = j->erase(it);
      } else {
        DropTimings(&it.value());
        ++it;
      }
    }
  } else if (j->is_array()) {
    for (auto& e : *j) DropTimings(&e);
  }
}

}  // namespace

std::string PlanToJson(const QuantPlan& plan) {
  ordered_json j;
  j["format"] = "vitq.plan";
  bool log_sites = false;
  for (const auto& [name, s] : plan.sites) log_sites |= s.scheme.kind != QuantKind::kUniform;
  // Version 1 has no quantizer kinds; plans without log sites keep it (same bytes as before).
  j["version"] = log_sites ? QuantPlan::kVersion : 1;
  j["method"] = plan.method;
  j["options"] =
      plan.options_json.empty() ? ordered_json::object() : ordered_json::parse(plan.options_json);
  j["provenance"] = {{"seed", plan.seed},
                     {"calib_dir", plan.calib_dir},
                     {"calib_size", plan.calib_size},
                     {"calib_hash", plan.calib_hash},
                     {"tool_version", plan.tool_version},
                     {"architecture", plan.architecture}};
  ordered_json sites = ordered_json::object();
  for (const auto& [name, s] : plan.sites) {
    sites[name] = {{"bits", s.scheme.bits},
                   {"symmetric", s.scheme.symmetric},
                   {"signed", s.scheme.is_signed},
                   {"granularity",
                    s.scheme.granularity == Granularity::kPerTensor ? "per_tensor" : "per_channel"},
                   {"axis", s.scheme.axis},
                   {"scale", s.params.scale},
                   {"zero_point", s.params.zero_point}};
    if (s.scheme.kind == QuantKind::kLogSqrt2) sites[name]["kind"] = "log_sqrt2";
    if (s.scheme.kind == QuantKind::kLogSqrt2Row) sites[name]["kind"] = "log_sqrt2_row";
    if (s.scheme.kind == QuantKind::kUniformRow) sites[name]["kind"] = "uniform_row";
  }
  j["sites"] = sites;
  j["biases"] = plan.biases;
  if (!plan.report_json.empty()) {
    j["report"] = ordered_json::parse(plan.report_json);
    DropTimings(&j["report"]);
  }
  return j.dump(1, ' ', false, ordered_json::error_handler_t::replace);
}

namespace {

// Strict JSON types for the plan: a wrong type is an error naming the key, never a coercion.
struct Strict {
  const std::string& source;
  Status Bad(const std::string& key, const ordered_json& v, const char* expected) const {
    return Status::InvalidInput("plan '" + source + "': key '" + key + "' is " +
                                v.dump(-1, ' ', false, ordered_json::error_handler_t::replace) +
                                ", expected " + expected);
  }
  const ordered_json* Find(const ordered_json& j, const std::string& key) const {
    return j.is_object() && j.contains(key) ? &j[key] : nullptr;
  }
  Status Missing(const std::string& key) const {
    return Status::InvalidInput("plan '" + source + "': key '" + key + "' is missing");
  }
  Status Int(const ordered_json& j, const std::string& key, const std::string& path, int64_t lo,
             int64_t hi, int64_t* out, bool required = true) const {
    const ordered_json* v = Find(j, key);
    if (v == nullptr) return required ? Missing(path + key) : Status::Ok();
    if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(hi)) ||
        v->get<int64_t>() < lo || v->get<int64_t>() > hi) {
      return Bad(
          path + key, *v,
          ("an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]").c_str());
    }
    *out = v->get<int64_t>();
    return Status::Ok();
  }
  Status Str(const ordered_json& j, const std::string& key, const std::string& path,
             std::string* out, bool required = true) const {
    const ordered_json* v = Find(j, key);
    if (v == nullptr) return required ? Missing(path + key) : Status::Ok();
    if (!v->is_string()) return Bad(path + key, *v, "a string");
    *out = v->get<std::string>();
    return Status::Ok();
  }
  Status Bool(const ordered_json& j, const std::string& key, const std::string& path,
              bool* out) const {
    const ordered_json* v = Find(j, key);
    if (v == nullptr) return Missing(path + key);
    if (!v->is_boolean()) return Bad(path + key, *v, "true or false");
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status Floats(const ordered_json& v, const std::string& key, std::vector<float>* out) const {
    if (!v.is_array()) return Bad(key, v, "an array of finite numbers");
    out->clear();
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number() || !std::isfinite(v[i].get<double>()) ||
          !std::isfinite(static_cast<float>(v[i].get<double>()))) {
        return Bad(key + "[" + std::to_string(i) + "]", v[i], "a finite number");
      }
      out->push_back(static_cast<float>(v[i].get<double>()));
    }
    return Status::Ok();
  }
};

}  // namespace

Result<QuantPlan> PlanFromJson(const std::string& text, const std::string& source) {
  auto bad = [&](const std::string& what) {
    return Status::InvalidInput("plan '" + source + "': " + what);
  };
  ordered_json j;
  try {
    j = ordered_json::parse(text, JsonDepthGuard<ordered_json>());
  } catch (const std::exception& e) {
    return bad(std::string("not valid JSON: ") + e.what());
  }
  Strict st{source};
  QuantPlan plan;
  std::string format;
  if (!j.is_object() || !st.Str(j, "format", "", &format).ok() || format != "vitq.plan")
    return bad("not a vitq plan (format != vitq.plan)");
  int64_t version = 0;
  VITQ_RETURN_IF_ERROR(st.Int(j, "version", "", 0, INT32_MAX, &version));
  if (version != 1 && version != QuantPlan::kVersion) {
    return bad("unsupported version " + std::to_string(version) + " (this vitq reads version " +
               std::to_string(QuantPlan::kVersion) + ")");
  }
  VITQ_RETURN_IF_ERROR(st.Str(j, "method", "", &plan.method));
  if (j.contains("options")) {
    if (!j["options"].is_object()) return st.Bad("options", j["options"], "an object");
    plan.options_json = j["options"].dump();
  } else {
    plan.options_json = "{}";
  }
  if (!j.contains("provenance") || !j["provenance"].is_object())
    return bad("key 'provenance' is missing or not an object");
  const auto& p = j["provenance"];
  {
    const ordered_json* seed = st.Find(p, "seed");
    if (seed != nullptr) {
      if (!seed->is_number_unsigned()) return st.Bad("provenance.seed", *seed, "an integer >= 0");
      plan.seed = seed->get<uint64_t>();
    }
  }
  VITQ_RETURN_IF_ERROR(st.Str(p, "calib_dir", "provenance.", &plan.calib_dir, false));
  int64_t calib_size = 0;
  VITQ_RETURN_IF_ERROR(st.Int(p, "calib_size", "provenance.", 0, INT32_MAX, &calib_size, false));
  plan.calib_size = static_cast<int>(calib_size);
  VITQ_RETURN_IF_ERROR(st.Str(p, "calib_hash", "provenance.", &plan.calib_hash, false));
  VITQ_RETURN_IF_ERROR(st.Str(p, "tool_version", "provenance.", &plan.tool_version, false));
  VITQ_RETURN_IF_ERROR(st.Str(p, "architecture", "provenance.", &plan.architecture, false));
  if (!j.contains("sites") || !j["sites"].is_object())
    return bad("key 'sites' is missing or not an object");
  for (auto it = j["sites"].begin(); it != j["sites"].end(); ++it) {
    const auto& s = it.value();
    const std::string path = "sites." + it.key() + ".";
    if (!s.is_object()) return st.Bad("sites." + it.key(), s, "an object");
    SitePlan sp;
    int64_t bits = 0, axis = 0;
    VITQ_RETURN_IF_ERROR(st.Int(s, "bits", path, 2, 8, &bits));
    sp.scheme.bits = static_cast<int>(bits);
    VITQ_RETURN_IF_ERROR(st.Bool(s, "symmetric", path, &sp.scheme.symmetric));
    VITQ_RETURN_IF_ERROR(st.Bool(s, "signed", path, &sp.scheme.is_signed));
    std::string g;
    VITQ_RETURN_IF_ERROR(st.Str(s, "granularity", path, &g));
    if (g != "per_tensor" && g != "per_channel")
      return bad("site '" + it.key() + "': granularity '" + g + "'");
    sp.scheme.granularity = g == "per_tensor" ? Granularity::kPerTensor : Granularity::kPerChannel;
    VITQ_RETURN_IF_ERROR(st.Int(s, "axis", path, 0, 1, &axis, false));
    sp.scheme.axis = static_cast<int>(axis);
    std::string kind = "uniform";
    VITQ_RETURN_IF_ERROR(st.Str(s, "kind", path, &kind, false));
    if (kind != "uniform" && kind != "log_sqrt2" && kind != "log_sqrt2_row" &&
        kind != "uniform_row") {
      return bad("site '" + it.key() + "': quantizer kind '" + kind +
                 "' (expected uniform, log_sqrt2, log_sqrt2_row or uniform_row)");
    }
    sp.scheme.kind = kind == "log_sqrt2"       ? QuantKind::kLogSqrt2
                     : kind == "log_sqrt2_row" ? QuantKind::kLogSqrt2Row
                     : kind == "uniform_row"   ? QuantKind::kUniformRow
                                               : QuantKind::kUniform;
    if (!s.contains("scale")) return st.Missing(path + "scale");
    VITQ_RETURN_IF_ERROR(st.Floats(s["scale"], path + "scale", &sp.params.scale));
    if (!s.contains("zero_point")) return st.Missing(path + "zero_point");
    const auto& zp = s["zero_point"];
    if (!zp.is_array()) return st.Bad(path + "zero_point", zp, "an array of integers");
    for (size_t i = 0; i < zp.size(); ++i) {
      if (!zp[i].is_number_integer() || zp[i].get<int64_t>() < -256 || zp[i].get<int64_t>() > 255) {
        return st.Bad(path + "zero_point[" + std::to_string(i) + "]", zp[i],
                      "an integer in [-256, 255]");
      }
      sp.params.zero_point.push_back(static_cast<int32_t>(zp[i].get<int64_t>()));
    }
    if (sp.params.scale.empty()) return bad("site '" + it.key() + "' has no scale");
    std::vector<int64_t> shape = {static_cast<int64_t>(sp.params.scale.size())};
    QuantScheme check = sp.scheme;
    check.axis = 0;  // the tensor shape is checked against the model when the plan is applied
    VITQ_RETURN_IF_ERROR(
        ValidateQParams(check, sp.params, shape, "plan '" + source + "': site '" + it.key() + "'"));
    plan.sites[it.key()] = sp;
  }
  if (j.contains("biases")) {
    const auto& b = j["biases"];
    if (!b.is_object()) return st.Bad("biases", b, "an object");
    for (auto it = b.begin(); it != b.end(); ++it) {
      VITQ_RETURN_IF_ERROR(st.Floats(it.value(), "biases." + it.key(), &plan.biases[it.key()]));
    }
  }
  if (j.contains("report")) plan.report_json = j["report"].dump();
  return plan;
}

}  // namespace vitq
