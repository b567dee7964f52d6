// Shared by the whole-model quantization pipelines (search stage): the capture observer that
// copies quantization sites of each calibration batch into per-image buffers, the plan's
// provenance, and the module a layer belongs to (mixed precision assigns bits per module).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vitq/engine.h"
#include "vitq/quantize.h"

namespace vitq::search {

using Clock = std::chrono::steady_clock;
inline double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Copies the wanted sites of each forward batch into [images, ...] buffers; forwards every site
// to `next` first (e.g. a fake-quantizing observer), so captures see what `next` made of them.
class CaptureObserver : public Observer {
 public:
  explicit CaptureObserver(Observer* next = nullptr) : next_(next) {}
  void Add(const std::string& site, std::vector<float>* dest) { dest_[site] = dest; }
  void SetBatch(int first_image, int images) {
    first_ = first_image;
    count_ = images;
  }
  void SetTotal(int total) { total_ = total; }
  bool Wants(const Site& s) const override {
    return dest_.count(s.Name()) > 0 || (next_ != nullptr && next_->Wants(s));
  }
  void Observe(const Site& s, TensorView t) override {
    if (next_ != nullptr && next_->Wants(s)) next_->Observe(s, t);
    auto it = dest_.find(s.Name());
    if (it == dest_.end()) return;
    const int64_t per_image = t.size() / count_;
    std::vector<float>* d = it->second;
    if (d->size() < static_cast<size_t>(per_image) * total_)
      d->resize(static_cast<size_t>(per_image) * total_);
    std::memcpy(d->data() + static_cast<int64_t>(first_) * per_image, t.data,
                t.size() * sizeof(float));
  }

 private:
  Observer* next_;
  std::map<std::string, std::vector<float>*> dest_;
  int first_ = 0, count_ = 1, total_ = 1;
};

// Runs `stage(first_image, images)` over `total` calibration images in batches of `batch`,
// telling `cap` where each batch goes; adds the elapsed time to *seconds (capture time).
inline void ForBatches(CaptureObserver* cap, int total, int batch, double* seconds,
                       const std::function<void(int, int)>& stage) {
  const auto t0 = Clock::now();
  cap->SetTotal(total);
  for (int b = 0; b < total; b += batch) {
    const int nb = std::min(batch, total - b);
    cap->SetBatch(b, nb);
    stage(b, nb);
  }
  *seconds += Since(t0);
}

// "blocks.3.attn.qkv" -> "blocks.3.attn", "blocks.3.mlp.fc1" -> "blocks.3.mlp",
// "patch_embed.proj" -> "patch_embed", "head" -> "head".
std::string ModuleOf(const std::string& layer);

// A plan with the provenance of this run (method, options, calibration set, tool version).
QuantPlan NewPlan(const ViTModel& model, const CalibrationSet& calib, const QuantizeOptions& opts);

// In an MPI job: runs `work` on rank 0 alone (as a 1-process job) while the others wait, then
// gives every process rank 0's plan (or its error). In a 1-process job: work().
Result<QuantPlan> OnRootAlone(const std::function<Result<QuantPlan>()>& work);

// The `vitq` method's whole-model pipeline (method_vitq.cc).
Result<QuantPlan> QuantizeVitq(const ViTModel& model, const CalibrationSet& calib,
                               const QuantizeOptions& opts, QuantizeReport* report);

}  // namespace vitq::search
