// OpenMP defaults for vitq's own executables (core stage): the CLI, the tests and the benchmarks
// link this object; no library does, so a program that loads vitq's code keeps its own settings.
// libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, in its constructor, before main, so
// they cannot be set from main: when the user has set neither, the process re-executes itself
// at once from .preinit_array (before any library constructor runs) with vitq's wait policy in
// its environment, and removes it again in a constructor after libgomp has read it, so child
// processes see the user's environment. docs/ARCHITECTURE.md, "Threads", has the measurements.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "vitq/threads.h"

namespace {

// The variables vitq adds; kMarker lists them in the re-executed process (and stops a loop).
// A short spin before a waiting thread sleeps: libgomp's default (300,000) burns the time slice of
// the thread it waits for when another process shares the cores (17x slower beside a second job),
// passive waiting (0) pays the wake-up of a sleeping thread at every barrier (up to 1.9x slower
// on an idle machine whose vCPUs wake slowly); 3,000 keeps most of both
// (bench/results/wait-policy.md), and the adaptive thread count handles the contended case.
constexpr const char* kWaitPolicy = "GOMP_SPINCOUNT=3000";
constexpr const char* kMarker = "VITQ_OMP_DEFAULTS";
constexpr const char* kMarkerValue = "VITQ_OMP_DEFAULTS=GOMP_SPINCOUNT";

bool HasVariable(char** envp, const char* name) {
  const size_t len = std::strlen(name);
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') return true;
  }
  return false;
}

// Runs before every library constructor (libgomp's included); uses no C++ runtime state.
void ReexecWithOmpDefaults(int /*argc*/, char** argv, char** envp) {
  if (HasVariable(envp, kMarker) || HasVariable(envp, "OMP_WAIT_POLICY") ||
      HasVariable(envp, "GOMP_SPINCOUNT")) {
    return;  // the user's choice, or already re-executed
  }
  size_t n = 0;
  while (envp != nullptr && envp[n] != nullptr) ++n;
  char** env = static_cast<char**>(std::malloc((n + 3) * sizeof(char*)));
  if (env == nullptr) return;
  for (size_t i = 0; i < n; ++i) env[i] = envp[i];
  env[n] = const_cast<char*>(kWaitPolicy);
  env[n + 1] = const_cast<char*>(kMarkerValue);
  env[n + 2] = nullptr;
  execve("/proc/self/exe", argv, env);
  std::free(env);  // no /proc: run with libgomp's defaults
}

__attribute__((section(".preinit_array"),
               used)) void (*const kPreinit)(int, char**, char**) = ReexecWithOmpDefaults;

// Runs after libgomp's constructor: removes what the re-execution added, then applies the
// default thread count (affinity mask and cgroup quota).
__attribute__((constructor)) void RestoreEnvironment() {
  if (const char* added = std::getenv(kMarker)) {
    std::string names = added;
    size_t start = 0;
    while (start <= names.size()) {
      size_t comma = names.find(',', start);
      if (comma == std::string::npos) comma = names.size();
      if (comma > start) unsetenv(names.substr(start, comma - start).c_str());
      start = comma + 1;
    }
    unsetenv(kMarker);
  }
  vitq::ApplyDefaultThreads();
}

}  // namespace
