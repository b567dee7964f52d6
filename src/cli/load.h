// Opens MODEL for inference, whether a float checkpoint or a .vitq file (cli).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "vitq/engine.h"
#include "vitq/evaluate.h"
#include "vitq/qfile.h"
#include "vitq/runtime.h"
#include "vitq/simulate.h"
#include "vitq/threads.h"

namespace vitq::cli {

// A model ready to run: the float engine, or for a .vitq file the integer engine (default) or
// the simulated (fake-quant) path.
struct Runnable {
  ModelSpec spec;
  std::string engine;  // "fp32", "int8", "simulated" or "fake-quant"
  int64_t size_bytes = 0;
  ForwardFn forward;
  // The thread chooser `forward` consults (null when its thread count is fixed).
  std::shared_ptr<const AdaptiveThreads> adaptive;
  // Owners of what `forward` uses.
  std::unique_ptr<ViTModel> model;
  std::unique_ptr<Engine> float_engine;
  std::unique_ptr<QuantizedModel> quantized;
  std::unique_ptr<IntegerEngine> integer;
  std::unique_ptr<SimulatedModel> simulated;
};

// How a .vitq file runs (float checkpoints ignore it):
//   kInteger    the integer engine (engine "int8");
//   kSimulate   its float simulation, bit-identical to it (engine "simulated"); plans the integer
//               engine cannot run (asymmetric, unsigned, per-channel activations) fall back to
//               the fake-quant path;
//   kFakeQuant  the fake-quant path the quantization methods evaluate plans with: the float
//               engine over dequantized weights with activations quantized-dequantized in place
//               (engine "fake-quant"). Same grids, float rounding of its own: not bit-identical.
enum class QuantPath { kInteger, kSimulate, kFakeQuant };

// The --simulate / --fake-quant flags of a command (mutually exclusive); `prefix` names them
// ("--reference-simulate", ...) and `what` says what they apply to in the help.
struct QuantPathFlags {
  bool simulate = false, fake_quant = false;
  QuantPath path() const {
    return fake_quant ? QuantPath::kFakeQuant
           : simulate ? QuantPath::kSimulate
                      : QuantPath::kInteger;
  }
};
void AddQuantPathFlags(CLI::App* cmd, QuantPathFlags* flags, const std::string& prefix,
                       const std::string& what);

// The model at `path`; its `forward` adapts its thread count call by call (AdaptiveThreads in
// vitq/threads.h: the current OpenMP maximum, or one thread when that is faster under CPU
// contention; VITQ_ADAPTIVE_THREADS=0 turns it off).
Result<std::unique_ptr<Runnable>> OpenRunnable(const std::string& path,
                                               QuantPath qpath = QuantPath::kInteger);
// The same, always on the current OpenMP maximum.
Result<std::unique_ptr<Runnable>> OpenRunnableFixed(const std::string& path,
                                                    QuantPath qpath = QuantPath::kInteger);

}  // namespace vitq::cli
