// Per-operation scale search (search stage): the alternating search of Liu et al. 2021
// (method.md §1.5) with the similarity-aware objective (§1.3), the ranking loss on Q·Kᵀ (§1.4)
// and bias correction (§1.6); with cosine similarity and neither extra it is EasyQuant's search.
// Candidate outputs are computed with oneDNN int8 GEMMs from cached float outputs.
#pragma once

#include <string>
#include <vector>

#include "../kernels/dnnl_ops.h"

namespace vitq::search {

enum class Similarity { kPearson, kCosine };

// One quantized operation over the calibration images. "W" is the second operand (the weight of
// a linear layer, K of Q·Kᵀ, V of P·V), "X" the first (the input, Q, P).
struct OpTensors {
  std::string name;  // layer name: "blocks.0.attn.qkv", "blocks.0.attn.qk"
  bool is_matmul = false;
  int images = 0;  // held here: in an MPI job this rank's block of the calibration images
  // All calibration images of the job (0: `images`); figures are means over these, reduced in
  // image order whatever the number of processes (vitq/dist.h).
  int images_total = 0;
  int TotalImages() const { return images_total > 0 ? images_total : images; }
  // Linear: x [images * rows, k], weight [n, k], bias [n].
  const float* x = nullptr;
  int64_t rows = 0;
  int k = 0, n = 0;
  const float* weight = nullptr;
  std::vector<float> bias;
  // Matmul: a [images * heads, m, k]; b [images * heads, k, n] when b_rows_are_k, else
  // [images * heads, n, k] (K of Q·Kᵀ).
  const float* a = nullptr;
  const float* b = nullptr;
  int heads = 0, m = 0;
  bool b_rows_are_k = true;
  bool is_attention_scores = false;  // Q·Kᵀ: the ranking loss applies
};

struct SearchOptions {
  int bits_w = 8, bits_x = 8;
  Similarity similarity = Similarity::kPearson;
  bool ranking = true;  // on Q·Kᵀ only
  float gamma = 0.1f, theta = 0.2f;
  bool bias_correction = true;  // on linear layers only
  float alpha = 0.5f, beta = 1.2f;
  int candidates = 100;
  // Coarse-to-fine (method.md §1.5 allows it as an option): every coarse_step-th grid point, then
  // every point within coarse_step - 1 of the best of those and of the best one farther than
  // coarse_step from it. 0 or 1: the full grid.
  int coarse_step = 0;
  int max_rounds = 20;
  double tolerance = 1e-6;
  bool search = true;  // false: keep Δ0 (no search), still report the figures
};

struct OpResult {
  float scale_w = 0, scale_x = 0;
  std::vector<float> bias;                             // corrected bias (linear layers)
  double similarity_before = 0, similarity_after = 0;  // mean over images at Δ0 / at the result
  double ranking_before = 0, ranking_after = 0;        // L_rank (Q·Kᵀ only)
  double objective = 0;
  double sqnr_db = 0;
  double bias_shift = 0;  // mean |b' - b|
  int rounds = 0;
  int evaluations = 0;  // candidate outputs computed
};

// Runs the search. With fixed scales given (scale_w/scale_x > 0) no search is done: the figures
// are computed for those scales (and bias correction applied once when enabled).
OpResult SearchOp(const OpTensors& op, const SearchOptions& options, kernels::DnnlContext* ctx,
                  float fixed_scale_w = 0, float fixed_scale_x = 0);

// max|x| / 2^(bits-1): the initial interval Δ0 (method.md §1.5 step 1).
float InitialScale(const float* x, int64_t n, int bits);
// InitialScale of an activation split over the processes of an MPI job: the job's max|x| (exact,
// so equal to InitialScale over all images); InitialScale itself in a 1-process job.
float GlobalInitialScale(const float* x, int64_t n, int bits);

}  // namespace vitq::search
