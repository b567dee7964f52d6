// Unit tests of ImageFolder listing, labels from classes.txt, seeded sampling and batch loading.
#include "vitq/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace vitq {
namespace {
using testing::RepoPath;
using testing::TempDir;
using testing::WriteText;
namespace fs = std::filesystem;

void MakeFolder(const TempDir& dir, const std::vector<std::string>& classes, int per_class) {
  for (const auto& c : classes) {
    fs::create_directories(dir.path(c));
    for (int i = 0; i < per_class; ++i) {
      fs::copy_file(RepoPath("tests/data/color.jpg"),
                    dir.path(c + "/img" + std::to_string(i) + ".jpg"));
    }
  }
}

TEST(ImageFolder, SortedFoldersGiveLabelsWithoutClassList) {
  TempDir dir;
  MakeFolder(dir, {"b", "a"}, 2);
  auto ds = OpenImageFolder(dir.path());
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  ASSERT_EQ(ds->items.size(), 4u);
  EXPECT_EQ(ds->class_folders, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ds->items[0].relative, "a/img0.jpg");
  EXPECT_EQ(ds->items[3].label, 1);
}

TEST(ImageFolder, ClassListFixesLabels) {
  TempDir dir;
  MakeFolder(dir, {"cat", "dog"}, 1);
  WriteText(dir.path("classes.txt"), "zebra striped\ndog a dog\ncat\n");
  auto ds = OpenImageFolder(dir.path());
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->items[0].relative, "dog/img0.jpg");
  EXPECT_EQ(ds->items[0].label, 1);
  EXPECT_EQ(ds->items[1].label, 2);
}

TEST(ImageFolder, BundledImageNetSplitUsesTheSharedClassList) {
  auto ds = OpenImageFolder(RepoPath("data/imagenet-samples/calib"));
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->items.size(), 100u);
  EXPECT_EQ(ds->items[0].label, 0);
  EXPECT_EQ(ds->items[1].label, 10);
}

TEST(ImageFolder, ClassListNotCoveringAFolderIsAnError) {
  TempDir dir;
  MakeFolder(dir, {"cat", "dog"}, 1);
  WriteText(dir.path("classes.txt"), "cat\n");
  auto ds = OpenImageFolder(dir.path());
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("folder 'dog' is not listed"), std::string::npos)
      << ds.status().message();
}

TEST(ImageFolder, EmptyDatasets) {
  TempDir dir;
  auto none = OpenImageFolder(dir.path());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no class folders"), std::string::npos);
  fs::create_directories(dir.path("a"));
  auto empty = OpenImageFolder(dir.path());
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no image files"), std::string::npos);
  EXPECT_FALSE(OpenImageFolder(dir.path("missing")).ok());
}

TEST(ImageFolder, SamplingIsSeededAndBounded) {
  TempDir dir;
  MakeFolder(dir, {"a", "b", "c"}, 5);
  auto ds = OpenImageFolder(dir.path());
  ASSERT_TRUE(ds.ok());
  auto s1 = SampleItems(ds.value(), 6, 7), s2 = SampleItems(ds.value(), 6, 7),
       s3 = SampleItems(ds.value(), 6, 8);
  ASSERT_TRUE(s1.ok() && s2.ok() && s3.ok());
  EXPECT_EQ(HashItemList(s1.value()), HashItemList(s2.value()));
  EXPECT_NE(HashItemList(s1.value()), HashItemList(s3.value()));
  auto too_many = SampleItems(ds.value(), 16, 0);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("has 15 images, cannot draw 16"), std::string::npos);
}

TEST(LoadBatch, ReportsBadFilesPerSlot) {
  TempDir dir;
  MakeFolder(dir, {"a"}, 2);
  WriteText(dir.path("a/zz_broken.jpg"), "not an image");
  auto ds = OpenImageFolder(dir.path());
  ASSERT_TRUE(ds.ok());
  PreprocessConfig p;
  p.resize_shorter = 16;
  p.crop_height = p.crop_width = 16;
  std::vector<float> out(3 * 3 * 16 * 16);
  std::vector<char> ok;
  std::vector<std::string> errors;
  EXPECT_EQ(LoadBatch(ds->items, 0, 3, p, out.data(), &ok, &errors), 1);
  EXPECT_TRUE(ok[0] && ok[1]);
  EXPECT_FALSE(ok[2]);
  EXPECT_NE(errors[2].find("zz_broken.jpg"), std::string::npos);
}

}  // namespace
}  // namespace vitq
