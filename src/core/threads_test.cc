// CPU count (affinity, cgroup quota) and vitq's OpenMP defaults in its own executables.
#include "vitq/threads.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <sched.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "test_util.h"
#include "vitq/engine.h"
#include "vitq/qfile.h"
#include "vitq/runtime.h"
#include "vitq/simulate.h"

namespace vitq {
namespace {
namespace fs = std::filesystem;

TEST(Threads, ParsesCgroupV2CpuMax) {
  EXPECT_FALSE(ParseCgroupV2CpuMax("max 100000\n"));
  EXPECT_DOUBLE_EQ(*ParseCgroupV2CpuMax("150000 100000\n"), 1.5);
  EXPECT_DOUBLE_EQ(*ParseCgroupV2CpuMax("200000 100000"), 2.0);
  EXPECT_DOUBLE_EQ(*ParseCgroupV2CpuMax("50000 200000\n"), 0.25);
  EXPECT_DOUBLE_EQ(*ParseCgroupV2CpuMax("300000"), 3.0);  // period omitted: the default
  EXPECT_FALSE(ParseCgroupV2CpuMax(""));
  EXPECT_FALSE(ParseCgroupV2CpuMax("garbage 100000"));
  EXPECT_FALSE(ParseCgroupV2CpuMax("0 100000"));
}

TEST(Threads, CfsQuota) {
  EXPECT_FALSE(CfsQuotaCpus(-1, 100000));
  EXPECT_DOUBLE_EQ(*CfsQuotaCpus(250000, 100000), 2.5);
  EXPECT_FALSE(CfsQuotaCpus(100000, 0));
}

TEST(Threads, CgroupPathFromProcSelfCgroup) {
  const std::string hybrid =
      "9:name=systemd:/\n4:memory:/job/42\n2:cpuacct:/\n1:cpu,cpuacct:/user/7\n0::/unified/a\n";
  EXPECT_EQ(*CgroupPathFromProcText(hybrid, false), "/user/7");
  EXPECT_EQ(*CgroupPathFromProcText(hybrid, true), "/unified/a");
  EXPECT_EQ(*CgroupPathFromProcText("0::/\n", true), "/");
  EXPECT_FALSE(CgroupPathFromProcText("0::/\n", false));
  EXPECT_FALSE(CgroupPathFromProcText("4:memory:/x\n", true));
}

TEST(Threads, QuotaIsTheSmallestOnThePathToTheRoot) {
  testing::TempDir dir;
  const fs::path root = dir.path("cg");
  fs::create_directories(root / "a" / "b");
  auto write = [](const fs::path& p, const std::string& text) { std::ofstream(p) << text; };
  write(root / "cpu.max", "max 100000\n");
  write(root / "a" / "cpu.max", "300000 100000\n");
  write(root / "a" / "b" / "cpu.max", "max 100000\n");
  EXPECT_DOUBLE_EQ(*CgroupQuotaCpus(root.string(), "/a/b", true), 3.0);
  write(root / "a" / "b" / "cpu.max", "120000 100000\n");
  EXPECT_DOUBLE_EQ(*CgroupQuotaCpus(root.string(), "/a/b/", true), 1.2);
  EXPECT_FALSE(CgroupQuotaCpus(root.string(), "/", true));
  // A path outside the namespace's view: missing directories are skipped, the root still counts.
  write(root / "cpu.max", "100000 100000\n");
  EXPECT_DOUBLE_EQ(*CgroupQuotaCpus(root.string(), "/elsewhere/x", true), 1.0);
  // cgroup v1
  fs::create_directories(root / "v1" / "job");
  write(root / "v1" / "cpu.cfs_quota_us", "-1\n");
  write(root / "v1" / "cpu.cfs_period_us", "100000\n");
  write(root / "v1" / "job" / "cpu.cfs_quota_us", "50000\n");
  write(root / "v1" / "job" / "cpu.cfs_period_us", "100000\n");
  EXPECT_DOUBLE_EQ(*CgroupQuotaCpus((root / "v1").string(), "/job", false), 0.5);
  EXPECT_FALSE(CgroupQuotaCpus((root / "v1").string(), "/", false));
}

TEST(Threads, ThreadsFollowAffinityAndQuota) {
  EXPECT_EQ(ThreadsFor(8, std::nullopt), 8);
  EXPECT_EQ(ThreadsFor(8, 2.0), 2);
  EXPECT_EQ(ThreadsFor(8, 1.5), 2);
  EXPECT_EQ(ThreadsFor(8, 0.25), 1);
  EXPECT_EQ(ThreadsFor(2, 16.0), 2);
  EXPECT_EQ(ThreadsFor(0, std::nullopt), 1);
  const int usable = UsableCpuCount();
  EXPECT_GE(usable, 1);
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_LE(usable, CPU_COUNT(&set));
}

// Feeds AdaptiveThreads calls whose time per image depends on the thread count it picks.
struct Picks {
  int64_t max_calls = 0, one_calls = 0;
};
Picks Drive(AdaptiveThreads* a, int calls, double max_seconds, double one_seconds, int batch) {
  Picks p;
  for (int i = 0; i < calls; ++i) {
    const int t = a->Begin(batch);
    (t == 1 ? p.one_calls : p.max_calls)++;
    a->End(batch * (t == 1 ? one_seconds : max_seconds));
  }
  return p;
}

TEST(AdaptiveThreads, KeepsMaxThreadsWhenFasterAndSwitchesUnderContention) {
  AdaptiveThreads a(2);
  // Idle: two threads at 12 ms, one at 18 ms: two threads except the warm-up and the probes.
  Picks idle = Drive(&a, 320, 0.012, 0.018, 1);
  const int start = 1 + AdaptiveThreads::kInitialSamples;  // one-thread calls while starting
  const int kP = AdaptiveThreads::kProbeCalls;
  EXPECT_LE(idle.one_calls, start + kP * (320 / AdaptiveThreads::kProbeEvery + 1));
  // A busy neighbour: two threads now 22 ms, one thread still 18 ms: one thread within a few
  // calls, two threads only for probes.
  Picks busy = Drive(&a, 320, 0.022, 0.018, 1);
  EXPECT_GE(busy.one_calls, 320 - kP * (320 / AdaptiveThreads::kProbeEvery) - 8);
  // The neighbour leaves: back to two threads at the next probe (at most kProbeMax calls away,
  // the interval having grown while the probes kept confirming one thread).
  Picks back = Drive(&a, 320, 0.012, 0.018, 1);
  EXPECT_GE(back.max_calls, 320 - AdaptiveThreads::kProbeMax - 2 * kP);
  EXPECT_LE(back.one_calls, AdaptiveThreads::kProbeMax + 320 / AdaptiveThreads::kProbeEvery);
  // A neighbour that stays: probes on two threads (the slow calls) back off from one in
  // kProbeEvery calls to one in kProbeMax.
  AdaptiveThreads d(2);
  Drive(&d, 2 + 2 * AdaptiveThreads::kInitialSamples, 0.022, 0.018, 1);
  Picks stays = Drive(&d, 4096, 0.022, 0.018, 1);
  int doublings = 0;
  for (int i = AdaptiveThreads::kProbeEvery; i < AdaptiveThreads::kProbeMax; i *= 2) ++doublings;
  EXPECT_LE(stays.max_calls, kP * (4096 / AdaptiveThreads::kProbeMax + doublings + 1));
  EXPECT_GE(stays.max_calls, kP * (4096 / AdaptiveThreads::kProbeMax - 1));  // it still probes
  // A passing episode that slows both choices, two threads most (a neighbour's burst, the host
  // placing both threads on one CPU): one thread during it, and two threads again at the first
  // probe after it, not several probes later (a probe's time replaces the stale figure).
  AdaptiveThreads e(2);
  Drive(&e, 100, 0.012, 0.018, 1);
  EXPECT_GE(Drive(&e, 40, 0.067, 0.038, 1).one_calls, 30);
  const int after = 2 * AdaptiveThreads::kProbeEvery + 2;
  Picks recovered = Drive(&e, after + 50, 0.012, 0.018, 1);
  EXPECT_GE(recovered.max_calls, 50);
  // A burst of two slow calls on max threads does not switch (the median of the last calls);
  // the first probe comes ~40 calls in and the next ~64 calls later, so none falls here.
  AdaptiveThreads f(2);
  Drive(&f, 60, 0.012, 0.018, 1);
  EXPECT_EQ(Drive(&f, 2, 0.067, 0.038, 1).one_calls, 0);
  EXPECT_EQ(Drive(&f, 10, 0.012, 0.018, 1).one_calls, 0);
  // Per image: a batch of 8 at 8x the time is the same speed.
  AdaptiveThreads b(4);
  Picks batched = Drive(&b, 100, 0.010, 0.030, 8);
  EXPECT_LE(batched.one_calls, start + kP * (100 / AdaptiveThreads::kProbeEvery + 1));
  // While starting, one slow call (a neighbour woke up) does not decide: the median does.
  AdaptiveThreads c(2);
  Picks first;
  for (int i = 0; i < 2 + 2 * AdaptiveThreads::kInitialSamples; ++i) {
    const int t = c.Begin(1);
    (t == 1 ? first.one_calls : first.max_calls)++;
    c.End(t == 1 ? 0.018 : (i == 2 ? 0.050 : 0.012));  // the first counted max call is slow
  }
  EXPECT_EQ(first.one_calls, 1 + AdaptiveThreads::kInitialSamples);
  // Then max threads until the first probe (call kProbeEvery - 1).
  const int before_probe =
      AdaptiveThreads::kProbeEvery - 1 - (2 + 2 * AdaptiveThreads::kInitialSamples);
  EXPECT_EQ(Drive(&c, before_probe, 0.012, 0.018, 1).one_calls, 0);
  // One thread at most: nothing to choose.
  AdaptiveThreads one(1);
  EXPECT_EQ(Drive(&one, 10, 0.01, 0.001, 1).one_calls, 10);
}

// Switching the thread count between calls must not change any result: the float engine and the
// integer engine give the same logits on one thread as on two (their primitives are kept per
// thread count).
TEST(AdaptiveThreads, EnginesGiveTheSameLogitsOnOneAndTwoThreads) {
  auto m = LoadModel(testing::RepoPath("models/deit-tiny"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  QuantPlan plan;
  plan.method = "hand";
  for (const auto& name : QuantSiteNames(m->spec.config))
    plan.sites[name] = {SymmetricScheme(8), {{0.05f}, {0}}};
  for (const auto& [layer, w] : LinearLayers(*m)) {
    QuantScheme s = SymmetricScheme(layer.find("fc") != std::string::npos ? 6 : 8);
    plan.sites[layer + ":w"] = {s, MinMaxParams(w->weight.f32(), w->weight.size(), s)};
  }
  testing::TempDir dir;
  ASSERT_TRUE(SaveQuantizedFile(dir.path("m.vitq"), *m, plan).ok());
  auto q = LoadQuantizedFile(dir.path("m.vitq"));
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_TRUE(ConfigureIsa().ok());
  auto integer = IntegerEngine::Create(*q);
  ASSERT_TRUE(integer.ok()) << integer.status().message();
  Engine fp32(*m);
  const int batch = 2, n = batch * 1000;
  std::vector<float> x(batch * 3 * 224 * 224);
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  const int saved = omp_get_max_threads();
  std::vector<float> f2(n), f1(n), i2(n), i1(n), f2b(n);
  omp_set_num_threads(2);
  fp32.Forward(x.data(), batch, f2.data());
  (*integer)->Forward(x.data(), batch, i2.data());
  omp_set_num_threads(1);
  fp32.Forward(x.data(), batch, f1.data());
  (*integer)->Forward(x.data(), batch, i1.data());
  omp_set_num_threads(2);
  fp32.Forward(x.data(), batch, f2b.data());
  omp_set_num_threads(saved);
  EXPECT_EQ(0, std::memcmp(i1.data(), i2.data(), n * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(f2.data(), f2b.data(), n * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(f1.data(), f2.data(), n * sizeof(float)))
      << "max |diff| " << testing::MaxAbsDiff(f1.data(), f2.data(), n);
}

// This binary links vitq_exe_init like the CLI: the OpenMP defaults were applied and the
// environment the process (and its children) sees is the user's.
TEST(Threads, ExecutablesApplyDefaultsAndHideThem) {
  EXPECT_EQ(std::getenv("VITQ_OMP_DEFAULTS"), nullptr);
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    EXPECT_EQ(omp_get_max_threads(), UsableCpuCount());
  }
  auto display = [](const std::string& env) {
    // OMP_DISPLAY_ENV makes libgomp print the settings it read at start-up. The CLI runs without
    // the wait variables of this process's environment (scripts/test.sh sets passive waiting).
    std::string cmd = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT " + env +
                      " OMP_DISPLAY_ENV=verbose " + std::string(VITQ_BINARY) + " --version 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    EXPECT_EQ(pclose(p), 0) << out;
    return out;
  };
  std::string out = display("");
  EXPECT_NE(out.find("GOMP_SPINCOUNT = '3000'"), std::string::npos) << out;
  out = display("OMP_WAIT_POLICY=passive");
  EXPECT_NE(out.find("GOMP_SPINCOUNT = '0'"), std::string::npos) << out;
  out = display("OMP_WAIT_POLICY=active");
  EXPECT_NE(out.find("OMP_WAIT_POLICY = 'ACTIVE'"), std::string::npos) << out;
  out = display("GOMP_SPINCOUNT=12345");
  EXPECT_NE(out.find("GOMP_SPINCOUNT = '12345'"), std::string::npos) << out;
}

}  // namespace
}  // namespace vitq
