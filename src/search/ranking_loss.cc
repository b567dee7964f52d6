// Ranking loss implementations (search stage). Liu et al., "Post-Training Quantization for Vision
// Transformer", NeurIPS 2021, eq. 7; the hinge Φ(p) = max(0, θ - p).
#include "ranking_loss.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vitq::search {

RankSum RankingRowBruteForce(const float* a, const float* b, int w, float theta) {
  RankSum r;
  for (int i = 0; i < w; ++i) {
    for (int j = i + 1; j < w; ++j) {
      if (a[i] == a[j]) continue;
      float p = (b[i] - b[j]) * (a[i] > a[j] ? 1.0f : -1.0f);
      r.sum += std::max(0.0f, theta - p);
      ++r.pairs;
    }
  }
  return r;
}

RowOrder SortRow(const float* a, int w) {
  RowOrder ro;
  ro.order.resize(w);
  std::iota(ro.order.begin(), ro.order.end(), 0);
  std::stable_sort(ro.order.begin(), ro.order.end(),
                   [a](uint16_t x, uint16_t y) { return a[x] > a[y]; });
  ro.group_end.resize(w);
  int end = w;
  for (int p = w - 1; p >= 0; --p) {
    if (p + 1 < w && a[ro.order[p]] != a[ro.order[p + 1]]) end = p + 1;
    ro.group_end[p] = static_cast<uint16_t>(end);
  }
  return ro;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) RankSum RankingRowWindowedFlat(
    const uint16_t* order, const uint16_t* group_end, const float* av, const float* b, int w,
    float theta, float* bv) {
  float e = 0.0f;
  for (int p = 0; p < w; ++p) {
    bv[p] = b[order[p]];
    e = std::max(e, std::fabs(bv[p] - av[p]));
  }
  RankSum r;
  const float reach = theta + 2.0f * e;
  double total = 0;
  for (int p = 0; p < w; ++p) {
    const int start = group_end[p];
    r.pairs += w - start;
    const float limit = av[p] - reach - 1e-5f * (std::fabs(av[p]) + reach + 1.0f);
    const float base = theta - bv[p];
    float acc = 0.0f;
    for (int q = start; q < w && av[q] >= limit; ++q) acc += std::max(0.0f, base + bv[q]);
    total += acc;
  }
  r.sum = total;
  return r;
}

RankSum RankingRowFenwick(const RowOrder& ro, const float* b, int w, float theta,
                          FenwickScratch* s) {
  s->values.resize(w);
  for (int p = 0; p < w; ++p) s->values[p] = b[ro.order[p]];
  s->sorted = s->values;
  std::sort(s->sorted.begin(), s->sorted.end());
  s->sum.assign(w + 1, 0.0);
  s->count.assign(w + 1, 0);
  auto rank = [&](float x) {  // number of values < x
    return static_cast<int>(std::lower_bound(s->sorted.begin(), s->sorted.end(), x) -
                            s->sorted.begin());
  };
  auto add = [&](int i, float x) {
    for (++i; i <= w; i += i & -i) {
      s->sum[i] += x;
      s->count[i] += 1;
    }
  };
  RankSum r;
  int inserted = 0;  // sorted positions [0, inserted) are in the tree
  for (int p = 0; p < w; ++p) {
    // Insert every earlier element with a strictly larger float score (earlier groups).
    while (inserted < p && ro.group_end[inserted] <= p) {
      add(rank(s->values[inserted]), s->values[inserted]);
      ++inserted;
    }
    const float vj = s->values[p];
    // Earlier i with v_i < v_j + theta contribute theta + v_j - v_i.
    int k = rank(vj + theta);
    double sum = 0;
    int64_t cnt = 0;
    for (int i = k; i > 0; i -= i & -i) {
      sum += s->sum[i];
      cnt += s->count[i];
    }
    r.sum += cnt * static_cast<double>(theta + vj) - sum;
    r.pairs += inserted;
  }
  return r;
}

}  // namespace vitq::search
