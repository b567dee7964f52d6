// Instruction-set selection for the kernels (kernels stage): which ISAs this CPU has, and the
// VITQ_ISA environment variable that caps the ISA oneDNN may use (for tests and comparisons).
#pragma once

#include <string>
#include <vector>

#include "vitq/status.h"

namespace vitq::kernels {

// The ISA names vitq knows (oneDNN's), best first: avx512_core_amx, avx512_core_bf16,
// avx512_core_vnni, avx512_core, avx2_vnni, avx2, sse41.
const std::vector<std::string>& KnownIsas();
// The subset this CPU supports (by cpuid), best first.
std::vector<std::string> SupportedIsas();
// Applies VITQ_ISA (when set and not empty or "native"): it must be a known ISA that the CPU
// supports, else an InvalidInput error lists the supported ones. Must run before the first oneDNN
// primitive is created; calling it again is harmless.
Status ConfigureIsaFromEnv();
// The ISA oneDNN's kernels use (after ConfigureIsaFromEnv), as one of KnownIsas() or "other".
std::string EffectiveIsa();
// Whether an ISA (a KnownIsas() name) has int8 dot products without int16 saturation (VNNI).
bool IsaHasVnni(const std::string& isa);
// Whether an ISA includes AVX2 (every KnownIsas() name but sse41).
bool IsaHasAvx2(const std::string& isa);

}  // namespace vitq::kernels
