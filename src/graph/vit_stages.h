// The parts of a ViT forward pass that are the same in every engine (graph stage, internal):
// patch extraction, token assembly, and the heads' normalized inputs. The float engine and the
// integer engine (runtime) both call these.
#pragma once

#include "../kernels/dnnl_ops.h"
#include "vitq/model.h"

namespace vitq::stages {

// patches[B, num_patches, C*p*p] from images[B, C, H, W], flattened in (c, ky, kx) order like
// the patch conv kernel.
void ExtractPatches(const ViTConfig& c, const float* images, int batch, float* patches);
// x[B, T, D] = [cls, (dist,) patch tokens] + pos_embed, from tokens[B, num_patches, D].
void AssembleTokens(const ViTConfig& c, const ViTWeights& w, const float* tokens, int batch,
                    float* x);
// The final LayerNorm on the prefix tokens of x[B, T, D] (per token, so only those), into
// cls[B, prefix, D]; then the cls token's row into h0[B, D] and, for distilled models, the dist
// token's into h1[B, D].
void HeadInputs(const ViTConfig& c, const ViTWeights& w, kernels::DnnlOps& ops, const float* x,
                int batch, float* cls, float* h0, float* h1);

// The heads after HeadInputs: `head(0, h0, out)` runs the classifier on the cls token's row;
// a model with a distillation head (DeiT distilled) also runs `head(1, h1, out)` on the dist
// token's row, and its logits are the mean of the two (DeiT's inference). h0 and h1 are passed
// on mutable (observers may rewrite a head's input in place). head_out and
// head_dist_out are [B, classes] scratch; without a distillation head the classifier writes
// `logits` directly.
template <class HeadFn>
void RunHeads(const ViTConfig& c, int batch, float* h0, float* h1, float* head_out,
              float* head_dist_out, HeadFn head, float* logits) {
  if (!c.head_dist) {
    head(0, h0, logits);
    return;
  }
  head(0, h0, head_out);
  head(1, h1, head_dist_out);
  for (int64_t i = 0; i < static_cast<int64_t>(batch) * c.num_classes; ++i) {
    logits[i] = 0.5f * (head_out[i] + head_dist_out[i]);
  }
}

// The layer order of a forward pass: embed(), block(0) ... block(depth - 1), head().
template <class EmbedFn, class BlockFn, class HeadFn>
void RunLayers(const ViTConfig& c, EmbedFn embed, BlockFn block, HeadFn head) {
  embed();
  for (int i = 0; i < c.depth; ++i) block(i);
  head();
}

}  // namespace vitq::stages
