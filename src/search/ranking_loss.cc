// Ranking loss implementations (search stage). Liu et al., "Post-Training Quantization for Vision
// Transformer", NeurIPS 2021, eq. 7; the hinge Φ(p) = max(0, θ - p).
#include "ranking_loss.h"

#include "../kernels/simd.h"

#if VITQ_X86
#include <immintrin.h>
#endif

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

namespace {

// The windowed sum once bv (the quantized scores in float order) is in scratch[0, w); compiled
// per SIMD level (kernels/simd.h).
VITQ_SIMD_BODY RankSum WindowedSortedBody(const uint16_t* group_end, const float* av, int w,
                                          float theta, float* scratch) {
  const float* bv = scratch;
  float* limit = scratch + w;  // per position p: pairs (p, q) with av[q] < limit[p] have no hinge
  int32_t* begin = reinterpret_cast<int32_t*>(scratch + 2 * w);  // group_end as int32
  float e = 0.0f;
#pragma omp simd reduction(max : e)
  for (int p = 0; p < w; ++p) e = std::max(e, std::fabs(bv[p] - av[p]));
  const float reach = theta + e;
  int64_t pairs = 0;
#pragma omp simd reduction(+ : pairs)
  for (int p = 0; p < w; ++p) {
    limit[p] = bv[p] - reach - 1e-5f * (std::fabs(bv[p]) + reach + 1.0f);
    begin[p] = group_end[p];
    pairs += w - group_end[p];
  }
  // Pairs (p, p + k), vectorized over p, for k = 1, 2, ... until no position's window reaches
  // offset k (av falls with k, so a window that ends stays ended). Most windows are a few
  // positions long, so this is a few vector passes over the row.
  double sum = 0;
  for (int k = 1; k < w; ++k) {
    float acc = 0.0f;
    int reached = 0;
#pragma omp simd reduction(+ : acc) reduction(| : reached)
    for (int p = 0; p < w - k; ++p) {
      const int in_window = static_cast<int>(av[p + k] >= limit[p]);
      const int valid = in_window & static_cast<int>(p + k >= begin[p]);
      const float h = std::max(0.0f, theta - bv[p] + bv[p + k]);
      acc += valid != 0 ? h : 0.0f;
      reached |= in_window;
    }
    sum += acc;
    if (reached == 0) break;
  }
  RankSum r;
  r.sum = sum;
  r.pairs = pairs;
  return r;
}
VITQ_SIMD_FUNCTION(, RankSum, WindowedSorted,
                   (const uint16_t* group_end, const float* av, int w, float theta, float* scratch),
                   (group_end, av, w, theta, scratch))

#if VITQ_X86
// The same sum with AVX-512: 16 consecutive positions p per vector, each block walking its
// offsets k until all 16 windows have ended, so a block costs its own longest window rather
// than the row's, and the lanes are summed once per block.
__attribute__((target("avx512f"))) inline __m512 Abs(__m512 x) {
  // Not _mm512_abs_ps: GCC 12 warns spuriously inside it (-Wmaybe-uninitialized).
  return _mm512_castsi512_ps(
      _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

__attribute__((target("avx512f"))) RankSum WindowedSortedBlocks512(const uint16_t* group_end,
                                                                   const float* av, int w,
                                                                   float theta, float* scratch) {
  const float* bv = scratch;
  __m512 emax = _mm512_setzero_ps();
  for (int p = 0; p < w; p += 16) {
    const __mmask16 m = w - p >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (w - p)) - 1);
    const __m512 d =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(m, bv + p), _mm512_maskz_loadu_ps(m, av + p));
    emax = _mm512_maskz_max_ps(0xFFFF, emax, Abs(d));
  }
  // Lanes reduced through memory, and maskz forms of max/abs: GCC 12 warns spuriously
  // (-Wmaybe-uninitialized) inside the intrinsics that start from _mm512_undefined_ps.
  alignas(64) float lanes_out[16];
  _mm512_store_ps(lanes_out, emax);
  float e = 0.0f;
  for (float v : lanes_out) e = std::max(e, v);
  const float reach = theta + e;
  const __m512 vreach = _mm512_set1_ps(reach), vtheta = _mm512_set1_ps(theta),
               vtol = _mm512_set1_ps(1e-5f), vone = _mm512_set1_ps(1.0f),
               zero = _mm512_setzero_ps();
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int64_t pairs = 0;
  double sum = 0;
  for (int p0 = 0; p0 < w; p0 += 16) {
    const int lanes = std::min(16, w - p0);
    const __mmask16 mp = lanes == 16 ? 0xFFFF : static_cast<__mmask16>((1u << lanes) - 1);
    const __m512 b_p = _mm512_maskz_loadu_ps(mp, bv + p0);
    // limit = b - reach - 1e-5 (|b| + reach + 1), as in the portable version.
    const __m512 limit =
        _mm512_sub_ps(_mm512_sub_ps(b_p, vreach),
                      _mm512_mul_ps(vtol, _mm512_add_ps(_mm512_add_ps(Abs(b_p), vreach), vone)));
    alignas(64) int32_t ge[16] = {};
    for (int l = 0; l < lanes; ++l) {
      ge[l] = group_end[p0 + l];
      pairs += w - ge[l];
    }
    const __m512i begin = _mm512_load_si512(ge);
    const __m512 base = _mm512_sub_ps(vtheta, b_p);
    const __m512i p_idx = _mm512_add_epi32(_mm512_set1_epi32(p0), lane);
    __m512 acc = zero;
    for (int k = 1; p0 + k < w; ++k) {
      const int q0 = p0 + k;
      const int qn = std::min(16, w - q0);
      const __mmask16 mq = static_cast<__mmask16>(mp & (qn >= 16 ? 0xFFFF : (1u << qn) - 1));
      const __m512 a_q = _mm512_maskz_loadu_ps(mq, av + q0);
      const __mmask16 in_window = _mm512_mask_cmp_ps_mask(mq, a_q, limit, _CMP_GE_OQ);
      if (in_window == 0) break;
      const __m512i q_idx = _mm512_add_epi32(p_idx, _mm512_set1_epi32(k));
      const __mmask16 valid = _mm512_mask_cmpge_epi32_mask(in_window, q_idx, begin);
      const __m512 h = _mm512_maskz_max_ps(0xFFFF, zero,
                                           _mm512_add_ps(base, _mm512_maskz_loadu_ps(mq, bv + q0)));
      acc = _mm512_mask_add_ps(acc, valid, acc, h);
    }
    _mm512_store_ps(lanes_out, acc);
    float block_sum = 0.0f;
    for (float v : lanes_out) block_sum += v;
    sum += block_sum;
  }
  RankSum r;
  r.sum = sum;
  r.pairs = pairs;
  return r;
}

#endif  // VITQ_X86

RankSum Windowed(const uint16_t* group_end, const float* av, int w, float theta, float* scratch,
                 RankingKernel kernel) {
#if VITQ_X86
  if (kernel == RankingKernel::kBest && kernels::EffectiveSimd() == kernels::SimdLevel::kAvx512)
    return WindowedSortedBlocks512(group_end, av, w, theta, scratch);
#endif
  return WindowedSorted(group_end, av, w, theta, scratch);
}

}  // namespace

RankSum RankingRowWindowedFlat(const uint16_t* order, const uint16_t* group_end, const float* av,
                               const float* b, int w, float theta, float* scratch,
                               RankingKernel kernel) {
  for (int p = 0; p < w; ++p) scratch[p] = b[order[p]];
  return Windowed(group_end, av, w, theta, scratch, kernel);
}

RankSum RankingRowWindowedAcc(const uint16_t* order, const uint16_t* group_end, const float* av,
                              const int32_t* acc, float scale, int w, float theta, float* scratch) {
  for (int p = 0; p < w; ++p) scratch[p] = static_cast<float>(acc[order[p]]) * scale;
  return Windowed(group_end, av, w, theta, scratch, RankingKernel::kBest);
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
