// How many CPUs the process may use, and vitq's OpenMP defaults (core stage). The default thread
// count follows the affinity mask and the cgroup CPU quota (v2 cpu.max, v1 cfs_quota_us), not
// the machine's core count. docs/ARCHITECTURE.md, "Threads", says why and what was measured.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace vitq {

// CPUs allowed by cgroup v2's cpu.max text ("max 100000" -> none, "150000 100000" -> 1.5).
// nullopt for "max" and for text that does not parse.
std::optional<double> ParseCgroupV2CpuMax(const std::string& text);
// CPUs allowed by cgroup v1's cpu.cfs_quota_us / cpu.cfs_period_us (quota -1: none).
std::optional<double> CfsQuotaCpus(long long quota_us, long long period_us);
// The controller path of the process from /proc/self/cgroup text: the v2 line ("0::/a/b")
// when `v2`, else the v1 line whose controller list names "cpu". nullopt when there is none.
std::optional<std::string> CgroupPathFromProcText(const std::string& text, bool v2);
// The smallest CPU quota from the cgroup at `path` (relative to the hierarchy mounted at
// `mount`) up to the hierarchy's root; v2 reads cpu.max, v1 cpu.cfs_quota_us and period.
// Directories that do not exist (a cgroup namespace) are skipped. nullopt: no quota.
std::optional<double> CgroupQuotaCpus(const std::string& mount, const std::string& path, bool v2);
// Threads for `affinity_cpus` allowed CPUs and an optional quota: min(affinity, ceil(quota)),
// at least 1.
int ThreadsFor(int affinity_cpus, std::optional<double> quota_cpus);
// The CPUs this process may use: sched_getaffinity and the cgroup quota of /proc/self/cgroup
// (v2 under /sys/fs/cgroup or /sys/fs/cgroup/unified, v1 under /sys/fs/cgroup/cpu).
int UsableCpuCount();

// Applies vitq's default thread count (UsableCpuCount) to OpenMP unless the user set
// OMP_NUM_THREADS. Executables call it once; --threads overrides it later.
void ApplyDefaultThreads();

// Chooses, call by call, between `max_threads` and one thread for a repeated computation (an
// engine's forward pass) from the wall time of past calls: on an idle machine `max_threads` wins;
// beside a busy process, one thread can be faster (the second thread shares a core and every
// barrier waits for it). The first call at each choice is not counted (it creates oneDNN
// primitives); then the two choices alternate for kInitialSamples counted calls each, and each
// starts from the median of its samples (one call delayed by a neighbour does not decide).
// Afterwards the choice in use is timed on every call (its figure: the median of its last kWindow
// calls, so one or two slow calls do not switch and a neighbour that stays does within a few
// calls) and the other one is re-timed by a probe of kProbeCalls calls whose faster call
// replaces that choice's figure (stale by then; the first call after a long pause may find the
// idle thread asleep or badly placed). Probes come kProbeEvery calls after the choice last
// changed, then at doubling intervals up to kProbeMax while they keep confirming it (beside a
// busy neighbour a probe on max threads is the slowest call of all); a change starts the
// intervals over. Pure decisions, no OpenMP calls: Run... helpers apply them.
class AdaptiveThreads {
 public:
  static constexpr int kProbeEvery = 32;
  static constexpr int kProbeMax = 256;
  static constexpr int kProbeCalls = 2;  // calls per probe; the faster one counts
  static constexpr int kWindow = 5;      // the choice in use: median of its last calls
  static constexpr int kInitialSamples = 3;
  explicit AdaptiveThreads(int max_threads);
  // Threads for the next call of `batch` images.
  int Begin(int batch);
  // The wall time of the call Begin announced.
  void End(double seconds);
  int max_threads() const { return max_; }
  // Calls run so far on one thread, and all calls (for reports).
  int64_t single_thread_calls() const { return single_calls_; }
  int64_t calls() const { return calls_; }

 private:
  bool Starting() const;
  int Best() const;  // the faster choice by the figures: 0 max threads, 1 one thread
  int max_;
  double per_image_[2] = {0.0, 0.0};         // figure, seconds per image: [max, one]
  double initial_[2][kInitialSamples] = {};  // the counted calls of the starting phase
  int samples_[2] = {0, 0};                  // calls seen per choice (the first is not counted)
  int64_t calls_ = 0, single_calls_ = 0;
  int current_ = 0, batch_ = 1;
  double window_[kWindow] = {};  // the last calls of the choice in use (ring)
  int window_n_ = 0, window_pos_ = 0;
  int probe_left_ = 0;  // calls left in the probe under way
  double probe_best_ = std::numeric_limits<double>::infinity();
  int probe_interval_ = kProbeEvery, since_probe_ = 0;  // calls between probes, and since the last
};

// Whether engines adapt their thread count (AdaptiveThreads): yes unless VITQ_ADAPTIVE_THREADS=0.
bool AdaptiveThreadsEnabled();

}  // namespace vitq
