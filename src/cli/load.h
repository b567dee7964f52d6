// Opens MODEL for inference, whether a float checkpoint or a .vitq file (cli).
#pragma once

#include <memory>
#include <string>

#include "vitq/engine.h"
#include "vitq/evaluate.h"
#include "vitq/qfile.h"
#include "vitq/runtime.h"
#include "vitq/simulate.h"

namespace vitq::cli {

// A model ready to run: the float engine, or for a .vitq file the integer engine (default) or
// the simulated (fake-quant) path.
struct Runnable {
  ModelSpec spec;
  std::string engine;  // "fp32", "int8" or "simulated"
  int64_t size_bytes = 0;
  ForwardFn forward;
  // Owners of what `forward` uses.
  std::unique_ptr<ViTModel> model;
  std::unique_ptr<Engine> float_engine;
  std::unique_ptr<QuantizedModel> quantized;
  std::unique_ptr<IntegerEngine> integer;
  std::unique_ptr<SimulatedModel> simulated;
};

// `simulate` selects the fake-quant path for .vitq files (ignored for float checkpoints).
Result<std::unique_ptr<Runnable>> OpenRunnable(const std::string& path, bool simulate = false);

}  // namespace vitq::cli
