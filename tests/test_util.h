// Helpers shared by the tests: paths to the bundled data and raw float files.
#pragma once

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

namespace vitq::testing {

// The repository root (set by CMake), holding models/ and data/.
inline std::string RepoPath(const std::string& rel) { return std::string(VITQ_SOURCE_DIR) + "/" + rel; }

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
