// CPUs the process may use: affinity mask and cgroup CPU quota (core stage).
#include "vitq/threads.h"

#include <fcntl.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace vitq {

namespace {
// Whole small file (cgroup and proc files); nullopt when it cannot be opened. POSIX I/O only.
std::optional<std::string> ReadSmallFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(fd);
  return text;
}

bool IsDirectory(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

std::optional<long long> ParseInteger(const std::string& text) {
  std::istringstream in(text);
  long long v = 0;
  if (!(in >> v)) return std::nullopt;
  return v;
}

std::optional<double> QuotaAt(const std::string& dir, bool v2) {
  if (v2) {
    auto text = ReadSmallFile(dir + "/cpu.max");
    return text ? ParseCgroupV2CpuMax(*text) : std::nullopt;
  }
  auto quota = ReadSmallFile(dir + "/cpu.cfs_quota_us");
  auto period = ReadSmallFile(dir + "/cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  auto q = ParseInteger(*quota), p = ParseInteger(*period);
  if (!q || !p) return std::nullopt;
  return CfsQuotaCpus(*q, *p);
}

std::optional<double> Min(std::optional<double> a, std::optional<double> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}
}  // namespace

std::optional<double> ParseCgroupV2CpuMax(const std::string& text) {
  std::istringstream in(text);
  std::string quota;
  long long period = 100000;
  if (!(in >> quota)) return std::nullopt;
  if (quota == "max") return std::nullopt;
  if (!(in >> period)) period = 100000;  // the kernel always writes both; the default period
  auto q = ParseInteger(quota);
  if (!q) return std::nullopt;
  return CfsQuotaCpus(*q, period);
}

std::optional<double> CfsQuotaCpus(long long quota_us, long long period_us) {
  if (quota_us <= 0 || period_us <= 0) return std::nullopt;
  return static_cast<double>(quota_us) / static_cast<double>(period_us);
}

std::optional<std::string> CgroupPathFromProcText(const std::string& text, bool v2) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // hierarchy-id:controller-list:path
    size_t a = line.find(':');
    if (a == std::string::npos) continue;
    size_t b = line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (v2) {
      if (id == "0" && controllers.empty()) return path;
      continue;
    }
    std::istringstream list(controllers);
    std::string c;
    while (std::getline(list, c, ',')) {
      if (c == "cpu") return path;
    }
  }
  return std::nullopt;
}

std::optional<double> CgroupQuotaCpus(const std::string& mount, const std::string& path, bool v2) {
  std::optional<double> quota;
  std::string p = path;
  while (true) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    const std::string dir = (p == "/" || p.empty()) ? mount : mount + p;
    if (IsDirectory(dir)) quota = Min(quota, QuotaAt(dir, v2));
    if (p == "/" || p.empty()) break;
    size_t slash = p.rfind('/');
    p = slash == 0 || slash == std::string::npos ? "/" : p.substr(0, slash);
  }
  return quota;
}

int ThreadsFor(int affinity_cpus, std::optional<double> quota_cpus) {
  int n = std::max(1, affinity_cpus);
  if (quota_cpus) {
    // A quota of 1.5 CPUs lets two threads run 75 % of the time each: round up, as the JVM and
    // Go's runtime do, so a fractional quota is not left unused.
    n = std::min(n, std::max(1, static_cast<int>(std::ceil(*quota_cpus - 1e-9))));
  }
  return n;
}

int UsableCpuCount() {
  int affinity = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) affinity = CPU_COUNT(&set);
  if (affinity <= 0) affinity = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  std::optional<double> quota;
  if (auto text = ReadSmallFile("/proc/self/cgroup")) {
    if (auto path = CgroupPathFromProcText(*text, true)) {
      for (const char* mount : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        if (ReadSmallFile(std::string(mount) + "/cgroup.controllers")) {
          quota = Min(quota, CgroupQuotaCpus(mount, *path, true));
          break;
        }
      }
    }
    if (auto path = CgroupPathFromProcText(*text, false)) {
      for (const char* mount : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}) {
        if (IsDirectory(mount)) {
          quota = Min(quota, CgroupQuotaCpus(mount, *path, false));
          break;
        }
      }
    }
  }
  return ThreadsFor(affinity, quota);
}

AdaptiveThreads::AdaptiveThreads(int max_threads) : max_(std::max(1, max_threads)) {}

int AdaptiveThreads::Best() const {
  // One thread must be clearly faster (3 %) to be chosen: idle noise keeps max threads.
  return per_image_[1] < 0.97 * per_image_[0] ? 1 : 0;
}

bool AdaptiveThreads::Starting() const {
  return samples_[0] <= kInitialSamples || samples_[1] <= kInitialSamples;
}

int AdaptiveThreads::Begin(int batch) {
  batch_ = std::max(1, batch);
  if (max_ == 1) {
    current_ = 1;
    return 1;
  }
  int pick;
  if (Starting()) {
    // Alternate, max threads first, until both choices have their uncounted call and
    // kInitialSamples counted ones.
    pick = samples_[0] > samples_[1] ? 1 : 0;
  } else {
    const int best = Best();
    if (probe_left_ == 0 && since_probe_ + 1 >= probe_interval_) probe_left_ = kProbeCalls;
    pick = probe_left_ > 0 ? 1 - best : best;
  }
  current_ = pick;
  return pick == 0 ? max_ : 1;
}

void AdaptiveThreads::End(double seconds) {
  ++calls_;
  if (max_ == 1) return;
  if (current_ == 1) ++single_calls_;
  const int i = current_;
  const double per_image = seconds / batch_;
  if (samples_[i] >= 1 && samples_[i] <= kInitialSamples) {
    initial_[i][samples_[i] - 1] = per_image;
    if (samples_[i] == kInitialSamples) {
      double sorted[kInitialSamples];
      std::copy(initial_[i], initial_[i] + kInitialSamples, sorted);
      std::sort(sorted, sorted + kInitialSamples);
      per_image_[i] = sorted[kInitialSamples / 2];
    }
  } else if (samples_[i] > kInitialSamples) {
    const int before = Best();
    const bool probe = i != before;
    if (probe) {
      // A probe's calls replace the other choice's figure, which is stale by then (a neighbour
      // that slowed both choices may have left since); the faster call counts, as the first
      // call after a long pause may find the idle thread asleep or badly placed.
      probe_best_ = std::min(probe_best_, per_image);
      if (--probe_left_ > 0) {
        ++samples_[i];
        return;
      }
      per_image_[i] = probe_best_;
      probe_best_ = std::numeric_limits<double>::infinity();
    } else {
      // The choice in use: the median of its last kWindow calls, so a burst of one or two slow
      // calls does not switch, a neighbour that stays does within a few calls. The window
      // starts from the choice's figure when it comes into use.
      if (window_n_ == 0) {
        window_[0] = per_image_[i];
        window_n_ = window_pos_ = 1;
      }
      window_[window_pos_] = per_image;
      window_pos_ = (window_pos_ + 1) % kWindow;
      window_n_ = std::min(window_n_ + 1, kWindow);
      double sorted[kWindow];
      std::copy(window_, window_ + window_n_, sorted);
      // Insertion sort (std::sort on a 5-element array trips GCC 12's -Warray-bounds).
      for (int a = 1; a < window_n_; ++a)
        for (int b = a; b > 0 && sorted[b - 1] > sorted[b]; --b)
          std::swap(sorted[b - 1], sorted[b]);
      per_image_[i] = sorted[window_n_ / 2];
    }
    if (Best() != before) {
      probe_interval_ = kProbeEvery;  // the choice changed: watch it closely again
      since_probe_ = 0;
      window_n_ = window_pos_ = 0;  // a new window for the new choice
    } else if (probe) {
      probe_interval_ = std::min(2 * probe_interval_, kProbeMax);  // confirmed: probe less often
      since_probe_ = 0;
    } else {
      ++since_probe_;
    }
  }
  ++samples_[i];
}

bool AdaptiveThreadsEnabled() {
  const char* env = std::getenv("VITQ_ADAPTIVE_THREADS");
  return env == nullptr || std::string(env) != "0";
}

void ApplyDefaultThreads() {
  const char* user = std::getenv("OMP_NUM_THREADS");
  if (user != nullptr && *user != '\0') return;
  omp_set_num_threads(UsableCpuCount());
}

}  // namespace vitq
