// Google Benchmark: fp32 GEMM providers on the linear-layer shapes of DeiT (M = 197 tokens of one
// image, or 32 images), the measurement behind choosing oneDNN for the float engine.
// Run: OMP_NUM_THREADS=2 build/bench/gemm_fp32_bench --benchmark_format=json
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <vector>

#include "../src/kernels/dnnl_ops.h"

namespace {

// args: M, K, N
void BM_OneDnnPackedMatmul(benchmark::State& state) {
  const int m = state.range(0), k = state.range(1), n = state.range(2);
  std::vector<float> a(static_cast<size_t>(m) * k, 0.1f), w(static_cast<size_t>(n) * k, 0.2f),
      b(n, 0.f), c(static_cast<size_t>(m) * n);
  vitq::kernels::DnnlContext ctx;
  vitq::kernels::PackedLinear layer(&ctx, w.data(), b.data(), n, k);
  layer.Run(a.data(), m, c.data(), false, false);
  for (auto _ : state) layer.Run(a.data(), m, c.data(), false, false);
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(m) * k * n * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void BM_OneDnnSgemm(benchmark::State& state) {
  const int m = state.range(0), k = state.range(1), n = state.range(2);
  std::vector<float> a(static_cast<size_t>(m) * k, 0.1f), w(static_cast<size_t>(n) * k, 0.2f),
      c(static_cast<size_t>(m) * n);
  for (auto _ : state)
    dnnl_sgemm('N', 'T', m, n, k, 1.f, a.data(), k, w.data(), k, 0.f, c.data(), n);
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(m) * k * n * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void BM_OpenBlasSgemm(benchmark::State& state) {
  const int m = state.range(0), k = state.range(1), n = state.range(2);
  std::vector<float> a(static_cast<size_t>(m) * k, 0.1f), w(static_cast<size_t>(n) * k, 0.2f),
      c(static_cast<size_t>(m) * n);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.f, a.data(), k, w.data(), k,
                0.f, c.data(), n);
  }
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(m) * k * n * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int d : {192, 384, 768}) {
    for (int m : {197, 197 * 32}) {
      b->Args({m, d, 3 * d});  // qkv
      b->Args({m, d, 4 * d});  // fc1
      b->Args({m, 4 * d, d});  // fc2
    }
  }
  b->ArgNames({"M", "K", "N"})->UseRealTime();
}

BENCHMARK(BM_OneDnnPackedMatmul)->Apply(Shapes);
BENCHMARK(BM_OneDnnSgemm)->Apply(Shapes);
BENCHMARK(BM_OpenBlasSgemm)->Apply(Shapes);

}  // namespace

BENCHMARK_MAIN();
