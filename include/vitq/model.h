// The float ViT model: weights under timm names, loaded from timm or Hugging Face checkpoints
// (graph stage). Hugging Face tensors are mapped onto timm's layout once, here.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "vitq/model_config.h"
#include "vitq/safetensors.h"
#include "vitq/status.h"
#include "vitq/tensor.h"

namespace vitq {

struct LinearWeights {
  Tensor weight;  // [out, in]
  Tensor bias;    // [out] (zeros when the checkpoint has none)
};

struct BlockWeights {
  Tensor norm1_weight, norm1_bias;  // [D]
  LinearWeights qkv;                // [3D, D]; rows [q; k; v], head h owns rows h*hd.. in each
  LinearWeights proj;               // [D, D]
  Tensor norm2_weight, norm2_bias;  // [D]
  LinearWeights fc1;                // [mlp_hidden, D]
  LinearWeights fc2;                // [D, mlp_hidden]
};

struct ViTWeights {
  LinearWeights patch_embed;  // [D, C*p*p] (the conv kernel flattened in (c, ky, kx) order)
  Tensor cls_token;           // [D]
  Tensor dist_token;          // [D] (distilled DeiT only)
  Tensor pos_embed;           // [tokens, D]
  std::vector<BlockWeights> blocks;
  Tensor norm_weight, norm_bias;  // [D]
  LinearWeights head;             // [classes, D]
  LinearWeights head_dist;        // [classes, D] (distilled DeiT with a second head only)
};

struct ViTModel {
  ModelSpec spec;
  ViTWeights weights;
  int64_t NumParams() const;
};

// Loads MODEL (see LoadModelSpec); every tensor is checked for presence, shape and dtype, and
// the error names the file, the tensor, and the expected and found shapes.
Result<ViTModel> LoadModel(const std::string& model_path);

// Reads the weights of `spec` under timm names from an open safetensors file (any float dtype).
// Tensors named in `skip` are not read and stay empty (the caller fills them).
Result<ViTWeights> ReadTimmWeights(const SafetensorsFile& file, const ViTConfig& config,
                                   const std::set<std::string>& skip = {});

// A model with timm-style random initialization (trunc. normal std 0.02 for linear weights and
// embeddings, zero biases, unit LayerNorm), for benchmarks and tests.
ViTModel RandomModel(const ViTConfig& config, uint64_t seed);

// Writes `model` as a timm hub checkpoint (config.json with architecture, model_args and
// pretrained_cfg, and model.safetensors) into `dir`, creating it. Files are written atomically.
Status SaveTimmCheckpoint(const ViTModel& model, const std::string& dir);

// Copies of every tensor with timm's stored shapes ([1, 1, D] tokens, [1, T, D] pos_embed,
// [D, C, p, p] patch conv), in state_dict order, for writing checkpoints.
std::vector<std::pair<std::string, Tensor>> TimmCheckpointTensors(const ViTModel& model);

// Every (timm name, tensor) pair of a model, in timm's state_dict order.
std::vector<std::pair<std::string, const Tensor*>> TimmStateDict(const ViTModel& model);

}  // namespace vitq
