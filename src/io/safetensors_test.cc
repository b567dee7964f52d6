// Unit tests of the safetensors reader/writer: round trip, dtype conversion, and every kind of
// corrupt file giving a clear error.
#include "vitq/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace vitq {
namespace {
using testing::ReadText;
using testing::TempDir;
using testing::WriteText;

Tensor Iota(Shape shape) {
  Tensor t = Tensor::F32(std::move(shape));
  for (int64_t i = 0; i < t.size(); ++i) t.f32()[i] = static_cast<float>(i) * 0.5f - 3.0f;
  return t;
}

TEST(Safetensors, RoundTripKeepsNamesShapesDataAndMetadata) {
  TempDir dir;
  Tensor a = Iota({2, 3}), b(DType::kI8, {4});
  for (int i = 0; i < 4; ++i) b.data<int8_t>()[i] = static_cast<int8_t>(i - 2);
  ASSERT_TRUE(
      WriteSafetensors(dir.path("x.safetensors"), {{"a", &a}, {"b", &b}}, {{"k", "v"}}).ok());
  auto f = SafetensorsFile::Open(dir.path("x.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->metadata().at("k"), "v");
  auto ra = f->ReadF32("a", {2, 3});
  ASSERT_TRUE(ra.ok());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ra->f32()[i], a.f32()[i]);
  auto rb = f->ReadExact("b", DType::kI8, {4});
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->data<int8_t>()[0], -2);
  EXPECT_FALSE(f->ReadF32("b").ok());  // an integer tensor is not read as float
}

TEST(Safetensors, HalfAndBfloat16AreConvertedToFloat) {
  TempDir dir;
  const float values[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f};
  Tensor h(DType::kF16, {6}), bf(DType::kBF16, {6});
  for (int i = 0; i < 6; ++i) {
    h.data<uint16_t>()[i] = FloatToHalf(values[i]);
    uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    bf.data<uint16_t>()[i] = static_cast<uint16_t>(bits >> 16);
  }
  ASSERT_TRUE(WriteSafetensors(dir.path("h.safetensors"), {{"h", &h}, {"bf", &bf}}).ok());
  auto f = SafetensorsFile::Open(dir.path("h.safetensors"));
  ASSERT_TRUE(f.ok());
  auto rh = f->ReadF32("h");
  auto rbf = f->ReadF32("bf");
  ASSERT_TRUE(rh.ok() && rbf.ok());
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(rh->f32()[i], values[i]) << i;
    EXPECT_NEAR(rbf->f32()[i], values[i], std::fabs(values[i]) / 128) << i;
  }
}

class SafetensorsErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    Tensor a = Iota({4, 4});
    ASSERT_TRUE(WriteSafetensors(dir_.path("good.safetensors"), {{"w", &a}}).ok());
    good_ = ReadText(dir_.path("good.safetensors"));
  }
  std::string Expect(const std::string& contents) {
    WriteText(dir_.path("bad.safetensors"), contents);
    auto f = SafetensorsFile::Open(dir_.path("bad.safetensors"));
    EXPECT_FALSE(f.ok());
    if (f.ok()) return "";
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(f.status().message().find("bad.safetensors"), std::string::npos)
        << f.status().message();
    return f.status().message();
  }
  std::string Header(const std::string& json) {
    std::string s(8, '\0');
    uint64_t n = json.size();
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return s + json;
  }
  TempDir dir_;
  std::string good_;
};

TEST_F(SafetensorsErrors, MissingFile) {
  auto f = SafetensorsFile::Open(dir_.path("nope.safetensors"));
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("cannot open"), std::string::npos);
}

TEST_F(SafetensorsErrors, TooShortForHeaderLength) {
  EXPECT_NE(Expect("abc").find("truncated"), std::string::npos);
}

TEST_F(SafetensorsErrors, TruncatedData) {
  std::string msg = Expect(good_.substr(0, good_.size() - 10));
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside"), std::string::npos) << msg;
}

TEST_F(SafetensorsErrors, TruncatedHeader) {
  EXPECT_NE(Expect(good_.substr(0, 20)).find("exceeds"), std::string::npos);
}

TEST_F(SafetensorsErrors, HeaderNotJson) {
  EXPECT_NE(Expect(Header("{not json")).find("JSON"), std::string::npos);
}

TEST_F(SafetensorsErrors, OffsetsOutsideFile) {
  std::string msg =
      Expect(Header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8000]}})") + "12345678");
  EXPECT_NE(msg.find("outside"), std::string::npos) << msg;
}

TEST_F(SafetensorsErrors, OffsetsDisagreeWithShape) {
  std::string msg =
      Expect(Header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})") + "12345678");
  EXPECT_NE(msg.find("needs 12"), std::string::npos) << msg;
}

TEST_F(SafetensorsErrors, UnknownDtype) {
  std::string msg =
      Expect(Header(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})") + "12345678");
  EXPECT_NE(msg.find("F64"), std::string::npos) << msg;
}

TEST_F(SafetensorsErrors, MissingTensorAndWrongShapeNameTheTensor) {
  auto f = SafetensorsFile::Open(dir_.path("good.safetensors"));
  ASSERT_TRUE(f.ok());
  auto missing = f->ReadF32("v", {4});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing tensor 'v'"), std::string::npos);
  auto wrong = f->ReadF32("w", {4, 5});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("[4, 4], expected [4, 5]"), std::string::npos)
      << wrong.status().message();
}

TEST(Safetensors, WriteIsAtomicAndLeavesNoTempFile) {
  TempDir dir;
  Tensor a = Iota({2});
  ASSERT_TRUE(WriteSafetensors(dir.path("x.safetensors"), {{"a", &a}}).ok());
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  // Writing into a missing directory fails without creating anything.
  EXPECT_FALSE(WriteSafetensors(dir.path("missing/x.safetensors"), {{"a", &a}}).ok());
}

}  // namespace
}  // namespace vitq
