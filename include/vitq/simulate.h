// Simulated (fake-quant) execution of a QuantPlan on the float engine (graph stage): weights are
// replaced by their quantized-dequantized values and corrected biases, and an observer
// quantizes-dequantizes every activation site in place, so the arithmetic follows the plan's
// integer grid exactly (method.md §1.2).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "vitq/engine.h"
#include "vitq/model.h"
#include "vitq/plan.h"

namespace vitq {

// Every quantizable site name of a model: "<layer>:w" and "<layer>:in" for each linear layer,
// "blocks.i.attn.qk:a/b" and "blocks.i.attn.pv:a/b" for the matmuls.
std::vector<std::string> QuantSiteNames(const ViTConfig& config);
// "<layer>:w": a linear layer's weights (every other site is an activation).
bool IsWeightSite(const std::string& name);
// "blocks.i.attn.pv:a": the attention probabilities P, the one site a log-sqrt2 grid may take
// (and the integer engine holds as u8 on an unsigned 8-bit grid with zero point 0).
bool IsProbabilitySite(const std::string& name);
// "blocks.i.mlp.fc2:in": fc2's input, the one site a per-row grid may take (fc1's epilogue
// writes it, so the integer engine can hold u8 codes with any zero point).
bool IsFc2InputSite(const std::string& name);
// Every linear layer of a model by name, with its weights (in forward order).
std::vector<std::pair<std::string, const LinearWeights*>> LinearLayers(const ViTModel& model);
std::vector<std::pair<std::string, LinearWeights*>> MutableLinearLayers(ViTModel* model);

// Every linear layer of an architecture with its weight shape [out, in], in forward order.
std::vector<std::pair<std::string, Shape>> LinearShapes(const ViTConfig& config);

// Checks a plan against a model: every site exists, per-channel scale counts match the tensor,
// corrected biases exist and have the layer's length. Errors name the site and both sizes.
Status ValidatePlan(const QuantPlan& plan, const ViTConfig& config);
Status ValidatePlan(const QuantPlan& plan, const ViTModel& model);

// A deep copy of a model; with only_block >= 0, a one-block model (depth 1) whose blocks.0 is a
// copy of that block (embedding and head copied too), for work on one block at a time.
ViTModel CloneModel(const ViTModel& model, int only_block = -1);
// A copy of `model` with the plan's replaced float tensors (QuantPlan::tensors) in place; errors
// name a tensor the model lacks or one whose size differs.
Result<ViTModel> ApplyPlanTensors(const ViTModel& model, const QuantPlan& plan);
// A copy of `model` with the plan's tensors replaced, its weights fake-quantized and its corrected
// biases applied.
Result<ViTModel> ApplyPlanToWeights(const ViTModel& model, const QuantPlan& plan);

// Size of the model's parameters under the plan: each linear weight at its site's bit-width
// (bits / 8 bytes per parameter), every other parameter (biases, LayerNorm, embeddings) as fp32.
int64_t ModelSizeBytes(const ViTModel& model, const QuantPlan& plan);

// Removes from the plan the activation sites ("<layer>:in", "<block>.attn.qk:a" ...) whose name
// contains one of `patterns` ("mlp.fc2:in" for every block's, "blocks.3.attn.pv:a" for one), so
// that the fake-quant path leaves them float: a per-site sensitivity analysis (`vitq eval
// --fake-quant --keep-float`). A .vitq file stores its weights quantized, so weight sites ("...:w")
// are never removed. Returns the number of sites removed; a usage error names a pattern that
// matches no activation site of the plan.
Result<int> KeepActivationsFloat(QuantPlan* plan, const std::vector<std::string>& patterns);

// Fake-quantizes the activation sites the plan lists (in place).
class FakeQuantObserver : public Observer {
 public:
  explicit FakeQuantObserver(const QuantPlan& plan, Observer* next = nullptr);
  bool Wants(const Site& site) const override;
  void Observe(const Site& site, TensorView tensor) override;

 private:
  const QuantPlan& plan_;
  Observer* next_;
};

// The float engine over the plan-applied weights with fake-quantized activations.
class SimulatedModel {
 public:
  static Result<std::unique_ptr<SimulatedModel>> Create(const ViTModel& model,
                                                        const QuantPlan& plan);
  void Forward(const float* images, int batch, float* logits);
  const ViTModel& model() const { return qmodel_; }

 private:
  SimulatedModel(ViTModel qmodel, const QuantPlan& plan);
  ViTModel qmodel_;
  QuantPlan plan_;
  Engine engine_;
  FakeQuantObserver observer_;
};

}  // namespace vitq
