// Terminal progress bar (core stage).
#include "vitq/progress.h"

#include "vitq/dist.h"

#include <unistd.h>

#include <cstdio>

namespace vitq {

bool ProgressBar::StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, bool quiet)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(!quiet && StderrIsTerminal() && dist::Rank() == 0),  // MPI: rank 0 shows the job
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Add(int64_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ > std::chrono::milliseconds(100) || done_ >= total_) {
    last_draw_ = now;
    Draw(false);
  }
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) {
    Draw(true);
    std::fputc('\n', stderr);
  }
}

void ProgressBar::Draw(bool final_draw) {
  (void)final_draw;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = seconds > 0 ? done_ / seconds : 0.0;
  double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
  constexpr int kWidth = 30;
  int filled = total_ > 0 ? static_cast<int>(kWidth * done_ / total_) : 0;
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = 0;
  int eta_s = static_cast<int>(eta + 0.5);
  std::fprintf(stderr, "\r%s [%s] %lld/%lld  %.1f %s  ETA %d:%02d %s  ", label_.c_str(), bar,
               static_cast<long long>(done_), static_cast<long long>(total_), rate, unit_.c_str(),
               eta_s / 60, eta_s % 60, detail_.c_str());
  std::fflush(stderr);
}

}  // namespace vitq
