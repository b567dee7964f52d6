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

}  // namespace vitq::stages
