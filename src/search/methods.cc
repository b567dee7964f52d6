// The method registry and helpers shared by the methods (search stage).
#include "methods.h"

#include "pipeline.h"

namespace vitq::search {

const std::vector<MethodInfo>& Methods() {
  static const std::vector<MethodInfo> kMethods = {
      {"minmax", RunMinMax, "interval from max|T| for weights and activations", nullptr, true},
      {"percentile", RunPercentile,
       "activations clipped at the 99.99th percentile of |x|; weights by max"},
      {"omse", RunOmse, "interval minimizing ||T - Q(T)||^2 per tensor (grid [0.3, 1.0] x max)"},
      {"easyquant", RunEasyQuant,
       "alternating search maximizing cosine similarity (Wu et al. 2020)", nullptr, true},
      {"liu2021", RunLiu2021,
       "Pearson + ranking loss search with bias correction (Liu et al., NeurIPS 2021)", nullptr,
       true},
      {"vitq", nullptr,
       "per-channel weights with GPTQ rounding, LayerNorm reparameterization, zero-point and "
       "unsigned activation grids (docs/METHOD.md)",
       QuantizeVitq},
  };
  return kMethods;
}

const MethodInfo* FindMethod(const std::string& name) {
  for (const auto& m : Methods()) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

OperandView OperandX(const OpTensors& op) {
  if (op.is_matmul) return {op.a, static_cast<int64_t>(op.images) * op.heads * op.m * op.k};
  return {op.x, static_cast<int64_t>(op.images) * op.rows * op.k};
}

OperandView OperandW(const OpTensors& op) {
  if (op.is_matmul) return {op.b, static_cast<int64_t>(op.images) * op.heads * op.k * op.n};
  return {op.weight, static_cast<int64_t>(op.n) * op.k};
}

OpResult EvaluateFixed(const OpTensors& op, const MethodContext& mc, float scale_w, float scale_x) {
  SearchOptions o;
  o.bits_w = mc.bits_w;
  o.bits_x = mc.bits_x;
  o.similarity = Similarity::kPearson;
  o.ranking = true;  // reported for Q·Kᵀ, never optimized here
  o.bias_correction = false;
  o.search = false;
  return SearchOp(op, o, mc.ctx, scale_w, scale_x);
}

}  // namespace vitq::search
