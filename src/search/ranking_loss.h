// The ranking-aware loss of Liu et al. 2021 (method.md §1.4) for one row of attention scores:
//   sum over key pairs (i, j) with a_i > a_j of max(0, theta - (b_i - b_j))
// where a are the float scores and b the quantized ones. Pairs with equal float scores are
// skipped. Three implementations, equal up to float rounding (search stage):
//   RankingRowBruteForce: the O(w²) definition, the test oracle;
//   RankingRowFenwick: O(w log w) with a Fenwick tree over the ranks of the quantized scores;
//   RankingRowWindowedFlat: exact, summing only pairs that can have a non-zero hinge; the
//   search uses it (faster than the Fenwick tree at w = 197).
#pragma once

#include <cstdint>
#include <vector>

namespace vitq::search {

struct RankSum {
  double sum = 0;     // hinge sum
  int64_t pairs = 0;  // pairs with distinct float scores
};

RankSum RankingRowBruteForce(const float* a, const float* b, int w, float theta);

// The float order of one row, computed once per row and reused for every candidate: `order`
// lists indices by decreasing a; `group_end[p]` is the first sorted position whose score is
// strictly below that at position p (ties form groups).
struct RowOrder {
  std::vector<uint16_t> order, group_end;
};
RowOrder SortRow(const float* a, int w);

// Exact and usually near O(w): with E = max_j |b_j - a_j| over the row, a pair (i, j) with
// a_j < b_i - θ - E has b_j <= a_j + E < b_i - θ, so its hinge is zero; as a_j falls along the
// float-sorted row, only the pairs inside that window after i are summed, offset by offset,
// vectorized over the row. Flat per-row arrays: `order` and `group_end` of
// SortRow, `a_sorted` the float scores in that order (precomputed once per row, so only b is
// gathered per candidate); scratch holds RankingScratchSize(w) floats.
// kBest: the AVX-512 kernel where the CPU has it (16 positions per vector, each block of 16
// walking only its own windows), else the portable one; kPortable forces the latter (tests).
enum class RankingKernel { kBest, kPortable };
inline int RankingScratchSize(int w) { return 3 * w; }
RankSum RankingRowWindowedFlat(const uint16_t* order, const uint16_t* group_end,
                               const float* a_sorted, const float* b, int w, float theta,
                               float* scratch, RankingKernel kernel = RankingKernel::kBest);
// The same with b = scale · acc (a row of integer accumulators), converted while gathered.
RankSum RankingRowWindowedAcc(const uint16_t* order, const uint16_t* group_end,
                              const float* a_sorted, const int32_t* acc, float scale, int w,
                              float theta, float* scratch);

struct FenwickScratch {
  std::vector<float> values, sorted;
  std::vector<double> sum;
  std::vector<int32_t> count;
};
RankSum RankingRowFenwick(const RowOrder& ro, const float* b, int w, float theta,
                          FenwickScratch* scratch);

}  // namespace vitq::search
