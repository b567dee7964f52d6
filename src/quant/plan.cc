// QuantPlan JSON round trip with validation (quant stage).
#include "vitq/plan.h"

#include <nlohmann/json.hpp>

namespace vitq {
using nlohmann::ordered_json;

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
  }
  j["sites"] = sites;
  j["biases"] = plan.biases;
  if (!plan.report_json.empty()) j["report"] = ordered_json::parse(plan.report_json);
  return j.dump(1);
}

Result<QuantPlan> PlanFromJson(const std::string& text, const std::string& source) {
  auto bad = [&](const std::string& what) {
    return Status::InvalidInput("plan '" + source + "': " + what);
  };
  ordered_json j;
  try {
    j = ordered_json::parse(text);
  } catch (const std::exception& e) {
    return bad(std::string("not valid JSON: ") + e.what());
  }
  QuantPlan plan;
  try {
    if (!j.is_object() || j.value("format", "") != "vitq.plan")
      return bad("not a vitq plan (format != vitq.plan)");
    int version = j.at("version").get<int>();
    if (version != 1 && version != QuantPlan::kVersion) {
      return bad("unsupported version " + std::to_string(version) + " (this vitq reads version " +
                 std::to_string(QuantPlan::kVersion) + ")");
    }
    plan.method = j.at("method").get<std::string>();
    plan.options_json = j.value("options", ordered_json::object()).dump();
    const auto& p = j.at("provenance");
    plan.seed = p.value("seed", uint64_t{0});
    plan.calib_dir = p.value("calib_dir", "");
    plan.calib_size = p.value("calib_size", 0);
    plan.calib_hash = p.value("calib_hash", "");
    plan.tool_version = p.value("tool_version", "");
    plan.architecture = p.value("architecture", "");
    for (auto it = j.at("sites").begin(); it != j.at("sites").end(); ++it) {
      const auto& s = it.value();
      SitePlan sp;
      sp.scheme.bits = s.at("bits").get<int>();
      sp.scheme.symmetric = s.at("symmetric").get<bool>();
      sp.scheme.is_signed = s.at("signed").get<bool>();
      std::string g = s.at("granularity").get<std::string>();
      if (g != "per_tensor" && g != "per_channel")
        return bad("site '" + it.key() + "': granularity '" + g + "'");
      sp.scheme.granularity =
          g == "per_tensor" ? Granularity::kPerTensor : Granularity::kPerChannel;
      sp.scheme.axis = s.value("axis", 0);
      if (s.contains("kind")) {
        const std::string kind = s.at("kind").get<std::string>();
        if (kind != "uniform" && kind != "log_sqrt2") {
          return bad("site '" + it.key() + "': quantizer kind '" + kind +
                     "' (expected uniform or log_sqrt2)");
        }
        sp.scheme.kind = kind == "log_sqrt2" ? QuantKind::kLogSqrt2 : QuantKind::kUniform;
      }
      sp.params.scale = s.at("scale").get<std::vector<float>>();
      sp.params.zero_point = s.at("zero_point").get<std::vector<int32_t>>();
      if (sp.params.scale.empty()) return bad("site '" + it.key() + "' has no scale");
      std::vector<int64_t> shape = {static_cast<int64_t>(sp.params.scale.size())};
      QuantScheme check = sp.scheme;
      check.axis = 0;  // the tensor shape is checked against the model when the plan is applied
      VITQ_RETURN_IF_ERROR(ValidateQParams(check, sp.params, shape,
                                           "plan '" + source + "': site '" + it.key() + "'"));
      plan.sites[it.key()] = sp;
    }
    if (j.contains("biases"))
      plan.biases = j["biases"].get<std::map<std::string, std::vector<float>>>();
    if (j.contains("report")) plan.report_json = j["report"].dump();
  } catch (const nlohmann::json::exception& e) {
    return bad(std::string("malformed: ") + e.what());
  }
  return plan;
}

}  // namespace vitq
