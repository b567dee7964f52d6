// Fake-quant simulation of a QuantPlan (graph stage).
#include "vitq/simulate.h"

#include <cmath>
#include <map>

namespace vitq {

std::vector<std::pair<std::string, LinearWeights*>> MutableLinearLayers(ViTModel* model) {
  const ViTConfig& c = model->spec.config;
  ViTWeights& w = model->weights;
  std::vector<std::pair<std::string, LinearWeights*>> out;
  out.push_back({"patch_embed.proj", &w.patch_embed});
  for (int i = 0; i < c.depth; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    out.push_back({p + "attn.qkv", &w.blocks[i].qkv});
    out.push_back({p + "attn.proj", &w.blocks[i].proj});
    out.push_back({p + "mlp.fc1", &w.blocks[i].fc1});
    out.push_back({p + "mlp.fc2", &w.blocks[i].fc2});
  }
  out.push_back({"head", &w.head});
  if (c.head_dist) out.push_back({"head_dist", &w.head_dist});
  return out;
}

std::vector<std::pair<std::string, const LinearWeights*>> LinearLayers(const ViTModel& model) {
  auto m = MutableLinearLayers(const_cast<ViTModel*>(&model));
  return {m.begin(), m.end()};
}

std::vector<std::string> QuantSiteNames(const ViTConfig& c) {
  std::vector<std::string> names;
  auto linear = [&](const std::string& l) {
    names.push_back(l + ":w");
    names.push_back(l + ":in");
  };
  linear("patch_embed.proj");
  for (int i = 0; i < c.depth; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    linear(p + "attn.qkv");
    for (const char* s : {"attn.qk:a", "attn.qk:b", "attn.pv:a", "attn.pv:b"})
      names.push_back(p + s);
    linear(p + "attn.proj");
    linear(p + "mlp.fc1");
    linear(p + "mlp.fc2");
  }
  linear("head");
  if (c.head_dist) linear("head_dist");
  return names;
}

std::vector<std::pair<std::string, Shape>> LinearShapes(const ViTConfig& c) {
  const int64_t d = c.embed_dim, h = c.mlp_hidden;
  std::vector<std::pair<std::string, Shape>> out;
  out.push_back({"patch_embed.proj", {d, c.patch_dim()}});
  for (int i = 0; i < c.depth; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    out.push_back({p + "attn.qkv", {3 * d, d}});
    out.push_back({p + "attn.proj", {d, d}});
    out.push_back({p + "mlp.fc1", {h, d}});
    out.push_back({p + "mlp.fc2", {d, h}});
  }
  out.push_back({"head", {c.num_classes, d}});
  if (c.head_dist) out.push_back({"head_dist", {c.num_classes, d}});
  return out;
}

namespace {
bool EndsWith(const std::string& name, const std::string& tail) {
  return name.size() >= tail.size() &&
         name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

bool IsWeightSite(const std::string& name) { return EndsWith(name, ":w"); }
bool IsProbabilitySite(const std::string& name) { return EndsWith(name, ".attn.pv:a"); }
bool IsFc2InputSite(const std::string& name) { return EndsWith(name, ".mlp.fc2:in"); }

Status ValidatePlan(const QuantPlan& plan, const ViTConfig& config) {
  auto names = QuantSiteNames(config);
  std::set<std::string> known(names.begin(), names.end());
  for (const auto& [name, sp] : plan.sites) {
    VITQ_RETURN_IF_ERROR(sp.scheme.Validate("plan site '" + name + "'"));
    if (IsLogSqrt2(sp.scheme.kind) && !IsProbabilitySite(name)) {
      return Status::InvalidInput("plan site '" + name +
                                  "' has a log-sqrt2 grid, which only the attention "
                                  "probabilities (blocks.i.attn.pv:a) may have");
    }
    if (sp.scheme.kind == QuantKind::kUniformRow && !IsFc2InputSite(name) &&
        !IsProbabilitySite(name)) {
      return Status::InvalidInput("plan site '" + name +
                                  "' has a per-row (uniform_row) grid, which only fc2's input "
                                  "(blocks.i.mlp.fc2:in) and the attention probabilities "
                                  "(blocks.i.attn.pv:a) may have");
    }
    if (!known.count(name)) {
      return Status::InvalidInput("plan site '" + name + "' does not exist in model " +
                                  config.architecture + " (" + std::to_string(config.depth) +
                                  " blocks)");
    }
  }
  std::map<std::string, Shape> shapes;
  for (const auto& [layer, shape] : LinearShapes(config)) {
    shapes[layer] = shape;
    const SitePlan* sp = plan.Find(layer + ":w");
    if (sp != nullptr) {
      VITQ_RETURN_IF_ERROR(
          ValidateQParams(sp->scheme, sp->params, shape, "plan site '" + layer + ":w'"));
    }
  }
  for (const auto& [layer, bias] : plan.biases) {
    auto it = shapes.find(layer);
    if (it == shapes.end())
      return Status::InvalidInput("plan bias for unknown layer '" + layer + "'");
    if (static_cast<int64_t>(bias.size()) != it->second[0]) {
      return Status::InvalidInput("plan bias for '" + layer + "' has " +
                                  std::to_string(bias.size()) + " values, the layer has " +
                                  std::to_string(it->second[0]) + " outputs");
    }
  }
  return Status::Ok();
}

Status ValidatePlan(const QuantPlan& plan, const ViTModel& model) {
  return ValidatePlan(plan, model.spec.config);
}

ViTModel CloneModel(const ViTModel& model, int only_block) {
  ViTModel q;
  q.spec = model.spec;
  if (only_block >= 0) q.spec.config.depth = 1;
  const ViTWeights& w = model.weights;
  ViTWeights& qw = q.weights;
  auto clone = [](const LinearWeights& l) {
    return LinearWeights{l.weight.Clone(), l.bias.Clone()};
  };
  qw.patch_embed = clone(w.patch_embed);
  qw.cls_token = w.cls_token.Clone();
  qw.dist_token = w.dist_token.Clone();
  qw.pos_embed = w.pos_embed.Clone();
  for (size_t i = 0; i < w.blocks.size(); ++i) {
    if (only_block >= 0 && static_cast<int>(i) != only_block) continue;
    const BlockWeights& b = w.blocks[i];
    qw.blocks.push_back({b.norm1_weight.Clone(), b.norm1_bias.Clone(), clone(b.qkv), clone(b.proj),
                         b.norm2_weight.Clone(), b.norm2_bias.Clone(), clone(b.fc1), clone(b.fc2)});
  }
  qw.norm_weight = w.norm_weight.Clone();
  qw.norm_bias = w.norm_bias.Clone();
  qw.head = clone(w.head);
  if (model.spec.config.head_dist) qw.head_dist = clone(w.head_dist);
  return q;
}

Result<ViTModel> ApplyPlanTensors(const ViTModel& model, const QuantPlan& plan) {
  ViTModel q = CloneModel(model);
  if (plan.tensors.empty()) return q;
  std::map<std::string, Tensor*> by_name;
  for (const auto& [name, t] : TimmStateDict(q)) by_name[name] = const_cast<Tensor*>(t);
  for (const auto& [name, values] : plan.tensors) {
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second->empty()) {
      return Status::InvalidInput("plan replaces tensor '" + name + "', which model " +
                                  model.spec.config.architecture + " does not have");
    }
    if (static_cast<int64_t>(values.size()) != it->second->size()) {
      return Status::InvalidInput("plan replaces tensor '" + name + "' with " +
                                  std::to_string(values.size()) + " values, the model's has " +
                                  std::to_string(it->second->size()));
    }
    for (float v : values) {
      if (!std::isfinite(v)) {
        return Status::InvalidInput("plan replaces tensor '" + name + "' with a non-finite value");
      }
    }
    std::copy(values.begin(), values.end(), it->second->f32());
  }
  return q;
}

Result<ViTModel> ApplyPlanToWeights(const ViTModel& model, const QuantPlan& plan) {
  VITQ_RETURN_IF_ERROR(ValidatePlan(plan, model));
  VITQ_ASSIGN_OR_RETURN(ViTModel q, ApplyPlanTensors(model, plan));
  for (auto& [layer, lw] : MutableLinearLayers(&q)) {
    if (const SitePlan* sp = plan.Find(layer + ":w")) {
      VITQ_RETURN_IF_ERROR(
          FakeQuantizeTensor(lw->weight.f32(), lw->weight.shape(), sp->scheme, sp->params));
    }
    auto it = plan.biases.find(layer);
    if (it != plan.biases.end()) std::copy(it->second.begin(), it->second.end(), lw->bias.f32());
  }
  return q;
}

int64_t ModelSizeBytes(const ViTModel& model, const QuantPlan& plan) {
  int64_t bits = model.NumParams() * 32;
  for (const auto& [layer, w] : LinearLayers(model)) {
    if (const SitePlan* sp = plan.Find(layer + ":w"))
      bits -= w->weight.size() * (32 - sp->scheme.bits);
  }
  return (bits + 7) / 8;
}

Result<int> KeepActivationsFloat(QuantPlan* plan, const std::vector<std::string>& patterns) {
  std::set<std::string> drop;
  for (const std::string& pattern : patterns) {
    if (pattern.empty()) return Status::Usage("--keep-float: an empty site pattern");
    int matched = 0;
    for (const auto& [name, site] : plan->sites) {
      if (IsWeightSite(name) || name.find(pattern) == std::string::npos) continue;
      drop.insert(name);
      ++matched;
    }
    if (matched == 0) {
      return Status::Usage("--keep-float: '" + pattern +
                           "' matches no activation site of the plan (site names look like "
                           "'blocks.0.mlp.fc2:in', 'blocks.0.attn.pv:a', 'head:in'; weights are "
                           "stored quantized and cannot be left float)");
    }
  }
  for (const std::string& name : drop) plan->sites.erase(name);
  return static_cast<int>(drop.size());
}

FakeQuantObserver::FakeQuantObserver(const QuantPlan& plan, Observer* next)
    : plan_(plan), next_(next) {}

bool FakeQuantObserver::Wants(const Site& site) const {
  if (next_ != nullptr && next_->Wants(site)) return true;
  return site.role != SiteRole::kOut && plan_.Find(site.Name()) != nullptr;
}

void FakeQuantObserver::Observe(const Site& site, TensorView t) {
  if (site.role != SiteRole::kOut) {
    if (const SitePlan* sp = plan_.Find(site.Name())) {
      Status s = FakeQuantizeTensor(t.data, t.shape, sp->scheme, sp->params);
      VITQ_CHECK(s.ok(), s.message());  // the plan was validated against the model
    }
  }
  if (next_ != nullptr && next_->Wants(site)) next_->Observe(site, t);
}

SimulatedModel::SimulatedModel(ViTModel qmodel, const QuantPlan& plan)
    : qmodel_(std::move(qmodel)), plan_(plan), engine_(qmodel_), observer_(plan_) {}

Result<std::unique_ptr<SimulatedModel>> SimulatedModel::Create(const ViTModel& model,
                                                               const QuantPlan& plan) {
  VITQ_ASSIGN_OR_RETURN(ViTModel q, ApplyPlanToWeights(model, plan));
  return std::unique_ptr<SimulatedModel>(new SimulatedModel(std::move(q), plan));
}

void SimulatedModel::Forward(const float* images, int batch, float* logits) {
  engine_.Forward(images, batch, logits, &observer_);
}

}  // namespace vitq
