// VITQ_ISA and CPU feature detection (kernels stage).
#include "isa.h"

#include "simd.h"

#if VITQ_X86
#include <cpuid.h>
#endif

#include <cstdlib>
#include <dnnl.hpp>

namespace vitq::kernels {

namespace {
// CPUID leaf 7 bits GCC's __builtin_cpu_supports does not name: AMX (subleaf 0, EDX 24/25) and
// AVX-VNNI (subleaf 1, EAX 4).
#if VITQ_X86
bool Leaf7(unsigned subleaf, int reg, unsigned bit) {
  unsigned r[4] = {0, 0, 0, 0};
  if (!__get_cpuid_count(7, subleaf, &r[0], &r[1], &r[2], &r[3])) return false;
  return (r[reg] >> bit) & 1u;
}

bool CpuHas(const std::string& isa) {
  __builtin_cpu_init();
  const bool avx512_core = __builtin_cpu_supports("avx512f") &&
                           __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (isa == "avx512_core_amx") return avx512_core && Leaf7(0, 3, 24) && Leaf7(0, 3, 25);
  if (isa == "avx2_vnni") return __builtin_cpu_supports("avx2") && Leaf7(1, 0, 4);
  if (isa == "avx512_core_bf16") {
    return avx512_core && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("avx512bf16");
  }
  if (isa == "avx512_core_vnni") return avx512_core && __builtin_cpu_supports("avx512vnni");
  if (isa == "avx512_core") return avx512_core;
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "sse41") return __builtin_cpu_supports("sse4.1");
  return false;
}
#else
bool CpuHas(const std::string&) { return false; }  // every name vitq knows is an x86 ISA
#endif

// Every ISA vitq knows, best first: its name (oneDNN's), oneDNN's enum, and whether its int8
// dot products are VNNI (no int16 saturation).
struct IsaEntry {
  const char* name;
  dnnl::cpu_isa isa;
  bool vnni;
};
constexpr IsaEntry kIsas[] = {
    {"avx512_core_amx", dnnl::cpu_isa::avx512_core_amx, true},
    {"avx512_core_bf16", dnnl::cpu_isa::avx512_core_bf16, true},
    {"avx512_core_vnni", dnnl::cpu_isa::avx512_core_vnni, true},
    {"avx512_core", dnnl::cpu_isa::avx512_core, false},
    {"avx2_vnni", dnnl::cpu_isa::avx2_vnni, true},
    {"avx2", dnnl::cpu_isa::avx2, false},
    {"sse41", dnnl::cpu_isa::sse41, false},
};

const IsaEntry* Find(const std::string& name) {
  for (const auto& e : kIsas)
    if (name == e.name) return &e;
  return nullptr;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}
}  // namespace

const std::vector<std::string>& KnownIsas() {
  static const std::vector<std::string> isas = [] {
    std::vector<std::string> v;
    for (const auto& e : kIsas) v.push_back(e.name);
    return v;
  }();
  return isas;
}

std::vector<std::string> SupportedIsas() {
  std::vector<std::string> out;
  for (const auto& isa : KnownIsas()) {
    if (CpuHas(isa)) out.push_back(isa);
  }
  return out;
}

Status ConfigureIsaFromEnv() {
  const char* env = std::getenv("VITQ_ISA");
  if (env == nullptr || *env == '\0' || std::string(env) == "native") return Status::Ok();
  const std::string isa = env;
  const IsaEntry* entry = Find(isa);
  if (entry == nullptr) {
    return Status::InvalidInput("VITQ_ISA='" + isa +
                                "' is not an ISA vitq knows; expected one of " + Join(KnownIsas()) +
                                " (this CPU has " + Join(SupportedIsas()) + ")");
  }
  if (!CpuHas(isa)) {
    return Status::InvalidInput("VITQ_ISA='" + isa + "' is not supported by this CPU; it has " +
                                Join(SupportedIsas()));
  }
  // oneDNN accepts the cap only before its first primitive; later calls fail. Report that case
  // only when the effective ISA is above the requested one.
  try {
    dnnl::set_max_cpu_isa(entry->isa);
  } catch (const dnnl::error&) {
  }
  const std::string effective = EffectiveIsa();
  int want = 0, have = 0;
  for (size_t i = 0; i < KnownIsas().size(); ++i) {
    if (KnownIsas()[i] == isa) want = static_cast<int>(i);
    if (KnownIsas()[i] == effective) have = static_cast<int>(i);
  }
  if (effective != "other" && have < want) {
    return Status::Internal("VITQ_ISA='" + isa + "' came too late: oneDNN already runs " +
                            effective);
  }
  return Status::Ok();
}

bool IsaHasVnni(const std::string& isa) {
  const IsaEntry* e = Find(isa);
  return e != nullptr && e->vnni;
}

bool IsaHasAvx2(const std::string& isa) { return Find(isa) != nullptr && isa != "sse41"; }

SimdLevel SimdLevelOf(const std::string& isa) {
  if (isa.rfind("avx512", 0) == 0) return SimdLevel::kAvx512;
  if (isa.rfind("avx2", 0) == 0) return SimdLevel::kAvx2;
  return SimdLevel::kPortable;
}

SimdLevel EffectiveSimd() {
  static const SimdLevel level = [] {
    const std::string isa = EffectiveIsa();
    if (isa != "other") return SimdLevelOf(isa);
    // An ISA this build of vitq does not name (a newer one, or none on another architecture):
    // the best level the CPU has.
    const auto supported = SupportedIsas();
    return supported.empty() ? SimdLevel::kPortable : SimdLevelOf(supported.front());
  }();
  return level;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512:
      return "avx512f";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kPortable:
      break;
  }
  return "portable";
}

std::string EffectiveIsa() {
  const dnnl::cpu_isa effective = dnnl::get_effective_cpu_isa();
  for (const auto& e : kIsas)
    if (e.isa == effective) return e.name;
  return "other";
}

}  // namespace vitq::kernels
