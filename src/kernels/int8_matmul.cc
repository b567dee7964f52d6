// The int8 GEMM front classes (kernels stage): each holds the backend ChooseGemmBackend picks
// (gemm_backend.h) and forwards to it; the kernels live in gemm_onednn.cc, gemm_own.cc and
// gemm_simulation.cc, the shared epilogue in epilogue.cc.
#include "int8_matmul.h"

#include <cmath>

#include "gemm_backend.h"
#include "isa.h"

namespace vitq::kernels {

GemmBackendKind ChooseGemmBackend(GemmExec exec) {
  if (exec == GemmExec::kFloatSimulation) return GemmBackendKind::kFloatSimulation;
  static const bool vnni = IsaHasVnni(EffectiveIsa());
  return vnni ? GemmBackendKind::kOneDnn : GemmBackendKind::kOwn;
}

std::unique_ptr<Int8GemmBackend> MakeGemmBackend(DnnlContext* ctx, GemmExec exec) {
  switch (ChooseGemmBackend(exec)) {
    case GemmBackendKind::kOneDnn:
      return MakeOneDnnGemm(ctx);
    case GemmBackendKind::kOwn:
      return MakeOwnGemm(ctx);
    case GemmBackendKind::kFloatSimulation:
      break;
  }
  return MakeSimulationGemm(ctx);
}

S8Linear::S8Linear(DnnlContext* ctx, int n, int k)
    : backend_(MakeGemmBackend(ctx, GemmExec::kInteger)), n_(n), k_(k) {}
S8Linear::~S8Linear() = default;

std::unique_ptr<PackedWeights> S8Linear::Pack(const int8_t* w) {
  return backend_->Prepare(w, n_, k_, nullptr, /*x_u8=*/false);
}

void S8Linear::Run(const int8_t* x, int m, PackedWeights& packed, int32_t* dst) {
  backend_->Gemm(x, m, packed, dst);
}

S8GemmLayer::S8GemmLayer(DnnlContext* ctx, const int8_t* w, int n, int k, S8Epilogue epilogue,
                         GemmExec exec, bool x_u8)
    : n_(n), k_(k), x_u8_(x_u8), backend_(MakeGemmBackend(ctx, exec)) {
  weights_ = backend_->Prepare(w, n, k, &epilogue, x_u8);
}
S8GemmLayer::~S8GemmLayer() = default;

void S8GemmLayer::Run(const int8_t* x, int m, void* dst) { backend_->Gemm(x, m, *weights_, dst); }

std::string S8GemmLayer::Impl(int m) { return backend_->Impl(*weights_, m); }

S8BatchedMatmul::S8BatchedMatmul(DnnlContext* ctx, GemmExec exec)
    : backend_(MakeGemmBackend(ctx, exec)) {}
S8BatchedMatmul::~S8BatchedMatmul() = default;

void S8BatchedMatmul::Run(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m,
                          int k, int n, int32_t* dst) {
  backend_->Batched(a, b, b_rows_are_k, batch, m, k, n, nullptr, dst, /*a_u8=*/false);
}

void S8BatchedMatmul::Run(const int8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m,
                          int k, int n, const S8Epilogue& ep, void* dst) {
  backend_->Batched(a, b, b_rows_are_k, batch, m, k, n, &ep, dst, /*a_u8=*/false);
}

void S8BatchedMatmul::RunU8(const uint8_t* a, const int8_t* b, bool b_rows_are_k, int batch, int m,
                            int k, int n, const S8Epilogue& ep, void* dst) {
  backend_->Batched(reinterpret_cast<const int8_t*>(a), b, b_rows_are_k, batch, m, k, n, &ep, dst,
                    /*a_u8=*/true);
}

namespace {
template <typename X>
void ReferenceGemm(const X* x, const int8_t* w, int m, int n, int k, int32_t* acc) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int l = 0; l < k; ++l) s += int32_t{x[i * k + l]} * int32_t{w[j * k + l]};
      acc[i * n + j] = s;
    }
  }
}
}  // namespace

void ReferenceS8Gemm(const int8_t* x, const int8_t* w, int m, int n, int k, int32_t* acc) {
  ReferenceGemm(x, w, m, n, k, acc);
}

void ReferenceU8Gemm(const uint8_t* x, const int8_t* w, int m, int n, int k, int32_t* acc) {
  ReferenceGemm(x, w, m, n, k, acc);
}

float ReferenceEpilogue(const S8Epilogue& ep, int n_index, int32_t acc) {
  float scale = ep.scale.size() > 1 ? ep.scale[n_index] : ep.scale[0];
  float y = scale * (static_cast<float>(acc) + (ep.bias.empty() ? 0.0f : ep.bias[n_index]));
  if (ep.gelu) y = 0.5f * y * (1.0f + std::erf(y / std::sqrt(2.0f))) * ep.gelu_scale;
  if (ep.clip) y = std::fmin(std::fmax(y, ep.lo), ep.hi);
  if (ep.u8_dst) y += ep.dst_zero;
  return y;
}

}  // namespace vitq::kernels
