// End-to-end: `vitq eval` of the bundled DeiT-Tiny on the 400 bundled ImageNet val images gives
// PyTorch's top-1 and the same top-1 class per image (predictions.json).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vitq/evaluate.h"

namespace vitq {
namespace {
using testing::RepoPath;

TEST(EvalEndToEnd, DeitTinyOnImageNetSamplesMatchesPyTorch) {
  auto model = LoadModel(RepoPath("models/deit-tiny"));
  ASSERT_TRUE(model.ok());
  auto ds = OpenImageFolder(RepoPath("data/imagenet-samples/val"));
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  Engine engine(model.value());
  EvalOptions opts;
  opts.quiet = true;
  auto r = EvaluateDataset([&](const float* x, int b, float* y) { engine.Forward(x, b, y); },
                           model->spec, ds.value(), opts);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::ifstream in(RepoPath("data/imagenet-samples/reference-deit-tiny/predictions.json"));
  auto ref = nlohmann::json::parse(in);
  EXPECT_EQ(r->images, 400);
  EXPECT_NEAR(r->top1, ref["top1"].get<double>(), 1e-9);
  std::map<std::string, int> ref_top1;
  for (const auto& p : ref["predictions"])
    ref_top1[p["file"].get<std::string>()] = p["top5"][0].get<int>();
  int same = 0;
  for (size_t i = 0; i < r->files.size(); ++i) {
    ASSERT_TRUE(ref_top1.count(r->files[i])) << r->files[i];
    same += ref_top1[r->files[i]] == r->top5_classes[i][0];
  }
  std::printf("top-1 %.4f (PyTorch %.4f), same top-1 class on %d/400\n", r->top1,
              ref["top1"].get<double>(), same);
  EXPECT_GE(same, 398);
}

}  // namespace
}  // namespace vitq
