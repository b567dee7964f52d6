// The fixture of the kernel tests that ctest runs once per ISA (kernels stage, tests only):
// applies VITQ_ISA when set, skipping ISAs this CPU lacks.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "dnnl_ops.h"
#include "isa.h"

namespace vitq::kernels {

class IsaFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("VITQ_ISA");
    if (env == nullptr || *env == '\0') return;
    bool supported = false;
    for (const auto& isa : SupportedIsas()) supported |= isa == env;
    if (!supported) GTEST_SKIP() << "this CPU lacks " << env;
    Status s = ConfigureIsaFromEnv();
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(EffectiveIsa(), env);
  }
  DnnlContext ctx;
};

}  // namespace vitq::kernels
