// Helpers shared by the tests: paths to the bundled data and raw float files.
#pragma once

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "vitq/quantize.h"

namespace vitq::testing {

// The repository root (set by CMake), holding models/ and data/.
inline std::string RepoPath(const std::string& rel) {
  return std::string(VITQ_SOURCE_DIR) + "/" + rel;
}

inline std::vector<float> ReadF32File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<float> v;
  if (!in) return v;
  in.seekg(0, std::ios::end);
  size_t n = static_cast<size_t>(in.tellg()) / 4;
  in.seekg(0);
  v.resize(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
  return v;
}

inline double MaxAbsDiff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  return m;
}

inline double Cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace vitq::testing

#include <filesystem>
#include <random>

#include "vitq/model.h"
#include "vitq/simulate.h"

namespace vitq::testing {

// A fresh empty directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("vitq_test_" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path(const std::string& rel = "") const {
    return rel.empty() ? path_.string() : (path_ / rel).string();
  }

 private:
  std::filesystem::path path_;
};

// A small random ViT (32x32 input, patch 8, dim 32, 2 blocks, 2 heads, 10 classes).
inline ViTConfig SmallConfig(bool distilled = false) {
  ViTConfig c;
  c.architecture = "vit_test_small";
  c.img_size = 32;
  c.patch_size = 8;
  c.embed_dim = 32;
  c.depth = 2;
  c.num_heads = 2;
  c.mlp_hidden = 64;
  c.num_classes = 10;
  c.dist_token = c.head_dist = distilled;
  return c;
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// n normally distributed images of config `c`'s input size as an in-memory calibration set.
inline CalibrationSet RandomCalibration(const ViTConfig& c, int n) {
  CalibrationSet cs;
  cs.images.resize(static_cast<size_t>(n) * c.in_chans * c.img_size * c.img_size);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0, 1);
  for (auto& v : cs.images) v = nd(rng);
  for (int i = 0; i < n; ++i)
    cs.items.push_back({"img" + std::to_string(i), "img" + std::to_string(i), 0});
  cs.dir = "memory";
  cs.hash = HashItemList(cs.items);
  return cs;
}

// A plan over every site of `m`: activations at `abits` with scale 0.05, weights at `wbits` with
// minmax scales, per tensor except fc1 (per output channel).
inline QuantPlan HandPlan(const ViTModel& m, int wbits, int abits) {
  QuantPlan p;
  p.method = "hand";
  for (const auto& name : QuantSiteNames(m.spec.config))
    p.sites[name] = {SymmetricScheme(abits), {{0.05f}, {0}}};
  for (const auto& [layer, w] : LinearLayers(m)) {
    QuantScheme s = SymmetricScheme(wbits);
    QParams params = MinMaxParams(w->weight.f32(), w->weight.size(), s);
    if (layer.find("fc1") != std::string::npos) {  // per output channel
      s.granularity = Granularity::kPerChannel;
      params = {};
      const int64_t rows = w->weight.dim(0), cols = w->weight.dim(1);
      for (int64_t r = 0; r < rows; ++r) {
        QParams row = MinMaxParams(w->weight.f32() + r * cols, cols, SymmetricScheme(wbits));
        params.scale.push_back(row.scale[0]);
        params.zero_point.push_back(0);
      }
    }
    p.sites[layer + ":w"] = {s, params};
  }
  return p;
}

}  // namespace vitq::testing
