// The integer engine (runtime stage): runs a .vitq model with int8 GEMMs for every quantized
// linear layer and both attention matmuls (oneDNN, u8/s8 x s8 -> s32 with VNNI where the CPU has
// it), requantization fused into the GEMM epilogues, and LayerNorm, softmax and GELU in float
// with their outputs quantized straight into the next GEMM's int8 input (method.md §1.2).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vitq/qfile.h"
#include "vitq/status.h"

namespace vitq {

// Why `plan` cannot run on the integer engine, or Ok: every quantization site of the model must
// be in the plan; activations and matmul operands per-tensor symmetric signed grids; weights
// symmetric signed, per tensor or per output channel. Other plans run with --simulate.
Status CheckIntegerPlan(const QuantPlan& plan, const ViTConfig& config);

// Applies VITQ_ISA (the highest instruction set the kernels may use: avx512_core_amx,
// avx512_core_bf16, avx512_core_vnni, avx512_core, avx2_vnni, avx2, sse41; empty or "native" for
// the best the CPU has). An ISA the CPU lacks is refused with the list of what it has. Call before
// building any engine.
Status ConfigureIsa();
// The ISAs this CPU supports (best first), and the one the kernels use now.
std::vector<std::string> SupportedIsas();
std::string EffectiveIsa();

class IntegerEngine {
 public:
  // The quantized model must outlive the engine. Weights are packed into oneDNN's layout here.
  static Result<std::unique_ptr<IntegerEngine>> Create(const QuantizedModel& model);
  // The float simulation of the same engine (`--simulate`): the same data flow, quantization
  // points, LayerNorm, softmax and GELU, with every int8 GEMM computed as a float GEMM of the
  // dequantized operands' integers (the scales applied after) and its epilogue by vitq's replica
  // of the integer kernels' epilogue. Its logits equal the integer engine's bit for bit; it checks
  // the int8 kernels and runs where no int8 kernel is trusted. Same plan requirements as Create.
  static Result<std::unique_ptr<IntegerEngine>> CreateSimulation(const QuantizedModel& model);
  ~IntegerEngine();
  IntegerEngine(const IntegerEngine&) = delete;
  IntegerEngine& operator=(const IntegerEngine&) = delete;
  // images: [batch, C, H, W] preprocessed; logits: [batch, num_classes]. Not thread-safe.
  void Forward(const float* images, int batch, float* logits);

 private:
  struct Impl;
  static Result<std::unique_ptr<IntegerEngine>> Create(const QuantizedModel& model, bool simulate);
  explicit IntegerEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vitq
