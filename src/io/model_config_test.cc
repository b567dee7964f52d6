// Unit tests of config parsing: timm names, model_args overrides, Hugging Face configs and
// preprocessing, and the errors for unknown or inconsistent configs.
#include "vitq/model_config.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace vitq {
namespace {
using testing::TempDir;
using testing::WriteText;

TEST(ConfigFromTimmName, StandardNamesImplyTheirNumbers) {
  struct Case {
    const char* name;
    int dim, depth, heads, patch, img;
    bool distilled;
  } cases[] = {{"deit_tiny_patch16_224", 192, 12, 3, 16, 224, false},
               {"deit_small_patch16_224", 384, 12, 6, 16, 224, false},
               {"deit_base_patch16_384", 768, 12, 12, 16, 384, false},
               {"vit_large_patch32_224", 1024, 24, 16, 32, 224, false},
               {"deit_base_distilled_patch16_224", 768, 12, 12, 16, 224, true}};
  for (const auto& c : cases) {
    auto r = ConfigFromTimmName(c.name);
    ASSERT_TRUE(r.ok()) << c.name;
    EXPECT_EQ(r->embed_dim, c.dim) << c.name;
    EXPECT_EQ(r->depth, c.depth) << c.name;
    EXPECT_EQ(r->num_heads, c.heads) << c.name;
    EXPECT_EQ(r->patch_size, c.patch) << c.name;
    EXPECT_EQ(r->img_size, c.img) << c.name;
    EXPECT_EQ(r->mlp_hidden, 4 * c.dim) << c.name;
    EXPECT_EQ(r->dist_token, c.distilled) << c.name;
    EXPECT_EQ(r->head_dist, c.distilled) << c.name;
  }
  EXPECT_EQ(ConfigFromTimmName("deit_tiny_patch16_224")->num_tokens(), 197);
  EXPECT_EQ(ConfigFromTimmName("deit_tiny_distilled_patch16_224")->num_tokens(), 198);
}

TEST(ConfigFromTimmName, UnknownNameIsAnError) {
  auto r = ConfigFromTimmName("resnet50");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown architecture 'resnet50'"), std::string::npos);
  EXPECT_FALSE(ConfigFromTimmName("vit_tiny_distilled_patch16_224").ok());
}

class ConfigFiles : public ::testing::Test {
 protected:
  Result<ModelSpec> Load(const std::string& config, const std::string& preprocessor = "") {
    WriteText(dir_.path("config.json"), config);
    WriteText(dir_.path("model.safetensors"), "");
    if (!preprocessor.empty()) WriteText(dir_.path("preprocessor_config.json"), preprocessor);
    return LoadModelSpec(dir_.path());
  }
  TempDir dir_;
};

TEST_F(ConfigFiles, TimmModelArgsOverrideTheName) {
  auto r = Load(R"({"architecture":"deit_tiny_patch16_224","num_classes":10,
      "model_args":{"img_size":32,"patch_size":4,"depth":6,"mlp_ratio":2.0},
      "pretrained_cfg":{"input_size":[3,32,32],"crop_pct":1.0,"interpolation":"bilinear",
      "mean":[0.5,0.5,0.5],"std":[0.25,0.25,0.25]}})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->layout, "timm");
  EXPECT_EQ(r->config.img_size, 32);
  EXPECT_EQ(r->config.patch_size, 4);
  EXPECT_EQ(r->config.depth, 6);
  EXPECT_EQ(r->config.embed_dim, 192);
  EXPECT_EQ(r->config.mlp_hidden, 384);
  EXPECT_EQ(r->config.num_classes, 10);
  EXPECT_EQ(r->preprocess.resize_shorter, 32);
  EXPECT_EQ(r->preprocess.interpolation, Interpolation::kBilinear);
  EXPECT_FLOAT_EQ(r->preprocess.std[2], 0.25f);
}

TEST_F(ConfigFiles, TimmCropPctGivesTheResizeSize) {
  auto r = Load(R"({"architecture":"deit_small_patch16_224","pretrained_cfg":{"crop_pct":0.875}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->preprocess.resize_shorter, 256);
  EXPECT_EQ(r->preprocess.crop_height, 224);
  EXPECT_TRUE(r->preprocess.crop_offset_round);
}

TEST_F(ConfigFiles, UnknownArchitectureWithoutModelArgs) {
  auto r = Load(R"({"architecture":"convnext_tiny"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("convnext_tiny"), std::string::npos);
  EXPECT_NE(r.status().message().find("config.json"), std::string::npos);
}

TEST_F(ConfigFiles, InconsistentNumbers) {
  auto r = Load(R"({"architecture":"x","model_args":{"img_size":32,"patch_size":4,"embed_dim":100,
      "depth":2,"num_heads":3}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("embed_dim 100 is not divisible by num_heads 3"),
            std::string::npos);
  auto r2 = Load(R"({"architecture":"x","model_args":{"img_size":30,"patch_size":4,"embed_dim":8,
      "depth":1,"num_heads":2}})");
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("not a multiple"), std::string::npos);
  auto r3 = Load(
      R"({"architecture":"deit_tiny_patch16_224","pretrained_cfg":{"input_size":[3,384,384]}})");
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.status().message().find("input_size"), std::string::npos);
}

TEST_F(ConfigFiles, UnsupportedModelArgIsNamed) {
  auto r = Load(R"({"architecture":"deit_tiny_patch16_224","model_args":{"init_values":1e-5}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model_args.init_values"), std::string::npos);
}

TEST_F(ConfigFiles, WrongTypeIsNamed) {
  auto r = Load(R"({"architecture":"deit_tiny_patch16_224","num_classes":"many"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'num_classes'"), std::string::npos);
}

TEST_F(ConfigFiles, HuggingFaceDeitWithTeacher) {
  auto r =
      Load(R"({"model_type":"deit","architectures":["DeiTForImageClassificationWithTeacher"],
      "hidden_size":192,"num_hidden_layers":12,"num_attention_heads":3,"intermediate_size":768,
      "layer_norm_eps":1e-12,"image_size":224,"patch_size":16,"hidden_act":"gelu",
      "id2label":{"0":"a","1":"b","2":"c"}})",
           R"({"do_resize":true,"size":{"shortest_edge":256},"resample":3,"do_center_crop":true,
      "crop_size":{"height":224,"width":224},"image_mean":[0.485,0.456,0.406],"image_std":[0.229,0.224,0.225]})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->layout, "huggingface");
  EXPECT_TRUE(r->config.dist_token);
  EXPECT_TRUE(r->config.head_dist);
  EXPECT_EQ(r->config.num_classes, 3);
  EXPECT_EQ(r->class_names[2], "c");
  EXPECT_FLOAT_EQ(r->config.ln_eps, 1e-12f);
  EXPECT_EQ(r->preprocess.resize_shorter, 256);
  EXPECT_EQ(r->preprocess.interpolation, Interpolation::kBicubic);
  EXPECT_FALSE(r->preprocess.crop_offset_round);
}

TEST_F(ConfigFiles, HuggingFaceVitResizesToSquare) {
  auto r = Load(
      R"({"model_type":"vit","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":2,
      "intermediate_size":128,"image_size":32,"patch_size":8,"num_labels":5})",
      R"({"size":{"height":32,"width":32},"resample":2,"image_mean":[0.5,0.5,0.5],"image_std":[0.5,0.5,0.5]})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->config.num_classes, 5);
  EXPECT_FALSE(r->config.dist_token);
  EXPECT_EQ(r->preprocess.resize_shorter, 0);
  EXPECT_EQ(r->preprocess.resize_width, 32);
  EXPECT_EQ(r->preprocess.interpolation, Interpolation::kBilinear);
}

TEST_F(ConfigFiles, NeitherLayout) {
  auto r = Load(R"({"hello":1})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("neither"), std::string::npos);
  auto bad = Load("{broken");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not valid JSON"), std::string::npos);
}

TEST(LoadModelSpec, MissingPathsAreNamed) {
  auto r = LoadModelSpec("/nonexistent/model");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/model"), std::string::npos);
  TempDir dir;
  auto r2 = LoadModelSpec(dir.path());
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("config.json"), std::string::npos);
}

}  // namespace
}  // namespace vitq
