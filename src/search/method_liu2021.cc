// liu2021: Liu et al., "Post-Training Quantization for Vision Transformer", NeurIPS 2021
// (arXiv 2106.14156): Pearson similarity, ranking loss on Q·Kᵀ (γ 0.1, θ 0.2, mean over pairs
// as method.md §1.4 decides), alternating search over [0.5, 1.2]·Δ0 with 100 candidates, bias
// correction after each round, up to 20 rounds.
#include "methods.h"

namespace vitq::search {

OpResult RunLiu2021(const OpTensors& op, const MethodContext& mc) {
  SearchOptions o;
  o.bits_w = mc.bits_w;
  o.bits_x = mc.bits_x;
  o.similarity = Similarity::kPearson;
  o.ranking = mc.ranking;
  o.bias_correction = mc.bias_correction;
  o.candidates = mc.candidates;
  o.coarse_step = mc.coarse_step;
  o.max_rounds = mc.max_rounds;
  return SearchOp(op, o, mc.ctx);
}

}  // namespace vitq::search
