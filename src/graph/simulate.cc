// Fake-quant simulation of a QuantPlan (graph stage).
#include "vitq/simulate.h"

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

Status ValidatePlan(const QuantPlan& plan, const ViTModel& model) {
  auto names = QuantSiteNames(model.spec.config);
  std::set<std::string> known(names.begin(), names.end());
  for (const auto& [name, sp] : plan.sites) {
    if (!known.count(name)) {
      return Status::InvalidInput("plan site '" + name + "' does not exist in model " +
                                  model.spec.config.architecture + " (" +
                                  std::to_string(model.spec.config.depth) + " blocks)");
    }
  }
  for (const auto& [layer, w] : LinearLayers(model)) {
    const SitePlan* sp = plan.Find(layer + ":w");
    if (sp != nullptr) {
      VITQ_RETURN_IF_ERROR(ValidateQParams(sp->scheme, sp->params, w->weight.shape(),
                                           "plan site '" + layer + ":w'"));
    }
    auto it = plan.biases.find(layer);
    if (it != plan.biases.end() && static_cast<int64_t>(it->second.size()) != w->bias.size()) {
      return Status::InvalidInput("plan bias for '" + layer + "' has " +
                                  std::to_string(it->second.size()) + " values, the layer has " +
                                  std::to_string(w->bias.size()) + " outputs");
    }
  }
  for (const auto& [layer, bias] : plan.biases) {
    bool found = false;
    for (const auto& [name, w] : LinearLayers(model)) found |= name == layer;
    if (!found) return Status::InvalidInput("plan bias for unknown layer '" + layer + "'");
  }
  return Status::Ok();
}

Result<ViTModel> ApplyPlanToWeights(const ViTModel& model, const QuantPlan& plan) {
  VITQ_RETURN_IF_ERROR(ValidatePlan(plan, model));
  ViTModel q;
  q.spec = model.spec;
  const ViTWeights& w = model.weights;
  ViTWeights& qw = q.weights;
  auto clone = [](const LinearWeights& l) {
    return LinearWeights{l.weight.Clone(), l.bias.Clone()};
  };
  qw.patch_embed = clone(w.patch_embed);
  qw.cls_token = w.cls_token.Clone();
  qw.dist_token = w.dist_token.Clone();
  qw.pos_embed = w.pos_embed.Clone();
  for (const auto& b : w.blocks) {
    qw.blocks.push_back({b.norm1_weight.Clone(), b.norm1_bias.Clone(), clone(b.qkv), clone(b.proj),
                         b.norm2_weight.Clone(), b.norm2_bias.Clone(), clone(b.fc1), clone(b.fc2)});
  }
  qw.norm_weight = w.norm_weight.Clone();
  qw.norm_bias = w.norm_bias.Clone();
  qw.head = clone(w.head);
  if (model.spec.config.head_dist) qw.head_dist = clone(w.head_dist);
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
