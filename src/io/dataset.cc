// ImageFolder listing, seeded sampling and parallel batch loading (io stage).
#include "vitq/dataset.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <new>
#include <random>

#include "vitq/image.h"

namespace vitq {
namespace fs = std::filesystem;

Result<Dataset> OpenImageFolder(const std::string& dir, const std::string& classes_file) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::InvalidInput("dataset '" + dir +
                                "' is not a directory (expected DIR/<class>/<image>)");
  }
  Dataset ds;
  ds.root = dir;
  std::vector<std::string> folders;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    std::error_code entry_ec;  // a symlink loop or dangling link is not a class folder
    if (e.is_directory(entry_ec) && !name.empty() && name[0] != '.') folders.push_back(name);
  }
  if (ec) return Status::InvalidInput("dataset '" + dir + "': cannot list: " + ec.message());
  std::sort(folders.begin(), folders.end());
  if (folders.empty()) {
    return Status::InvalidInput("dataset '" + dir +
                                "' is empty: no class folders (expected DIR/<class>/<image>)");
  }
  std::string classes_path = classes_file;
  if (classes_path.empty()) {
    // DIR/classes.txt, else the one beside DIR for split folders (DIR/../{train,val,calib}).
    for (const fs::path& candidate :
         {fs::path(dir) / "classes.txt", fs::path(dir) / ".." / "classes.txt"}) {
      std::error_code exists_ec;
      if (fs::exists(candidate, exists_ec)) {
        classes_path = candidate.lexically_normal().string();
        break;
      }
    }
  }
  ds.classes_file = classes_path;
  std::map<std::string, int> label_of;
  if (!classes_path.empty()) {
    VITQ_ASSIGN_OR_RETURN(ds.class_folders, ReadClassNames(classes_path, /*display_names=*/false));
    for (size_t i = 0; i < ds.class_folders.size(); ++i) label_of.emplace(ds.class_folders[i], i);
    for (const auto& f : folders) {
      if (!label_of.count(f)) {
        return Status::InvalidInput("dataset '" + dir + "': folder '" + f + "' is not listed in '" +
                                    classes_path + "' (" + std::to_string(ds.class_folders.size()) +
                                    " classes)");
      }
    }
  } else {
    ds.class_folders = folders;
    for (size_t i = 0; i < folders.size(); ++i) label_of[folders[i]] = static_cast<int>(i);
  }
  for (const auto& f : folders) {
    std::vector<std::string> files;
    std::error_code list_ec;
    for (const auto& e : fs::directory_iterator(fs::path(dir) / f, list_ec)) {
      std::string name = e.path().filename().string();
      // Every other entry is listed, so that a FIFO, a device or a broken link is reported (or
      // skipped with --skip-bad-images) when it is read, not silently left out.
      std::error_code entry_ec;
      if (!name.empty() && name[0] != '.' && !e.is_directory(entry_ec)) files.push_back(name);
    }
    if (list_ec) {
      return Status::InvalidInput("dataset '" + dir + "': cannot list class folder '" + f +
                                  "': " + list_ec.message());
    }
    std::sort(files.begin(), files.end());
    for (const auto& name : files) {
      ds.items.push_back({(fs::path(dir) / f / name).string(), f + "/" + name, label_of[f]});
    }
  }
  std::stable_sort(ds.items.begin(), ds.items.end(),
                   [](const DatasetItem& a, const DatasetItem& b) { return a.label < b.label; });
  if (ds.items.empty()) {
    return Status::InvalidInput("dataset '" + dir +
                                "' is empty: " + std::to_string(folders.size()) +
                                " class folders but no image files");
  }
  return ds;
}

Result<std::vector<DatasetItem>> SampleItems(const Dataset& dataset, int count, uint64_t seed) {
  if (count <= 0 || static_cast<size_t>(count) > dataset.items.size()) {
    return Status::InvalidInput("dataset '" + dataset.root + "' has " +
                                std::to_string(dataset.items.size()) + " images, cannot draw " +
                                std::to_string(count));
  }
  std::vector<size_t> idx(dataset.items.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = idx.size() - 1; i > 0; --i) {  // Fisher-Yates, portable across libstdc++ versions
    size_t j = static_cast<size_t>(rng() % (i + 1));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(count);
  std::sort(idx.begin(), idx.end());
  std::vector<DatasetItem> out;
  for (size_t i : idx) out.push_back(dataset.items[i]);
  return out;
}

std::string HashItemList(const std::vector<DatasetItem>& items) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& it : items) {
    for (char c : it.relative + "\n") {
      h ^= static_cast<uint8_t>(c);
      h *= 1099511628211ull;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

int LoadBatch(const std::vector<DatasetItem>& items, size_t begin, int count,
              const PreprocessConfig& preprocess, float* out, std::vector<char>* ok,
              std::vector<std::string>* errors) {
  const size_t per_image = static_cast<size_t>(3) * preprocess.crop_height * preprocess.crop_width;
  ok->assign(count, 1);
  errors->assign(count, "");
  int failures = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : failures)
  for (int i = 0; i < count; ++i) {
    const std::string& path = items[begin + i].path;
    float* dst = out + per_image * i;
    // No exception may leave an OpenMP region (it would terminate the process): out of memory
    // while decoding one image is that image's error.
    Status s;
    try {
      auto img = DecodeImageFile(path);
      s = img.ok() ? PreprocessImage(img.value(), preprocess, dst, path) : img.status();
    } catch (const std::bad_alloc&) {
      s = Status::InvalidInput("image '" + path + "': out of memory while decoding it");
    } catch (const std::exception& e) {
      s = Status::Internal("image '" + path + "': " + e.what());
    }
    if (!s.ok()) {
      (*ok)[i] = 0;
      (*errors)[i] = s.message();
      std::fill(dst, dst + per_image, 0.0f);
      ++failures;
    }
  }
  return failures;
}

}  // namespace vitq
