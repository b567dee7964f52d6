// The building blocks of the `vitq` method (search stage, docs/METHOD.md): activation grids by
// error search (zero point / unsigned below 8 bits), per-channel weight scales, GPTQ rounding,
// and the LayerNorm reparameterization. Exposed for the tests; method_vitq.cc composes them.
#pragma once

#include <cstdint>
#include <vector>

#include "vitq/model.h"
#include "vitq/plan.h"
#include "vitq/status.h"

namespace vitq::search {

// The per-tensor activation grid minimizing ||x - Q(x)||^2 over clipping candidates (on at most
// 2^16 evenly strided values of x). Symmetric signed when !asymmetric, or when bits == 8 (the
// integer engine stores most activations as int8, so an 8-bit grid with a zero point does not
// fit) unless unsigned8 and x >= 0 everywhere, or zero_point8; else an unsigned grid
// [0, 2^b - 1] with a zero point (z = 0 when x >= 0). unsigned8 is for the attention
// probabilities P, which the engine holds as uint8 at 8 bits: all 256 levels instead of the 128
// non-negative ones of int8. zero_point8 is for fc2's input, which the engine holds as the u8
// codes of a grid with any zero point: post-GELU values (>= -0.17) get 256 levels instead of the
// ~129 an int8 grid spends on them.
SitePlan SearchActivationGrid(const float* x, int64_t n, int bits, bool asymmetric,
                              bool unsigned8 = false, bool zero_point8 = false);

// The input grid of a linear layer with weights w [n, k] for inputs x [rows, k]: starts from
// SearchActivationGrid, then refines the clipping of each end to minimize the error the grid
// causes in the layer's output, ||(Q(x) - x) wᵀ||^2, on at most 512 evenly strided rows.
// zero_point8 as for SearchActivationGrid.
SitePlan SearchInputGrid(const float* x, int64_t rows, int k, const float* w, int n, int bits,
                         bool asymmetric, bool zero_point8 = false);

// The input grid of a linear layer as a per-row (per-token) kUniformRow grid: its scale, the
// share of each row's range one step takes, searched from 1 / qmax (each row's min-max) down to
// half of that (the row's top clipped) for the least output error ||(Q(x) - x) wᵀ||^2 on at most
// 512 evenly strided rows, as SearchInputGrid.
SitePlan SearchRowInputGrid(const float* x, int64_t rows, int k, const float* w, int n, int bits);

// Symmetric signed weight scales for w [rows, cols]: one per row (per_channel) or one for the
// tensor, each minimizing the rounding error ||w - Q(w)||^2 over clipping ratios 0.5..1 of max|w|.
std::vector<float> SearchWeightScales(const float* w, int rows, int cols, int bits,
                                      bool per_channel);

// H = XᵀX (double) of a layer's inputs x [rows, k].
std::vector<double> InputHessian(const float* x, int64_t rows, int k);

// GPTQ / OPTQ (Frantar et al. 2023, method.md §4.4): rounds w [rows, cols] in place onto the
// symmetric signed `bits` grid with `scales` (one per row, or one), column by column (in
// decreasing diag(H) order when act_order), pushing each column's rounding error onto the columns
// not yet rounded through the Cholesky factor of (H + λI)^-1, λ = damp · mean(diag H). On return
// every w[r][c] is exactly q · scale with q an integer on the grid. Columns whose inputs are
// always zero (diag H = 0) are set to zero. Errors: H not positive definite even after damping.
Status GptqQuantize(float* w, int rows, int cols, std::vector<double> h,
                    const std::vector<float>& scales, int bits, bool act_order = true,
                    double damp = 0.01);

// Round to nearest on the same grid (GPTQ off).
void RoundToGrid(float* w, int rows, int cols, const std::vector<float>& scales, int bits);

// LayerNorm reparameterization (RepQ-ViT's idea, method.md §4.1, in a centred symmetric form):
// LN output channel c spans [lo_c, hi_c] on the calibration tokens; with centre m_c and
// half-range h_c, and h̃ the mean half-range, x'_c = (x_c - m_c) / r_c with r_c = h_c / h̃ spans
// [-h̃, h̃] in every channel, so one symmetric per-tensor grid fits all channels as well as a
// per-channel grid (scale h̃ r_c / qmax, offset m_c) would. Folded exactly: γ' = γ / r,
// β' = (β - m) / r into the LayerNorm, W' = W diag(r), b' = b + W m into every consumer.
// Constant channels (h_c ~ 0, e.g. a zero LayerNorm weight) get r_c = 1 and become exactly 0.
struct LnFold {
  std::vector<float> r, m;
};
// From LN outputs x [rows, d]; centred = false keeps m = 0 (a consumer without a bias).
LnFold ComputeLnFold(const float* x, int64_t rows, int d, bool centred);
// Folds into the LayerNorm's γ, β and its consumers' weights and biases (in place).
void FoldLayerNorm(const LnFold& f, Tensor* gamma, Tensor* beta,
                   const std::vector<LinearWeights*>& consumers);
// x'_c = (x_c - m_c) / r_c on captured LN outputs x [rows, d] (in place).
void ApplyLnFold(const LnFold& f, float* x, int64_t rows, int d);

}  // namespace vitq::search
