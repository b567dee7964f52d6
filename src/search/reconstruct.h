// Block reconstruction (search stage, docs/METHOD.md "Reconstruction"): after the closed-form
// initialization of a block, learn its weights' rounding (AdaRound) and its activation steps
// (LSQ) so that the quantized block's output on the calibration images matches the float
// block's, with inputs from the quantized prefix mixed at random with the float inputs (QDrop).
#pragma once

#include <cstdint>
#include <functional>

#include "block_train.h"

namespace vitq::search {

struct ReconstructOptions {
  int iters = 300;             // optimizer steps per block
  int batch = 8;               // images per step
  double drop_prob = 0.5;      // QDrop: probability that an element keeps its float value
  double round_weight = 0.01;  // λ of AdaRound's rounding regularizer
  double lr_round = 0.1;       // Adam step for the rounding variables
  double lr_step = 0.01;       // Adam step for the activation steps, relative to their start
  bool learn_steps = true;     // LSQ steps (else only the rounding is learned)
  double warmup = 0.2;         // share of the steps without the rounding regularizer
};

struct ReconstructStats {
  double loss_init = 0;    // block loss of the closed-form initialization (hard weights, no drop)
  double loss_final = 0;   // of the learned result (hard weights, no drop), kept or not
  bool kept_init = false;  // the reconstruction did not improve on the initialization
  double seconds = 0;
};

// The block loss: mean over tokens of Σ_channels (out - target)², no QDrop, weights as the block
// has them now; inputs x and targets [n, tokens, dim].
double BlockLoss(TrainBlock<float>* block, const float* x, const float* target, int n, int batch);

// `block` arrives with its quantizers set up: linear layers with their float weights (w) and
// scales, activation quantizers with their closed-form grids; `init_weights` holds the
// closed-form rounded weights of qkv, proj, fc1, fc2 (on their grid). Inputs xq (from
// the quantized prefix), xf (from the float model) and the float block's outputs `target`, each
// [n, tokens, dim]. On return the block holds the better of the initialization and the learned
// result: hard weights on the grid and the steps. `progress(step, loss)` is called every step.
ReconstructStats ReconstructBlock(TrainBlock<float>* block,
                                  const std::array<std::vector<float>, 4>& init_weights,
                                  const float* xq, const float* xf, const float* target, int n,
                                  const ReconstructOptions& opts, uint64_t seed,
                                  const std::function<void(int, double)>& progress);

}  // namespace vitq::search
