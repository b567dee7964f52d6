// ImageFolder datasets (DIR/<class>/<image>) and batched, parallel decoding + preprocessing (io).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vitq/model_config.h"
#include "vitq/status.h"

namespace vitq {

struct DatasetItem {
  std::string path;
  std::string relative;  // "<class folder>/<file>"
  int label;
};

struct Dataset {
  std::string root;
  std::string classes_file;                // the class list used, or empty (sorted folder names)
  std::vector<std::string> class_folders;  // by label (from classes.txt, else sorted folder names)
  std::vector<DatasetItem> items;          // canonical order: by label, then file name
};

// Lists DIR/<class>/<file>. A class list (first word of line i = folder of label i) fixes the
// labels and must name every folder: `classes_file` when given, else DIR/classes.txt, else
// DIR/../classes.txt (split folders such as data/x/{calib,val} sharing data/x/classes.txt);
// without one, sorted folder names do. Errors: missing dir, no class folders, no images, a
// folder the class list does not cover.
Result<Dataset> OpenImageFolder(const std::string& dir, const std::string& classes_file = "");

// `count` items drawn without replacement by a seeded shuffle (std::mt19937_64), returned in
// canonical order. count larger than the dataset is an error naming both numbers.
Result<std::vector<DatasetItem>> SampleItems(const Dataset& dataset, int count, uint64_t seed);

// FNV-1a 64 hash of the items' relative paths in order, as 16 hex digits (for reports).
std::string HashItemList(const std::vector<DatasetItem>& items);

// Decodes and preprocesses items[begin, begin + count) in parallel into `out`
// ([count, 3, crop_h, crop_w]). A file that fails sets ok[i] = false and errors[i]; the slot is
// left zero. Returns the number of failures.
int LoadBatch(const std::vector<DatasetItem>& items, size_t begin, int count,
              const PreprocessConfig& preprocess, float* out, std::vector<char>* ok,
              std::vector<std::string>* errors);

}  // namespace vitq
