// Float32 ViT forward pass (graph stage): patch embedding, tokens, pre-norm blocks, final norm,
// head(s), with observer hooks at the quantization sites.
#include "vitq/engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../kernels/dnnl_ops.h"
#include "vit_stages.h"

namespace vitq {

namespace {
const char* LayerSuffix(SiteLayer layer) {
  switch (layer) {
    case SiteLayer::kPatchEmbed:
      return "patch_embed.proj";
    case SiteLayer::kQkv:
      return "attn.qkv";
    case SiteLayer::kProj:
      return "attn.proj";
    case SiteLayer::kFc1:
      return "mlp.fc1";
    case SiteLayer::kFc2:
      return "mlp.fc2";
    case SiteLayer::kHead:
      return "head";
    case SiteLayer::kHeadDist:
      return "head_dist";
    case SiteLayer::kQk:
      return "attn.qk";
    case SiteLayer::kPv:
      return "attn.pv";
  }
  return "?";
}
const char* RoleSuffix(SiteRole role) {
  switch (role) {
    case SiteRole::kIn:
      return "in";
    case SiteRole::kOut:
      return "out";
    case SiteRole::kA:
      return "a";
    case SiteRole::kB:
      return "b";
  }
  return "?";
}
}  // namespace

std::string Site::LayerName() const {
  std::string s = LayerSuffix(layer);
  return block >= 0 ? "blocks." + std::to_string(block) + "." + s : s;
}

std::string Site::Name() const { return LayerName() + ":" + RoleSuffix(role); }

struct Engine::Impl {
  const ViTModel& model;
  kernels::DnnlContext ctx;
  kernels::DnnlOps ops{&ctx};
  std::unique_ptr<kernels::PackedLinear> patch, head, head_dist;
  struct BlockLayers {
    std::unique_ptr<kernels::PackedLinear> qkv, proj, fc1, fc2;
  };
  std::vector<BlockLayers> blocks;
  // Work buffers, grown to the largest batch seen.
  int capacity = 0;
  Tensor patches, x, ln, qkv, q, k, v, scores, attn, hidden, tmp, cls, head_out, head_dist_out;

  explicit Impl(const ViTModel& m) : model(m) {
    const ViTWeights& w = m.weights;
    auto make = [&](const LinearWeights& l) {
      return std::make_unique<kernels::PackedLinear>(&ctx, l.weight.f32(), l.bias.f32(),
                                                     static_cast<int>(l.weight.dim(0)),
                                                     static_cast<int>(l.weight.dim(1)));
    };
    patch = make(w.patch_embed);
    head = make(w.head);
    if (m.spec.config.head_dist) head_dist = make(w.head_dist);
    for (const auto& b : w.blocks)
      blocks.push_back({make(b.qkv), make(b.proj), make(b.fc1), make(b.fc2)});
  }

  void Reserve(int batch) {
    if (batch <= capacity) return;
    const ViTConfig& c = model.spec.config;
    const int64_t b = batch, t = c.num_tokens(), d = c.embed_dim, h = c.num_heads,
                  hd = c.head_dim();
    patches = Tensor::F32({b, c.num_patches(), c.patch_dim()});
    x = Tensor::F32({b, t, d});
    ln = Tensor::F32({b, t, d});
    qkv = Tensor::F32({b, t, 3 * d});
    q = Tensor::F32({b, h, t, hd});
    k = Tensor::F32({b, h, t, hd});
    v = Tensor::F32({b, h, t, hd});
    scores = Tensor::F32({b, h, t, t});
    attn = Tensor::F32({b, t, d});
    hidden = Tensor::F32({b, t, c.mlp_hidden});
    tmp = Tensor::F32({b, t, std::max<int64_t>(d, c.patch_dim())});
    cls = Tensor::F32({b, c.num_prefix_tokens(), d});
    head_out = Tensor::F32({b, c.num_classes});
    head_dist_out = Tensor::F32({b, c.num_classes});
    capacity = batch;
  }

  static bool Wants(Observer* o, const Site& s) { return o != nullptr && o->Wants(s); }
  static void Emit(Observer* o, const Site& s, float* data, Shape shape) {
    if (o != nullptr && o->Wants(s)) o->Observe(s, TensorView{data, std::move(shape)});
  }

  // A linear layer with its :in/:out sites. `gelu` fuses GELU (fc1) and `accumulate` adds into
  // dst (residual), unless the output site is observed: then the raw output is materialized,
  // observed, and the epilogue applied afterwards.
  void Linear(kernels::PackedLinear& layer, Site site, float* src, Shape src_shape, int m,
              float* dst, bool gelu, bool accumulate, Observer* o) {
    site.role = SiteRole::kIn;
    Emit(o, site, src, src_shape);
    site.role = SiteRole::kOut;
    Shape out_shape = src_shape;
    out_shape.back() = layer.n();
    if (!Wants(o, site)) {
      layer.Run(src, m, dst, gelu, accumulate);
      return;
    }
    float* out = accumulate ? tmp.f32() : dst;
    layer.Run(src, m, out, false, false);
    o->Observe(site, TensorView{out, out_shape});
    const int64_t n = static_cast<int64_t>(m) * layer.n();
    if (gelu) ops.Gelu(out, n);
    if (accumulate) {
#pragma omp parallel for
      for (int64_t i = 0; i < n; ++i) dst[i] += out[i];
    }
  }

  void Embed(const float* images, int batch, float* xp, Observer* o) {
    Reserve(batch);
    const ViTConfig& c = model.spec.config;
    const int b = batch, np = c.num_patches(), pd = c.patch_dim();
    // Patch embedding as a GEMM over flattened patches (c, ky, kx), like the conv kernel.
    float* pt = patches.f32();
    stages::ExtractPatches(c, images, b, pt);
    float* tokens = tmp.f32();
    Linear(*patch, {-1, SiteLayer::kPatchEmbed, SiteRole::kIn}, pt, {b, np, pd}, b * np, tokens,
           false, false, o);
    stages::AssembleTokens(c, model.weights, tokens, b, xp);
  }

  void Block(int li, float* xp, int batch, Observer* o) {
    Reserve(batch);
    const ViTConfig& c = model.spec.config;
    const int b = batch, t = c.num_tokens(), d = c.embed_dim, nh = c.num_heads, hd = c.head_dim();
    const int m = b * t;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const BlockWeights& bw = model.weights.blocks[li];
    BlockLayers& bl = blocks[li];
    ops.LayerNorm(xp, m, d, bw.norm1_weight.f32(), bw.norm1_bias.f32(), c.ln_eps, ln.f32());
    Linear(*bl.qkv, {li, SiteLayer::kQkv, SiteRole::kIn}, ln.f32(), {b, t, d}, m, qkv.f32(), false,
           false, o);
    // Split [B, T, 3, H, hd] into Q, K, V [B, H, T, hd].
    float* qkvp = qkv.f32();
#pragma omp parallel for collapse(2)
    for (int bi = 0; bi < b; ++bi) {
      for (int ti = 0; ti < t; ++ti) {
        const float* row = qkvp + (static_cast<int64_t>(bi) * t + ti) * 3 * d;
        for (int hi = 0; hi < nh; ++hi) {
          int64_t off = ((static_cast<int64_t>(bi) * nh + hi) * t + ti) * hd;
          std::memcpy(q.f32() + off, row + hi * hd, hd * sizeof(float));
          std::memcpy(k.f32() + off, row + d + hi * hd, hd * sizeof(float));
          std::memcpy(v.f32() + off, row + 2 * d + hi * hd, hd * sizeof(float));
        }
      }
    }
    Shape head_shape{b, nh, t, hd};
    Emit(o, {li, SiteLayer::kQk, SiteRole::kA}, q.f32(), head_shape);
    Emit(o, {li, SiteLayer::kQk, SiteRole::kB}, k.f32(), head_shape);
    ops.AttentionScores(q.f32(), k.f32(), b * nh, t, hd, scale, scores.f32());
    ops.Softmax(scores.f32(), b * nh * t, t);
    Emit(o, {li, SiteLayer::kPv, SiteRole::kA}, scores.f32(), {b, nh, t, t});
    Emit(o, {li, SiteLayer::kPv, SiteRole::kB}, v.f32(), head_shape);
    ops.AttentionValues(scores.f32(), v.f32(), b, nh, t, hd, attn.f32());
    Linear(*bl.proj, {li, SiteLayer::kProj, SiteRole::kIn}, attn.f32(), {b, t, d}, m, xp, false,
           true, o);
    ops.LayerNorm(xp, m, d, bw.norm2_weight.f32(), bw.norm2_bias.f32(), c.ln_eps, ln.f32());
    Linear(*bl.fc1, {li, SiteLayer::kFc1, SiteRole::kIn}, ln.f32(), {b, t, d}, m, hidden.f32(),
           true, false, o);
    Linear(*bl.fc2, {li, SiteLayer::kFc2, SiteRole::kIn}, hidden.f32(), {b, t, c.mlp_hidden}, m, xp,
           false, true, o);
  }

  void Head(const float* xp, int batch, float* logits, Observer* o) {
    Reserve(batch);
    const ViTConfig& c = model.spec.config;
    const ViTWeights& w = model.weights;
    const int b = batch, d = c.embed_dim;
    // Final norm on the prefix tokens only, then token 0 (and 1) as contiguous [B, D] inputs.
    float* h0 = ln.f32();
    float* h1 = ln.f32() + static_cast<int64_t>(b) * d;
    stages::HeadInputs(c, w, ops, xp, b, cls.f32(), h0, h1);
    stages::RunHeads(
        c, b, h0, h1, head_out.f32(), head_dist_out.f32(),
        [&](int which, float* in, float* out) {
          if (which == 0) {
            Linear(*head, {-1, SiteLayer::kHead, SiteRole::kIn}, in, {b, d}, b, out, false, false,
                   o);
          } else {
            Linear(*head_dist, {-1, SiteLayer::kHeadDist, SiteRole::kIn}, in, {b, d}, b, out, false,
                   false, o);
          }
        },
        logits);
  }

  void Forward(const float* images, int batch, float* logits, Observer* o) {
    Reserve(batch);
    stages::RunLayers(
        model.spec.config, [&] { Embed(images, batch, x.f32(), o); },
        [&](int li) { Block(li, x.f32(), batch, o); }, [&] { Head(x.f32(), batch, logits, o); });
  }
};

Engine::Engine(const ViTModel& model) : impl_(std::make_unique<Impl>(model)) {}
Engine::~Engine() = default;
void Engine::Forward(const float* images, int batch, float* logits, Observer* observer) {
  impl_->Forward(images, batch, logits, observer);
}
void Engine::Embed(const float* images, int batch, float* x, Observer* observer) {
  impl_->Embed(images, batch, x, observer);
}
void Engine::Block(int index, float* x, int batch, Observer* observer) {
  impl_->Block(index, x, batch, observer);
}
void Engine::Head(const float* x, int batch, float* logits, Observer* observer) {
  impl_->Head(x, batch, logits, observer);
}
const ViTModel& Engine::model() const { return impl_->model; }

}  // namespace vitq
