// One SIMD decision for vitq's own vectorized loops (kernels stage).
//
// Every hand-vectorized or auto-vectorized hot loop of vitq (LayerNorm, quantization, the int8
// epilogue, the search's similarity sums and ranking loss, the exact int8 kernel) runs at the
// level EffectiveSimd() returns, which follows the ISA oneDNN runs after VITQ_ISA
// (EffectiveIsa()): VITQ_ISA=avx2 caps vitq's loops at AVX2 as it caps oneDNN's. Functions are
// compiled once per level (GCC target attributes) and dispatched here, not by GCC's
// target_clones, whose ifunc resolver looks at the CPU only.
//
// On a CPU other than x86 every level compiles the portable code and EffectiveSimd() is
// kPortable; x86 intrinsics live behind VITQ_X86.
#pragma once

#include <string>

#if defined(__x86_64__) || defined(__i386__)
#define VITQ_X86 1
#define VITQ_TARGET(isa) __attribute__((target(isa)))
#else
#define VITQ_X86 0
#define VITQ_TARGET(isa)
#endif

namespace vitq::kernels {

// kAvx512: AVX-512F code; kAvx2: AVX2 (without FMA, as GCC's "avx2" target); kPortable: the
// compiler's baseline for the build target.
enum class SimdLevel { kPortable, kAvx2, kAvx512 };

// The level of an ISA name (KnownIsas(): avx512_* -> kAvx512, avx2* -> kAvx2, else kPortable).
SimdLevel SimdLevelOf(const std::string& isa);
// The level for this process: SimdLevelOf(EffectiveIsa()), decided on the first call (after
// ConfigureIsaFromEnv, like oneDNN's own choice) and fixed from then on.
SimdLevel EffectiveSimd();
const char* SimdLevelName(SimdLevel level);

}  // namespace vitq::kernels

// The body of a function compiled at several SIMD levels: inlined into each level's copy.
#define VITQ_SIMD_BODY static inline __attribute__((always_inline))

// Defines `ret name params`, running `name##Body args` compiled for EffectiveSimd(). `attrs`
// are extra attributes for every copy (e.g. VITQ_NO_FMA), or nothing. Example:
//   VITQ_SIMD_BODY void ScaleBody(float* x, int n, float s) { for (...) x[i] *= s; }
//   VITQ_SIMD_FUNCTION(, void, Scale, (float* x, int n, float s), (x, n, s))
#define VITQ_SIMD_FUNCTION(attrs, ret, name, params, args)                         \
  attrs VITQ_TARGET("avx512f") ret name##Avx512 params { return name##Body args; } \
  attrs VITQ_TARGET("avx2") ret name##Avx2 params { return name##Body args; }      \
  attrs ret name##Portable params { return name##Body args; }                      \
  ret name params {                                                                \
    using Fn = ret(*) params;                                                      \
    /* Chosen on the first call: afterwards one indirect call, as an ifunc. */     \
    static const Fn fn = []() -> Fn {                                              \
      switch (::vitq::kernels::EffectiveSimd()) {                                  \
        case ::vitq::kernels::SimdLevel::kAvx512:                                  \
          return &name##Avx512;                                                    \
        case ::vitq::kernels::SimdLevel::kAvx2:                                    \
          return &name##Avx2;                                                      \
        case ::vitq::kernels::SimdLevel::kPortable:                                \
          break;                                                                   \
      }                                                                            \
      return &name##Portable;                                                      \
    }();                                                                           \
    return fn args;                                                                \
  }

// Floating-point expressions evaluated as written (no a·b + c contracted into an FMA): for loops
// that must match oneDNN's or the float simulation's rounding bit for bit.
#define VITQ_NO_FMA __attribute__((optimize("fp-contract=off")))
