// Mixed precision by nuclear norm (search stage; method.md §1.7): one bit-width per module (each
// block's MSA: qkv, Q·Kᵀ, P·V, proj; and MLP: fc1, fc2), chosen to minimize
// Σ Ω_i(b_i) = Σ ||Y_i||_* · ||Ŷ_i(b_i) − Y_i||² (or its scale-free form, below) under a model-size
// budget, exactly, by dynamic programming over the budget. patch_embed and head stay at the highest
// candidate bit-width.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vitq/model.h"
#include "vitq/plan.h"
#include "vitq/quantize.h"
#include "vitq/status.h"

namespace vitq {

// Sum of the singular values of a row-major [rows, cols] matrix (LAPACK sgesdd, values only).
double NuclearNorm(const float* a, int rows, int cols);

// One choice per item minimizing Σ value[i][c] subject to Σ cost[i][c] <= budget (costs in
// non-negative integer units). `best_by_budget`, when given, receives for every total cost
// 0..budget the least Σ value reachable at exactly that cost (+inf where none is). Errors: no
// choice fits the budget (the message gives the cheapest total).
struct KnapsackItem {
  std::vector<int64_t> cost;
  std::vector<double> value;
};
Result<std::vector<int>> SolveKnapsack(const std::vector<KnapsackItem>& items, int64_t budget,
                                       std::vector<double>* best_by_budget = nullptr);

// The sensitivity Ω_i(b). kPaper: method.md §1.7, ||Y||_* · ||Ŷ(b) − Y||², in the units of the
// module's Y (P in [0, 1] for an MSA, the output features for an MLP), so MSA and MLP values
// differ by orders of magnitude. kScaleFree: the same formula with each module's Y and Ŷ divided
// by s_i = sqrt(mean ||Y_i||²_F) (the RMS Frobenius norm over heads and images), i.e.
// Ω_i / s_i³: invariant to the scale of a module's output, so the two module kinds compare.
enum class OmegaCriterion { kPaper, kScaleFree };
const char* OmegaCriterionName(OmegaCriterion c);  // "paper", "scale-free"
Result<OmegaCriterion> ParseOmegaCriterion(const std::string& name);

struct MixedPrecisionOptions {
  OmegaCriterion omega = OmegaCriterion::kPaper;
  std::vector<int> candidates;  // empty: {target-2 .. target+2} clipped to 2..8
  int target_bits = 0;          // budget = size of the uniform model at these bits, or
  double target_size_mb = 0;    // budget = this many MB (1e6 bytes) of parameters
  Status Validate() const;
  std::vector<int> Candidates() const;  // the effective, sorted list
};

struct MixedPrecisionReport {
  std::vector<std::string> modules;  // "blocks.0.attn", "blocks.0.mlp", ...
  std::vector<int64_t> params;       // weights per module
  std::vector<int> candidates;
  OmegaCriterion criterion = OmegaCriterion::kPaper;
  std::vector<double> nuclear_norm;               // per module
  std::vector<double> frobenius2;                 // per module: mean ||Y||²_F (s_i²)
  std::vector<std::vector<double>> error, omega;  // [module][candidate]
  std::vector<int> bits;                          // chosen, per module
  int64_t budget_bytes = 0, size_bytes = 0, uniform_min_bytes = 0;
  double total_omega = 0;
  std::vector<std::pair<int64_t, double>> pareto;  // model bytes -> least Σ Ω at that size
  double table_seconds = 0;
  std::string ToJson() const;
  std::string ParetoSvg() const;  // the Pareto curve as an SVG plot
};

// Uniform plans (with their reports) by bit-width, shared between mixed-precision runs on one
// calibration (compare).
struct CachedPlan {
  QuantPlan plan;
  QuantizeReport report;
};
using PlanCache = std::map<int, CachedPlan>;

// Runs the uniform search (options.method, parallel mode) at every candidate bit-width (reusing
// `cache`), builds the Ω table on the calibration images, solves the budget, and returns the
// combined plan. Errors: bad options, a budget below the all-minimum-bits model.
Result<QuantPlan> QuantizeMixedPrecision(const ViTModel& model, const CalibrationSet& calib,
                                         const QuantizeOptions& options,
                                         const MixedPrecisionOptions& mp,
                                         MixedPrecisionReport* report, QuantizeReport* qreport,
                                         PlanCache* cache = nullptr);

}  // namespace vitq
