// Unit tests of image decoding and PIL-exact resizing against goldens written by PIL
// (tools/make_test_goldens.py), and of the errors for broken files.
#include "vitq/image.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace vitq {
namespace {
using testing::ReadText;
using testing::RepoPath;
using testing::TempDir;
using testing::WriteText;

std::string Data(const std::string& name) { return RepoPath("tests/data/" + name); }

class DecodeMatchesPil : public ::testing::TestWithParam<const char*> {};

TEST_P(DecodeMatchesPil, RgbBytesEqualPilConvertRgb) {
  auto img = DecodeImageFile(Data(GetParam()));
  ASSERT_TRUE(img.ok()) << img.status().message();
  EXPECT_EQ(img->width, 53);
  EXPECT_EQ(img->height, 37);
  std::string expected = ReadText(Data(std::string(GetParam()) + ".rgb"));
  ASSERT_EQ(expected.size(), img->rgb.size());
  int mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    mismatches += static_cast<uint8_t>(expected[i]) != img->rgb[i];
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, DecodeMatchesPil,
                         ::testing::Values("base.png", "gray.png", "gray_alpha.png", "rgba.png",
                                           "palette.png", "color.jpg", "gray.jpg", "cmyk.jpg"));

struct ResizeCase {
  const char* filter;
  Interpolation interp;
  int w, h;
};

class ResizeMatchesPil : public ::testing::TestWithParam<ResizeCase> {};

TEST_P(ResizeMatchesPil, BitExact) {
  const ResizeCase& c = GetParam();
  auto img = DecodeImageFile(Data("base.png"));
  ASSERT_TRUE(img.ok());
  Image out = ResizeLikePil(img.value(), c.w, c.h, c.interp);
  std::string expected = ReadText(Data(std::string("resize_") + c.filter + "_" +
                                       std::to_string(c.w) + "x" + std::to_string(c.h) + ".rgb"));
  ASSERT_EQ(expected.size(), out.rgb.size());
  int mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    mismatches += static_cast<uint8_t>(expected[i]) != out.rgb[i];
  EXPECT_EQ(mismatches, 0) << c.filter << " " << c.w << "x" << c.h;
}

std::vector<ResizeCase> AllResizeCases() {
  std::vector<ResizeCase> cases;
  const std::pair<const char*, Interpolation> filters[] = {{"nearest", Interpolation::kNearest},
                                                           {"bilinear", Interpolation::kBilinear},
                                                           {"bicubic", Interpolation::kBicubic}};
  const std::pair<int, int> sizes[] = {{20, 14}, {80, 61}, {53, 20}, {31, 37}};
  for (const auto& [name, interp] : filters) {
    for (const auto& [w, h] : sizes) cases.push_back({name, interp, w, h});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Filters, ResizeMatchesPil, ::testing::ValuesIn(AllResizeCases()));

TEST(DecodeErrors, TruncatedJpeg) {
  TempDir dir;
  std::string jpg = ReadText(Data("color.jpg"));
  WriteText(dir.path("cut.jpg"), jpg.substr(0, jpg.size() / 2));
  auto img = DecodeImageFile(dir.path("cut.jpg"));
  ASSERT_FALSE(img.ok());
  EXPECT_NE(img.status().message().find("cut.jpg"), std::string::npos);
  EXPECT_NE(img.status().message().find("truncated"), std::string::npos) << img.status().message();
}

TEST(DecodeErrors, CorruptJpegHeader) {
  TempDir dir;
  WriteText(dir.path("bad.jpg"), std::string("\xFF\xD8\xFF\xE0garbage-garbage-garbage", 27));
  auto img = DecodeImageFile(dir.path("bad.jpg"));
  ASSERT_FALSE(img.ok());
  EXPECT_NE(img.status().message().find("JPEG"), std::string::npos) << img.status().message();
}

TEST(DecodeErrors, TruncatedPng) {
  TempDir dir;
  std::string png = ReadText(Data("base.png"));
  WriteText(dir.path("cut.png"), png.substr(0, png.size() - 100));
  auto img = DecodeImageFile(dir.path("cut.png"));
  ASSERT_FALSE(img.ok());
  EXPECT_NE(img.status().message().find("cut.png"), std::string::npos);
  EXPECT_NE(img.status().message().find("PNG"), std::string::npos) << img.status().message();
}

TEST(DecodeErrors, NotAnImage) {
  TempDir dir;
  WriteText(dir.path("notes.txt"), "hello");
  auto img = DecodeImageFile(dir.path("notes.txt"));
  ASSERT_FALSE(img.ok());
  EXPECT_NE(img.status().message().find("not a JPEG or PNG"), std::string::npos);
  WriteText(dir.path("empty.jpg"), "");
  EXPECT_FALSE(DecodeImageFile(dir.path("empty.jpg")).ok());
  EXPECT_FALSE(DecodeImageFile(dir.path("missing.jpg")).ok());
}

TEST(Preprocess, CenterCropOffsetsFollowTorchvisionAndTransformers) {
  // A 5x3 image, no resize (crop to 2x2): torchvision rounds (5-2)/2 = 1.5 to 2, HF floors to 1.
  Image img;
  img.width = 5;
  img.height = 3;
  for (int i = 0; i < 15; ++i) img.rgb.insert(img.rgb.end(), {static_cast<uint8_t>(i), 0, 0});
  PreprocessConfig p;
  p.resize_shorter = 0;
  p.resize_width = 5;
  p.resize_height = 3;
  p.crop_width = p.crop_height = 2;
  for (int c = 0; c < 3; ++c) {
    p.mean[c] = 0;
    p.std[c] = 1;
  }
  float out[12];
  ASSERT_TRUE(PreprocessImage(img, p, out).ok());
  EXPECT_FLOAT_EQ(out[0], 2.0f / 255);  // top = round(0.5) = 0, left = round(1.5) = 2
  p.crop_offset_round = false;
  ASSERT_TRUE(PreprocessImage(img, p, out).ok());
  EXPECT_FLOAT_EQ(out[0], 1.0f / 255);  // left = 3 // 2 = 1
}

}  // namespace
}  // namespace vitq
