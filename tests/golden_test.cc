// End-to-end goldens against PyTorch: DeiT-Tiny logits, preprocessing of real JPEGs, the CIFAR-10
// ViT (model_args config) logits.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vitq/engine.h"
#include "vitq/image.h"
#include "vitq/model.h"

namespace vitq {
namespace {
using testing::RepoPath;

const std::string kRef = "data/imagenet-samples/reference-deit-tiny/";

TEST(Golden, DeitTinyLogitsMatchPyTorchOnEightInputs) {
  auto model = LoadModel(RepoPath("models/deit-tiny"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto inputs = testing::ReadF32File(RepoPath(kRef + "inputs_8x3x224x224_f32.bin"));
  auto ref = testing::ReadF32File(RepoPath(kRef + "logits_8x1000_f32.bin"));
  ASSERT_EQ(inputs.size(), 8u * 3 * 224 * 224);
  ASSERT_EQ(ref.size(), 8000u);
  Engine engine(model.value());
  std::vector<float> logits(8000);
  engine.Forward(inputs.data(), 8, logits.data());
  double max_diff = testing::MaxAbsDiff(logits.data(), ref.data(), ref.size());
  std::printf("deit-tiny logits: max |diff| %.3g, cosine %.9f\n", max_diff,
              testing::Cosine(logits.data(), ref.data(), ref.size()));
  EXPECT_LE(max_diff, 1e-3);
  // Batch size must not change the result: run one image alone.
  std::vector<float> one(1000);
  engine.Forward(inputs.data() + 3 * 224 * 224 * 5, 1, one.data());
  EXPECT_LE(testing::MaxAbsDiff(one.data(), ref.data() + 5000, 1000), 1e-3);
}

TEST(Golden, DeitTinyTestVector) {
  auto model = LoadModel(RepoPath("models/deit-tiny"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto input = testing::ReadF32File(RepoPath("models/deit-tiny/testvec/input_3x224x224_f32.bin"));
  auto ref = testing::ReadF32File(RepoPath("models/deit-tiny/testvec/ref_logits_1000_f32.bin"));
  ASSERT_EQ(input.size(), 3u * 224 * 224);
  ASSERT_EQ(ref.size(), 1000u);
  Engine engine(model.value());
  std::vector<float> logits(1000);
  engine.Forward(input.data(), 1, logits.data());
  EXPECT_LE(testing::MaxAbsDiff(logits.data(), ref.data(), 1000), 1e-3);
}

TEST(Golden, PreprocessingMatchesPyTorchOnEightJpegs) {
  auto model = LoadModel(RepoPath("models/deit-tiny"));
  ASSERT_TRUE(model.ok());
  std::ifstream in(RepoPath(kRef + "inputs_files.json"));
  auto files = nlohmann::json::parse(in).get<std::vector<std::string>>();
  auto ref = testing::ReadF32File(RepoPath(kRef + "inputs_8x3x224x224_f32.bin"));
  ASSERT_EQ(files.size(), 8u);
  const size_t per = 3 * 224 * 224;
  std::vector<float> mine(per);
  double worst = 0, sum = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    auto img = DecodeImageFile(RepoPath("data/imagenet-samples/val/" + files[i]));
    ASSERT_TRUE(img.ok()) << img.status().message();
    ASSERT_TRUE(PreprocessImage(img.value(), model->spec.preprocess, mine.data()).ok());
    for (size_t j = 0; j < per; ++j) {
      double d = std::fabs(mine[j] - ref[i * per + j]);
      worst = std::max(worst, d);
      sum += d;
    }
  }
  std::printf("preprocessing vs PyTorch: max |diff| %.4g, mean |diff| %.3g\n", worst,
              sum / (8.0 * per));
  EXPECT_LE(worst, 0.02);
}

TEST(Golden, CifarVitWithModelArgsMatchesPyTorch) {
  auto model = LoadModel(RepoPath("models/vit-cifar10"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->spec.config.img_size, 32);
  EXPECT_EQ(model->spec.config.depth, 6);
  auto ref = testing::ReadF32File(RepoPath("models/vit-cifar10/reference_logits.f32"));
  ASSERT_EQ(ref.size(), 640u);
  std::vector<float> inputs(64 * 3 * 32 * 32);
  for (int i = 0; i < 64; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "airplane/%04d.png", i);
    // The first 64 test images are in ../shared only; the bundled calibration set is train data.
    std::string path = std::string(VITQ_SOURCE_DIR) + "/../shared/data/cifar10/test/" + name;
    auto img = DecodeImageFile(path);
    if (!img.ok()) GTEST_SKIP() << "CIFAR-10 test images not found: " << img.status().message();
    ASSERT_TRUE(
        PreprocessImage(img.value(), model->spec.preprocess, inputs.data() + i * 3 * 32 * 32).ok());
  }
  Engine engine(model.value());
  std::vector<float> logits(640);
  engine.Forward(inputs.data(), 64, logits.data());
  EXPECT_LE(testing::MaxAbsDiff(logits.data(), ref.data(), 640), 1e-3);
}

}  // namespace
}  // namespace vitq
