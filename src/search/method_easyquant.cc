// easyquant: the alternating search of method.md §1.5 maximizing cosine similarity, without the
// ranking loss or bias correction (Wu et al., "EasyQuant", 2020).
#include "methods.h"

namespace vitq::search {

OpResult RunEasyQuant(const OpTensors& op, const MethodContext& mc) {
  SearchOptions o;
  o.bits_w = mc.bits_w;
  o.bits_x = mc.bits_x;
  o.similarity = Similarity::kCosine;
  o.ranking = false;
  o.bias_correction = false;
  o.candidates = mc.candidates;
  o.coarse_step = mc.coarse_step;
  o.max_rounds = mc.max_rounds;
  return SearchOp(op, o, mc.ctx);
}

}  // namespace vitq::search
