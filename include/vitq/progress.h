// Progress bar on stderr with rate and ETA (core stage). Drawn only when stderr is a terminal
// and the bar is not quiet; otherwise every call is a no-op.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vitq {

class ProgressBar {
 public:
  // total: number of items (images, candidates, ...); unit: printed after the rate ("img/s").
  ProgressBar(std::string label, int64_t total, std::string unit, bool quiet);
  ~ProgressBar();
  void Add(int64_t n);
  // Text drawn after the ETA (e.g. "block 3/12 loss 0.012"); shown at the next draw.
  void SetDetail(std::string detail) { detail_ = std::move(detail); }
  void Finish();
  static bool StderrIsTerminal();

 private:
  void Draw(bool final_draw);
  std::string label_, unit_, detail_;
  int64_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace vitq
