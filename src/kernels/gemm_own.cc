// vitq's own exact int8 GEMM behind the GEMM seam (kernels stage): CPUs whose effective ISA
// lacks VNNI. oneDNN there multiplies int8 pairs with vpmaddubsw (u8 x s8, s8 sources shifted by
// +128), whose int16 pair sums saturate for full-range operands, so its accumulators are wrong
// (int8_kernels_avx2 showed it). This kernel widens int8 to int16 and sums products in int32:
// AVX2 (vpmaddwd, register-blocked) at SimdLevel::kAvx2 and above, a portable loop below.
#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm_backend.h"
#include "simd.h"

#if VITQ_X86
#include <immintrin.h>
#endif

namespace vitq::kernels {
namespace {
// The AVX2 kernel's register block (rows x columns) and the panel width of its weights layout.
constexpr int kMr = 6, kNr = 16;

// The portable exact kernel (below AVX2): four rows against one weight row at a time.
// X is int8_t, or uint8_t for an unsigned left operand (u8 x s8 products fit int16 too).
template <typename X>
void DotRows4(const X* x0, const X* x1, const X* x2, const X* x3, const int8_t* w, int k,
              int32_t* out) {
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int l = 0; l < k; ++l) {
    const int16_t wl = w[l];
    s0 += static_cast<int16_t>(x0[l]) * wl;
    s1 += static_cast<int16_t>(x1[l]) * wl;
    s2 += static_cast<int16_t>(x2[l]) * wl;
    s3 += static_cast<int16_t>(x3[l]) * wl;
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

template <typename X>
void PortableGemm(const X* x, const int8_t* w, int m, int n, int k, int32_t* acc) {
  const int blocks = (m + 3) / 4;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < blocks; ++b) {
    const int i0 = 4 * b;
    const X* r[4];
    for (int t = 0; t < 4; ++t) r[t] = x + static_cast<int64_t>(std::min(i0 + t, m - 1)) * k;
    int32_t out[4];
    for (int j = 0; j < n; ++j) {
      DotRows4(r[0], r[1], r[2], r[3], w + static_cast<int64_t>(j) * k, k, out);
      for (int t = 0; t < 4 && i0 + t < m; ++t) acc[static_cast<int64_t>(i0 + t) * n + j] = out[t];
    }
  }
}

#if VITQ_X86
// The AVX2 exact kernel: vpmaddwd on int8 widened to int16 (two products of at most 2^14, or
// 255 · 128 < 2^15 for a u8 left operand, summed per int32 lane, no saturation), register-blocked 6
// rows x 16 columns so no horizontal sums are needed. Weights are packed (once per layer; per call
// for the attention operands) into panels of 16 columns, K in pairs: panel[k2][c][2] = (w[c][2·k2],
// w[c][2·k2+1]) as int8 (zero-padded), widened in the loop; each row of x becomes int32 words
// holding an int16 pair, broadcast to all lanes.

template <int MR>
__attribute__((target("avx2"))) void Avx2MicroKernel(const int32_t* xp, int64_t x_stride, int k2,
                                                     const int8_t* panel, int32_t* out,
                                                     int64_t out_stride, int cols) {
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int p = 0; p < k2; ++p) {
    const __m128i raw0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(panel + p * 32));
    const __m128i raw1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(panel + p * 32 + 16));
    const __m256i w0 = _mm256_cvtepi8_epi16(raw0), w1 = _mm256_cvtepi8_epi16(raw1);
    for (int r = 0; r < MR; ++r) {
      const __m256i xb = _mm256_set1_epi32(xp[r * x_stride + p]);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(xb, w0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(xb, w1));
    }
  }
  alignas(32) int32_t tmp[kNr];
  for (int r = 0; r < MR; ++r) {
    if (cols == kNr) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * out_stride), acc[r][0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * out_stride + 8), acc[r][1]);
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc[r][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), acc[r][1]);
      std::memcpy(out + r * out_stride, tmp, static_cast<size_t>(cols) * sizeof(int32_t));
    }
  }
}

#endif  // VITQ_X86

// W(c, l) of weights given as [N, K] or, k_major, as [K, N].
inline int8_t WeightAt(const int8_t* w, bool k_major, int n, int k, int c, int l) {
  return k_major ? w[static_cast<int64_t>(l) * n + c] : w[static_cast<int64_t>(c) * k + l];
}

// The AVX2 kernel wherever the process's SIMD level has AVX2 (simd.h), else the portable one.
bool UseAvx2() { return VITQ_X86 && EffectiveSimd() >= SimdLevel::kAvx2; }

// Bytes of one weight matrix prepared for the own kernel.
size_t PreparedBytes(int n, int k) {
  if (!UseAvx2()) return static_cast<size_t>(n) * k;
  return static_cast<size_t>((n + kNr - 1) / kNr) * ((k + 1) / 2) * 32;
}

// One panel (16 columns from pn · 16) of weights prepared for the AVX2 kernel.
void PackPanel(const int8_t* w, bool k_major, int n, int k, int pn, int8_t* panel) {
  const int k2 = (k + 1) / 2;
  for (int p = 0; p < k2; ++p) {
    for (int c = 0; c < kNr; ++c) {
      // Columns 0-7 in the first 16 bytes of each K pair, 8-15 in the second.
      int8_t* d = panel + p * 32 + (c < 8 ? 0 : 16) + 2 * (c % 8);
      const int col = pn * kNr + c;
      d[0] = col < n ? WeightAt(w, k_major, n, k, col, 2 * p) : 0;
      d[1] = col < n && 2 * p + 1 < k ? WeightAt(w, k_major, n, k, col, 2 * p + 1) : 0;
    }
  }
}

// `batch` weight matrices (each [N, K], or [K, N] when k_major) prepared for the own kernel into
// out (batch · PreparedBytes(n, k)): AVX2 panels, or plain [N, K] copies for the portable kernel.
void PrepareOwn(const int8_t* w, bool k_major, int batch, int n, int k, int8_t* out) {
  const size_t bytes = PreparedBytes(n, k);
  if (!UseAvx2()) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < batch; ++b) {
      const int8_t* wb = w + static_cast<int64_t>(b) * n * k;
      for (int c = 0; c < n; ++c)
        for (int l = 0; l < k; ++l)
          out[b * bytes + static_cast<size_t>(c) * k + l] = WeightAt(wb, k_major, n, k, c, l);
    }
    return;
  }
  const int panels = (n + kNr - 1) / kNr;
  const size_t panel_bytes = static_cast<size_t>((k + 1) / 2) * 32;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < batch; ++b) {
    for (int pn = 0; pn < panels; ++pn) {
      PackPanel(w + static_cast<int64_t>(b) * n * k, k_major, n, k, pn,
                out + b * bytes + pn * panel_bytes);
    }
  }
}

#if VITQ_X86
// The micro-kernel for a block of 1-6 rows, by row count.
using MicroKernel = void (*)(const int32_t*, int64_t, int, const int8_t*, int32_t*, int64_t, int);
constexpr MicroKernel kMicroKernels[kMr + 1] = {nullptr,
                                                &Avx2MicroKernel<1>,
                                                &Avx2MicroKernel<2>,
                                                &Avx2MicroKernel<3>,
                                                &Avx2MicroKernel<4>,
                                                &Avx2MicroKernel<5>,
                                                &Avx2MicroKernel<6>};

// acc[B, M, N] = x[B, M, K] · w_b^T on the AVX2 kernel, the w_b prepared by PrepareOwn; x's
// bytes are u8 when x_u8 (widened with zeros, not the sign).
__attribute__((target("avx2"))) void Avx2Gemm(const int8_t* x, bool x_u8, const int8_t* prepared,
                                              int batch, int m, int n, int k, int32_t* acc) {
  const int k2 = (k + 1) / 2;
  const int panels = (n + kNr - 1) / kNr;
  const int rows = batch * m;
  thread_local std::vector<int32_t> xp;  // x as int16 pairs, kept between calls
  xp.resize(static_cast<size_t>(rows) * k2);
  int32_t* xpp = xp.data();
#pragma omp parallel for schedule(static)
  for (int i = 0; i < rows; ++i) {
    const int8_t* xr = x + static_cast<int64_t>(i) * k;
    int32_t* d = xpp + static_cast<int64_t>(i) * k2;
    // One value as the int16 bit pattern of its low or high half-word.
    auto half = [&](int l) -> uint32_t {
      const int16_t v = x_u8 ? int16_t{static_cast<uint8_t>(xr[l])} : int16_t{xr[l]};
      return static_cast<uint16_t>(v);
    };
    for (int p = 0; p < k / 2; ++p) {
      d[p] = static_cast<int32_t>(half(2 * p) | (half(2 * p + 1) << 16));
    }
    if (k % 2) d[k2 - 1] = static_cast<int32_t>(half(k - 1));
  }
  const size_t bytes = PreparedBytes(n, k);
  const int row_blocks = (m + kMr - 1) / kMr;
#pragma omp parallel for collapse(3) schedule(static)
  for (int b = 0; b < batch; ++b) {
    for (int rb = 0; rb < row_blocks; ++rb) {
      for (int pn = 0; pn < panels; ++pn) {
        const int i0 = rb * kMr, mr = std::min(kMr, m - i0);
        const int cols = std::min(kNr, n - pn * kNr);
        const int32_t* xr = xpp + (static_cast<int64_t>(b) * m + i0) * k2;
        const int8_t* panel = prepared + b * bytes + static_cast<size_t>(pn) * k2 * 32;
        int32_t* out = acc + (static_cast<int64_t>(b) * m + i0) * n + pn * kNr;
        kMicroKernels[mr](xr, k2, k2, panel, out, n, cols);
      }
    }
  }
}

#endif  // VITQ_X86

// acc[B, M, N] = x[B, M, K] · w_b^T exactly, the w_b prepared by PrepareOwn: the AVX2 kernel
// where the effective ISA has AVX2, else the portable one. x's bytes are u8 when x_u8.
void OwnGemm(const int8_t* x, bool x_u8, const int8_t* prepared, int batch, int m, int n, int k,
             int32_t* acc) {
#if VITQ_X86
  if (UseAvx2()) {
    Avx2Gemm(x, x_u8, prepared, batch, m, n, k, acc);
    return;
  }
#endif
  for (int b = 0; b < batch; ++b) {
    const int8_t* xb = x + static_cast<int64_t>(b) * m * k;
    const int8_t* wb = prepared + b * PreparedBytes(n, k);
    int32_t* ab = acc + static_cast<int64_t>(b) * m * n;
    if (x_u8) {
      PortableGemm(reinterpret_cast<const uint8_t*>(xb), wb, m, n, k, ab);
    } else {
      PortableGemm(xb, wb, m, n, k, ab);
    }
  }
}

// Batched exact GEMMs; b as [B, N, K] or [B, K, N] (b_rows_are_k).
void OwnBatched(const int8_t* a, bool a_u8, const int8_t* b, bool b_rows_are_k, int batch, int m,
                int k, int n, int32_t* dst) {
  thread_local std::vector<int8_t> prepared;  // kept between calls
  prepared.resize(static_cast<size_t>(batch) * PreparedBytes(n, k));
  PrepareOwn(b, b_rows_are_k, batch, n, k, prepared.data());
  OwnGemm(a, a_u8, prepared.data(), batch, m, n, k, dst);
}

struct OwnWeights : PackedWeights {
  using PackedWeights::PackedWeights;
  std::vector<int8_t> prepared;  // PrepareOwn's layout
};

class OwnGemmBackend final : public Int8GemmBackend {
 public:
  explicit OwnGemmBackend(DnnlContext* ctx) : ops_(ctx) {}

  std::unique_ptr<PackedWeights> Prepare(const int8_t* w, int n, int k, const S8Epilogue* ep,
                                         bool x_u8) override {
    auto p = std::make_unique<OwnWeights>(n, k, ep, x_u8);
    p->prepared.resize(PreparedBytes(n, k));
    PrepareOwn(w, false, 1, n, k, p->prepared.data());
    return p;
  }

  void Gemm(const int8_t* x, int m, PackedWeights& weights, void* dst) override {
    auto& w = static_cast<OwnWeights&>(weights);
    if (!w.has_ep) {
      OwnGemm(x, w.x_u8, w.prepared.data(), 1, m, w.n, w.k, static_cast<int32_t*>(dst));
      return;
    }
    acc_.resize(static_cast<size_t>(m) * w.n);
    OwnGemm(x, w.x_u8, w.prepared.data(), 1, m, w.n, w.k, acc_.data());
    ApplyEpilogue(&ops_, w.ep, acc_.data(), m, w.n, dst);
  }

  void Batched(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m, int k, int n,
               const S8Epilogue* ep, void* dst, bool a_u8) override {
    if (ep == nullptr) {
      OwnBatched(a, a_u8, b, b_rows_are_k, batch, m, k, n, static_cast<int32_t*>(dst));
      return;
    }
    acc_.resize(static_cast<size_t>(batch) * m * n);
    OwnBatched(a, a_u8, b, b_rows_are_k, batch, m, k, n, acc_.data());
    ApplyEpilogue(&ops_, *ep, acc_.data(), batch * m, n, dst);
  }

  std::string Impl(PackedWeights&, int) override { return "vitq:exact_int16"; }

 private:
  DnnlOps ops_;               // GELU of the epilogue
  std::vector<int32_t> acc_;  // accumulators before the epilogue, kept between calls
};
}  // namespace

std::unique_ptr<Int8GemmBackend> MakeOwnGemm(DnnlContext* ctx) {
  return std::make_unique<OwnGemmBackend>(ctx);
}

}  // namespace vitq::kernels
