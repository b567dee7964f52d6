// Shared forward-pass stages (graph stage). See vit_stages.h.
#include "vit_stages.h"

#include <cstring>

namespace vitq::stages {

void ExtractPatches(const ViTConfig& c, const float* images, int batch, float* patches) {
  const int np = c.num_patches(), g = c.grid(), p = c.patch_size, pd = c.patch_dim();
#pragma omp parallel for collapse(2)
  for (int bi = 0; bi < batch; ++bi) {
    for (int pi = 0; pi < np; ++pi) {
      const int py = pi / g, px = pi % g;
      float* dst = patches + (static_cast<int64_t>(bi) * np + pi) * pd;
      for (int ch = 0; ch < c.in_chans; ++ch) {
        const float* plane =
            images + (static_cast<int64_t>(bi) * c.in_chans + ch) * c.img_size * c.img_size;
        for (int ky = 0; ky < p; ++ky) {
          std::memcpy(dst + (ch * p + ky) * p,
                      plane + static_cast<int64_t>(py * p + ky) * c.img_size + px * p,
                      p * sizeof(float));
        }
      }
    }
  }
}

void AssembleTokens(const ViTConfig& c, const ViTWeights& w, const float* tokens, int batch,
                    float* x) {
  const int t = c.num_tokens(), d = c.embed_dim, np = c.num_patches();
  const int prefix = c.num_prefix_tokens();
  const float* pos = w.pos_embed.f32();
#pragma omp parallel for
  for (int bi = 0; bi < batch; ++bi) {
    float* xb = x + static_cast<int64_t>(bi) * t * d;
    for (int j = 0; j < d; ++j) xb[j] = w.cls_token.f32()[j] + pos[j];
    if (c.dist_token) {
      for (int j = 0; j < d; ++j) xb[d + j] = w.dist_token.f32()[j] + pos[d + j];
    }
    for (int ti = prefix; ti < t; ++ti) {
      const float* src = tokens + (static_cast<int64_t>(bi) * np + ti - prefix) * d;
      for (int j = 0; j < d; ++j) xb[ti * d + j] = src[j] + pos[ti * d + j];
    }
  }
}

void HeadInputs(const ViTConfig& c, const ViTWeights& w, kernels::DnnlOps& ops, const float* x,
                int batch, float* cls, float* h0, float* h1) {
  const int t = c.num_tokens(), d = c.embed_dim, prefix = c.num_prefix_tokens();
  for (int bi = 0; bi < batch; ++bi) {
    std::memcpy(cls + static_cast<int64_t>(bi) * prefix * d, x + static_cast<int64_t>(bi) * t * d,
                static_cast<size_t>(prefix) * d * sizeof(float));
  }
  ops.LayerNorm(cls, batch * prefix, d, w.norm_weight.f32(), w.norm_bias.f32(), c.ln_eps, cls);
  for (int bi = 0; bi < batch; ++bi) {
    std::memcpy(h0 + static_cast<int64_t>(bi) * d, cls + static_cast<int64_t>(bi) * prefix * d,
                d * sizeof(float));
    if (c.dist_token) {
      std::memcpy(h1 + static_cast<int64_t>(bi) * d,
                  cls + (static_cast<int64_t>(bi) * prefix + 1) * d, d * sizeof(float));
    }
  }
}

}  // namespace vitq::stages
