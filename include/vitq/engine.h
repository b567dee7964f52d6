// The float ViT forward pass with observer hooks at every quantization site (graph stage).
#pragma once

#include <memory>
#include <string>

#include "vitq/model.h"
#include "vitq/status.h"
#include "vitq/tensor.h"

namespace vitq {

// The layers whose inputs/outputs are quantization sites. Matmul operands: kQk (Q·Kᵀ) and
// kPv (P·V), role kA = first operand (Q, P), kB = second (K, V).
enum class SiteLayer : uint8_t { kPatchEmbed, kQkv, kProj, kFc1, kFc2, kHead, kHeadDist, kQk, kPv };
enum class SiteRole : uint8_t { kIn, kOut, kA, kB };

// One quantization site. Its name (the one naming authority, docs/ARCHITECTURE.md) is the timm
// module path plus a suffix: "patch_embed.proj:in", "blocks.3.mlp.fc1:out", "blocks.3.attn.qk:a".
struct Site {
  int block = -1;  // -1 for patch_embed, head and head_dist
  SiteLayer layer = SiteLayer::kPatchEmbed;
  SiteRole role = SiteRole::kIn;
  std::string Name() const;
  std::string LayerName() const;  // without the suffix: "blocks.3.mlp.fc1"
  bool operator==(const Site& o) const {
    return block == o.block && layer == o.layer && role == o.role;
  }
};

// Observes (and may modify in place) the tensors at quantization sites. Shapes handed out:
//   linear :in / :out        [B, T, K] / [B, T, N] (patch_embed: T = patches; head: [B, D] / [B,
//   C]) attn.qk:a, :b (Q, K)     [B, H, T, hd] attn.pv:a (P, softmaxed) [B, H, T, T];  attn.pv:b
//   (V) [B, H, T, hd]
// Only sites for which Wants() is true are materialized; unobserved sites cost nothing and may be
// fused away (GELU into fc1, residual adds into proj/fc2).
class Observer {
 public:
  virtual ~Observer() = default;
  virtual bool Wants(const Site& site) const = 0;
  virtual void Observe(const Site& site, TensorView tensor) = 0;
};

// Runs a model in float32 on the CPU through oneDNN. The model must outlive the engine (weights
// are packed once, on first use). Not thread-safe; it uses OpenMP threads internally
// (omp_set_num_threads before construction sets how many).
class Engine {
 public:
  explicit Engine(const ViTModel& model);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // images: [batch, C, H, W] preprocessed; logits: [batch, num_classes].
  void Forward(const float* images, int batch, float* logits, Observer* observer = nullptr);
  // The same pass in stages, for calibration block by block. x is the residual stream
  // [batch, tokens, D], owned by the caller: Embed writes it, Block updates it in place, Head
  // reads it. Forward = Embed, Block 0..depth-1, Head.
  void Embed(const float* images, int batch, float* x, Observer* observer = nullptr);
  void Block(int index, float* x, int batch, Observer* observer = nullptr);
  void Head(const float* x, int batch, float* logits, Observer* observer = nullptr);
  const ViTModel& model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vitq
