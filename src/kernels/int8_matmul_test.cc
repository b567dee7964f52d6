// int8 kernels against their scalar references, on the ISA VITQ_ISA selects (ctest runs this
// binary once per ISA vitq knows; ISAs the CPU lacks are skipped).
#include "int8_matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "gemm_backend.h"
#include "isa.h"
#include "isa_test_fixture.h"

namespace vitq::kernels {
namespace {

std::vector<int8_t> RandomS8(size_t n, uint32_t seed, int lo = -128, int hi = 127) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(d(rng));
  return v;
}

// Per-channel scales scale · U(0.5, 2) and biases bias · (U(0.5, 2) - 1.25) for n outputs.
S8Epilogue RandomEpilogue(int n, float scale, float bias, std::mt19937* rng) {
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  S8Epilogue ep;
  ep.scale.resize(n);
  ep.bias.resize(n);
  for (int i = 0; i < n; ++i) {
    ep.scale[i] = scale * u(*rng);
    ep.bias[i] = bias * (u(*rng) - 1.25f);
  }
  return ep;
}

class Int8Kernels : public IsaFixture {};

TEST_F(Int8Kernels, GemmAccumulatorsAreExact) {
  // Shapes of the DeiT layers at batch 1 and odd sizes; worst-case magnitudes (-128 · -128 · K).
  const int shapes[][3] = {{197, 576, 192}, {1, 1000, 192}, {7, 33, 65}, {394, 192, 768}};
  for (const auto& s : shapes) {
    const int m = s[0], n = s[1], k = s[2];
    auto x = RandomS8(static_cast<size_t>(m) * k, 1 + m);
    auto w = RandomS8(static_cast<size_t>(n) * k, 2 + n);
    x[0] = -128;
    w[0] = -128;
    std::vector<int32_t> ref(static_cast<size_t>(m) * n), got(ref.size());
    ReferenceS8Gemm(x.data(), w.data(), m, n, k, ref.data());
    // The search's raw s32 path.
    S8Linear raw(&ctx, n, k);
    auto packed = raw.Pack(w.data());
    raw.Run(x.data(), m, *packed, got.data());
    EXPECT_EQ(got, ref) << m << "x" << n << "x" << k;
    // The engine's layer with an identity epilogue writes the accumulators as f32, exact below
    // 2^24 (|acc| <= 128 * 128 * 768 here).
    S8GemmLayer layer(&ctx, w.data(), n, k, S8Epilogue{});
    std::vector<float> f(ref.size());
    layer.Run(x.data(), m, f.data());
    int64_t mismatches = 0;
    for (size_t i = 0; i < ref.size(); ++i) mismatches += f[i] != static_cast<float>(ref[i]);
    EXPECT_EQ(mismatches, 0) << layer.Impl(m);
  }
}

TEST_F(Int8Kernels, UnsignedInputLayerIsExact) {
  // fc2's input on an 8-bit grid with a zero point is held as its u8 codes: u8 x s8 products,
  // worst case 255 · -128 · K, raw s32 and through an identity f32 epilogue.
  const int shapes[][3] = {{197, 192, 768}, {1, 384, 1536}, {7, 33, 65}};
  for (const auto& s : shapes) {
    const int m = s[0], n = s[1], k = s[2];
    std::vector<uint8_t> x(static_cast<size_t>(m) * k);
    std::mt19937 rng(9 + n);
    std::uniform_int_distribution<int> d(0, 255);
    for (auto& v : x) v = static_cast<uint8_t>(d(rng));
    auto w = RandomS8(static_cast<size_t>(n) * k, 8 + n);
    x[0] = 255;
    w[0] = -128;
    std::vector<int32_t> ref(static_cast<size_t>(m) * n);
    ReferenceU8Gemm(x.data(), w.data(), m, n, k, ref.data());
    S8GemmLayer layer(&ctx, w.data(), n, k, S8Epilogue{}, GemmExec::kInteger, /*x_u8=*/true);
    EXPECT_TRUE(layer.x_u8());
    std::vector<float> f(ref.size());
    layer.Run(x.data(), m, f.data());
    int64_t mismatches = 0;
    for (size_t i = 0; i < ref.size(); ++i) mismatches += f[i] != static_cast<float>(ref[i]);
    EXPECT_EQ(mismatches, 0) << m << "x" << n << "x" << k << " on " << layer.Impl(m);
  }
}

TEST_F(Int8Kernels, EpiloguesMatchTheReference) {
  const int m = 50, n = 96, k = 80;
  auto x = RandomS8(static_cast<size_t>(m) * k, 11, -60, 60);
  auto w = RandomS8(static_cast<size_t>(n) * k, 12, -60, 60);
  std::vector<int32_t> acc(static_cast<size_t>(m) * n);
  ReferenceS8Gemm(x.data(), w.data(), m, n, k, acc.data());
  std::mt19937 rng(3);
  const S8Epilogue base = RandomEpilogue(n, 1e-3f, 500.0f, &rng);
  // f32 with per-channel scales and bias; then accumulating into dst.
  {
    S8GemmLayer layer(&ctx, w.data(), n, k, base);
    std::vector<float> y(acc.size());
    layer.Run(x.data(), m, y.data());
    S8Epilogue sum = base;
    sum.accumulate = true;
    S8GemmLayer acc_layer(&ctx, w.data(), n, k, sum);
    std::vector<float> z(acc.size(), 1.5f);
    acc_layer.Run(x.data(), m, z.data());
    for (int i = 0; i < m * n; ++i) {
      float ref = ReferenceEpilogue(base, i % n, acc[i]);
      ASSERT_NEAR(y[i], ref, 1e-5f * (1.0f + std::fabs(ref))) << i;
      ASSERT_NEAR(z[i], ref + 1.5f, 1e-5f * (1.0f + std::fabs(ref))) << i;
    }
  }
  // s8 outputs: GELU then requantization, and a 4-bit clip. Rounding may differ from the
  // reference only where the f32 value sits within float error of a .5 boundary.
  for (bool gelu : {false, true}) {
    S8Epilogue ep = base;
    ep.s8_dst = true;
    ep.gelu = gelu;
    ep.gelu_scale = 8.0f;
    if (!gelu) {
      for (auto& s : ep.scale) s *= 8.0f;
      ep.clip = true;
      ep.lo = -8.0f;
      ep.hi = 7.0f;
    }
    S8GemmLayer layer(&ctx, w.data(), n, k, ep);
    std::vector<int8_t> y(acc.size());
    layer.Run(x.data(), m, y.data());
    int exact = 0;
    for (int i = 0; i < m * n; ++i) {
      float ref =
          std::nearbyint(std::fmin(std::fmax(ReferenceEpilogue(ep, i % n, acc[i]), -128.f), 127.f));
      ASSERT_LE(std::fabs(y[i] - ref), 1.0f) << i;
      exact += y[i] == ref;
      if (ep.clip) {
        ASSERT_TRUE(y[i] >= -8 && y[i] <= 7);
      }
    }
    EXPECT_GE(exact, m * n - 2) << (gelu ? "gelu" : "clip");
  }
  // u8 outputs with a zero point (fc1's GELU output on an 8-bit grid with a zero point): the codes
  // round(y + z), saturated to 0..255, both saturation ends reached.
  {
    S8Epilogue ep = base;
    ep.gelu = true;
    ep.gelu_scale = 40.0f;
    ep.u8_dst = true;
    ep.dst_zero = 7.0f;
    S8GemmLayer layer(&ctx, w.data(), n, k, ep);
    std::vector<uint8_t> y(acc.size());
    layer.Run(x.data(), m, y.data());
    int exact = 0, lows = 0, highs = 0;
    for (int i = 0; i < m * n; ++i) {
      const float ref =
          std::nearbyint(std::fmin(std::fmax(ReferenceEpilogue(ep, i % n, acc[i]), 0.f), 255.f));
      ASSERT_LE(std::fabs(y[i] - ref), 1.0f) << i;
      exact += y[i] == ref;
      lows += y[i] < 7;
      highs += y[i] == 255;
    }
    EXPECT_GE(exact, m * n - 2);
    EXPECT_GT(lows, 0);  // GELU's negative side lands below the zero point
    EXPECT_GT(highs, 0);
  }
}

TEST_F(Int8Kernels, BatchedMatmulsMatchTheReference) {
  const int batch = 6, m = 197, k = 64, n = 197;
  auto a = RandomS8(static_cast<size_t>(batch) * m * k, 21);
  auto b = RandomS8(static_cast<size_t>(batch) * n * k, 22);  // [B, N, K] (K of Q·Kᵀ)
  std::vector<int32_t> ref(static_cast<size_t>(batch) * m * n);
  for (int i = 0; i < batch; ++i) {
    ReferenceS8Gemm(a.data() + static_cast<size_t>(i) * m * k,
                    b.data() + static_cast<size_t>(i) * n * k, m, n, k,
                    ref.data() + static_cast<size_t>(i) * m * n);
  }
  S8BatchedMatmul bmm(&ctx);
  std::vector<int32_t> got(ref.size());
  bmm.Run(a.data(), b.data(), false, batch, m, k, n, got.data());
  EXPECT_EQ(got, ref);
  S8Epilogue ep;
  std::vector<float> f(ref.size());
  bmm.Run(a.data(), b.data(), false, batch, m, k, n, ep, f.data());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(f[i], static_cast<float>(ref[i])) << i;
  // b given as [B, K, N] (V of P·V): transpose b and compare.
  std::vector<int8_t> bt(b.size());
  for (int i = 0; i < batch; ++i)
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < k; ++c)
        bt[(static_cast<size_t>(i) * k + c) * n + r] = b[(static_cast<size_t>(i) * n + r) * k + c];
  bmm.Run(a.data(), bt.data(), true, batch, m, k, n, got.data());
  EXPECT_EQ(got, ref);
}

// P·V with P unsigned (u8, 0..255) against the scalar reference: worst-case magnitudes
// (255 · -128 · K), the P·V shape of DeiT (K = T = 197) and an odd one; the s32 path and an
// s8-requantizing epilogue, with the float simulation equal to the integer path bit for bit.
TEST_F(Int8Kernels, UnsignedLeftOperandIsExact) {
  const int shapes[][4] = {{6, 197, 197, 64}, {2, 9, 33, 7}, {1, 3, 700, 5}};
  for (const auto& s : shapes) {
    const int batch = s[0], m = s[1], k = s[2], n = s[3];
    std::mt19937 rng(60 + k);
    std::uniform_int_distribution<int> d(0, 255);
    std::vector<uint8_t> a(static_cast<size_t>(batch) * m * k);
    for (auto& x : a) x = static_cast<uint8_t>(d(rng));
    auto b = RandomS8(static_cast<size_t>(batch) * k * n, 61 + k);  // [B, K, N] (V)
    // Row 0 of every batch: all 255 against a column of -128: the extreme sum -32640 · K.
    for (int i = 0; i < batch; ++i) {
      for (int l = 0; l < k; ++l) {
        a[(static_cast<size_t>(i) * m) * k + l] = 255;
        b[(static_cast<size_t>(i) * k + l) * n] = -128;
      }
    }
    std::vector<int32_t> ref(static_cast<size_t>(batch) * m * n);
    std::vector<int8_t> bt(static_cast<size_t>(n) * k);  // one batch's b as [N, K]
    for (int i = 0; i < batch; ++i) {
      for (int r = 0; r < k; ++r)
        for (int c = 0; c < n; ++c)
          bt[static_cast<size_t>(c) * k + r] = b[(static_cast<size_t>(i) * k + r) * n + c];
      ReferenceU8Gemm(a.data() + static_cast<size_t>(i) * m * k, bt.data(), m, n, k,
                      ref.data() + static_cast<size_t>(i) * m * n);
    }
    ASSERT_EQ(ref[0], -32640 * k);
    S8BatchedMatmul integer(&ctx), simulated(&ctx, GemmExec::kFloatSimulation);
    S8Epilogue identity;  // f32 accumulators, exact below 2^24
    std::vector<float> f(ref.size());
    integer.RunU8(a.data(), b.data(), true, batch, m, k, n, identity, f.data());
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_EQ(f[i], static_cast<float>(ref[i])) << i << " of " << batch << "x" << m << "x" << k;
    }
    S8Epilogue pv;  // requantized to s8 as the engine's P·V
    pv.scale = {1.0f / (200.0f * k)};
    pv.s8_dst = true;
    std::vector<int8_t> oa(ref.size()), ob(ref.size());
    integer.RunU8(a.data(), b.data(), true, batch, m, k, n, pv, oa.data());
    simulated.RunU8(a.data(), b.data(), true, batch, m, k, n, pv, ob.data());
    EXPECT_EQ(oa, ob) << "K " << k;
    size_t exact = 0;  // a tie of the f32 product may round either way (as in the tests above)
    for (size_t i = 0; i < ref.size(); ++i) {
      const float want =
          std::nearbyint(std::clamp(ReferenceEpilogue(pv, 0, ref[i]), -128.f, 127.f));
      ASSERT_LE(std::fabs(oa[i] - want), 1.0f) << i;
      exact += oa[i] == static_cast<int8_t>(want);
    }
    EXPECT_GE(exact, ref.size() - 2);
  }
}

TEST_F(Int8Kernels, ExactFloatProductsAreExactBeyond2To24) {
  // K = 3072 (DeiT-B's fc2) with every product 127 · 127 (odd): sums up to 49,548,288 > 2^24,
  // which one f32 GEMM would round; the K chunks keep every partial sum exact.
  const int m = 3, n = 5, k = 3072;
  std::vector<int8_t> x(static_cast<size_t>(m) * k, -127), w(static_cast<size_t>(n) * k, -127);
  auto rx = RandomS8(static_cast<size_t>(k), 31);
  for (int l = 0; l < k; ++l) x[static_cast<size_t>(k) + l] = rx[l];  // row 1 random
  x[2 * static_cast<size_t>(k) + 7] = 127;
  std::vector<int32_t> ref(static_cast<size_t>(m) * n), got(ref.size());
  ReferenceS8Gemm(x.data(), w.data(), m, n, k, ref.data());
  ASSERT_EQ(ref[0], 3072 * 127 * 127);
  std::vector<float> xf(x.begin(), x.end()), wf(w.begin(), w.end());
  ExactF32Matmul exact(&ctx);
  exact.Run(xf.data(), wf.data(), /*b_rows_are_k=*/false, 1, m, k, n, got.data());
  EXPECT_EQ(got, ref);
}

// The float simulation of every epilogue the engine uses equals the integer path bit for bit.
TEST_F(Int8Kernels, FloatSimulationIsBitIdenticalToTheIntegerPath) {
  const int m = 67, n = 96;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  for (int k : {80, 1536}) {
    auto x = RandomS8(static_cast<size_t>(m) * k, 41 + k);
    auto w = RandomS8(static_cast<size_t>(n) * k, 42 + k);
    const S8Epilogue base = RandomEpilogue(n, 2e-5f, 5000.0f, &rng);
    std::vector<S8Epilogue> eps;
    eps.push_back(base);  // f32: qkv, patch embedding, head
    eps.push_back(base);
    eps.back().accumulate = true;             // f32 +=: proj, fc2
    for (float gelu_scale : {23.0f, 3.7f}) {  // s8 GELU requantization: fc1 at 8 and 4 bits
      S8Epilogue g = base;
      for (auto& s : g.scale) s *= 10.0f;
      g.gelu = true;
      g.gelu_scale = gelu_scale;
      g.s8_dst = true;
      if (gelu_scale < 4) {
        g.clip = true;
        g.lo = -8.0f;
        g.hi = 7.0f;
      }
      eps.push_back(g);
    }
    {  // u8 GELU requantization with a zero point: fc1 feeding an 8-bit grid with a zero point
      S8Epilogue g = base;
      for (auto& s : g.scale) s *= 10.0f;
      g.gelu = true;
      g.gelu_scale = 31.0f;
      g.u8_dst = true;
      g.dst_zero = 5.0f;
      eps.push_back(g);
    }
    // The layers reading u8 inputs (fc2 after that grid): f32 +=, on the same epilogues.
    std::vector<uint8_t> xu(x.size());
    for (size_t i = 0; i < x.size(); ++i) xu[i] = static_cast<uint8_t>(x[i]);
    const size_t signed_inputs = eps.size();
    eps.push_back(eps[1]);
    for (size_t e = 0; e < eps.size(); ++e) {
      const bool x_u8 = e >= signed_inputs;
      S8GemmLayer integer(&ctx, w.data(), n, k, eps[e], GemmExec::kInteger, x_u8);
      S8GemmLayer simulated(&ctx, w.data(), n, k, eps[e], GemmExec::kFloatSimulation, x_u8);
      EXPECT_EQ(simulated.Impl(m), "vitq:f32_simulation");
      const bool byte_out = eps[e].s8_dst || eps[e].u8_dst;
      const size_t bytes = static_cast<size_t>(m) * n * (byte_out ? 1 : 4);
      std::vector<uint8_t> a(bytes), b(bytes);
      if (eps[e].accumulate) {  // the same starting values in both
        for (size_t i = 0; i < bytes / 4; ++i) {
          reinterpret_cast<float*>(a.data())[i] = reinterpret_cast<float*>(b.data())[i] =
              u(rng) - 1.0f;
        }
      }
      if (x_u8) {
        integer.Run(xu.data(), m, a.data());
        simulated.Run(xu.data(), m, b.data());
      } else {
        integer.Run(x.data(), m, a.data());
        simulated.Run(x.data(), m, b.data());
      }
      EXPECT_EQ(a, b) << "K " << k << ", epilogue " << e << " on " << integer.Impl(m);
      if (byte_out) {  // not a degenerate output
        std::set<uint8_t> values(a.begin(), a.end());
        EXPECT_GT(values.size(), 8u) << e;
      }
    }
  }
  // The attention matmuls: Q·Kᵀ to f32 scores, P·V requantized to s8 (8 and 4 bits), raw s32.
  const int batch = 6, t = 197, hd = 64;
  auto q = RandomS8(static_cast<size_t>(batch) * t * hd, 51);
  auto kk = RandomS8(static_cast<size_t>(batch) * t * hd, 52);
  auto p = RandomS8(static_cast<size_t>(batch) * t * t, 53, 0, 127);
  S8BatchedMatmul integer(&ctx), simulated(&ctx, GemmExec::kFloatSimulation);
  S8Epilogue qk;
  qk.scale = {3.1e-4f};
  std::vector<float> sa(static_cast<size_t>(batch) * t * t), sb(sa.size());
  integer.Run(q.data(), kk.data(), false, batch, t, hd, t, qk, sa.data());
  simulated.Run(q.data(), kk.data(), false, batch, t, hd, t, qk, sb.data());
  EXPECT_EQ(0, std::memcmp(sa.data(), sb.data(), sa.size() * sizeof(float)));
  for (bool narrow : {false, true}) {
    S8Epilogue pv;
    pv.scale = {narrow ? 3e-5f : 2.3e-4f};
    pv.s8_dst = true;
    pv.clip = narrow;
    pv.lo = -8.0f;
    pv.hi = 7.0f;
    std::vector<int8_t> oa(static_cast<size_t>(batch) * t * hd), ob(oa.size());
    integer.Run(p.data(), kk.data(), true, batch, t, t, hd, pv, oa.data());
    simulated.Run(p.data(), kk.data(), true, batch, t, t, hd, pv, ob.data());
    EXPECT_EQ(oa, ob) << (narrow ? "4-bit" : "8-bit") << " P·V";
  }
  std::vector<int32_t> ra(static_cast<size_t>(batch) * t * t), rb(ra.size());
  integer.Run(q.data(), kk.data(), false, batch, t, hd, t, ra.data());
  simulated.Run(q.data(), kk.data(), false, batch, t, hd, t, rb.data());
  EXPECT_EQ(ra, rb);
}

TEST(Isa, UnknownOrMissingIsaIsRefusedWithTheList) {
  ASSERT_EQ(setenv("VITQ_ISA", "avx9000", 1), 0);
  Status s = ConfigureIsaFromEnv();
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("avx9000"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("this CPU has"), std::string::npos) << s.message();
  for (const auto& isa : KnownIsas()) {
    bool supported = false;
    for (const auto& x : SupportedIsas()) supported |= x == isa;
    if (supported) continue;
    ASSERT_EQ(setenv("VITQ_ISA", isa.c_str(), 1), 0);
    Status lacks = ConfigureIsaFromEnv();
    EXPECT_EQ(lacks.code(), StatusCode::kInvalidInput) << isa;
    EXPECT_NE(lacks.message().find("not supported by this CPU"), std::string::npos)
        << lacks.message();
  }
  unsetenv("VITQ_ISA");
}

}  // namespace
}  // namespace vitq::kernels
