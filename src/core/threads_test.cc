// CPU count (affinity, cgroup quota) and vitq's OpenMP defaults in its own executables.
#include "vitq/threads.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <sched.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "test_util.h"

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

// This binary links vitq_exe_init like the CLI: the OpenMP defaults were applied and the
// environment the process (and its children) sees is the user's.
TEST(Threads, ExecutablesApplyDefaultsAndHideThem) {
  EXPECT_EQ(std::getenv("VITQ_OMP_DEFAULTS"), nullptr);
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    EXPECT_EQ(omp_get_max_threads(), UsableCpuCount());
  }
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) {
    GTEST_SKIP() << "the user set the wait policy";
  }
  auto display = [](const std::string& env) {
    // OMP_DISPLAY_ENV makes libgomp print the settings it read at start-up; passive is a spin
    // count of 0 (libgomp prints PASSIVE for its own default too, which spins 300,000 times).
    std::string cmd =
        env + " OMP_DISPLAY_ENV=verbose " + std::string(VITQ_BINARY) + " --version 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    EXPECT_EQ(pclose(p), 0) << out;
    return out;
  };
  std::string out = display("");
  EXPECT_NE(out.find("OMP_WAIT_POLICY = 'PASSIVE'"), std::string::npos) << out;
  EXPECT_NE(out.find("GOMP_SPINCOUNT = '0'"), std::string::npos) << out;
  out = display("OMP_WAIT_POLICY=active");
  EXPECT_NE(out.find("OMP_WAIT_POLICY = 'ACTIVE'"), std::string::npos) << out;
  out = display("GOMP_SPINCOUNT=12345");
  EXPECT_NE(out.find("GOMP_SPINCOUNT = '12345'"), std::string::npos) << out;
}

}  // namespace
}  // namespace vitq
