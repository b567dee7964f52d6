// The --simulate / --fake-quant flags that choose how a .vitq file runs (cli).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "vitq/app.h"

namespace vitq::cli {

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

}  // namespace vitq::cli
