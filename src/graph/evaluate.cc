// Dataset evaluation loop and steady-state benchmark (graph stage).
#include "vitq/evaluate.h"
#include "vitq/quant.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "vitq/progress.h"

namespace vitq {

std::vector<int> TopK(const float* values, int n, int k) {
  k = std::min(k, n);
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  idx.resize(k);
  return idx;
}

Result<EvalResult> EvaluateDataset(const ForwardFn& forward, const ModelSpec& spec,
                                   const Dataset& dataset, const EvalOptions& options) {
  const ViTConfig& c = spec.config;
  std::vector<DatasetItem> items = dataset.items;
  if (options.limit > 0 && static_cast<size_t>(options.limit) < items.size())
    items.resize(options.limit);
  for (const auto& it : items) {
    if (it.label >= c.num_classes) {
      return Status::InvalidInput("dataset '" + dataset.root + "': class folder '" +
                                  dataset.class_folders[it.label] + "' has label " +
                                  std::to_string(it.label) + " but the model has " +
                                  std::to_string(c.num_classes) + " classes");
    }
  }
  const int batch = std::max(1, options.batch);
  const PreprocessConfig& pre = spec.preprocess;
  const size_t per_image = static_cast<size_t>(3) * pre.crop_height * pre.crop_width;
  std::vector<float> inputs(per_image * batch), logits(static_cast<size_t>(batch) * c.num_classes);
  EvalResult r;
  int64_t correct1 = 0, correct5 = 0;
  ProgressBar bar(options.label, static_cast<int64_t>(items.size()), "img/s", options.quiet);
  auto start = std::chrono::steady_clock::now();
  std::vector<char> ok;
  std::vector<std::string> errors;
  for (size_t begin = 0; begin < items.size(); begin += batch) {
    int count = static_cast<int>(std::min<size_t>(batch, items.size() - begin));
    LoadBatch(items, begin, count, pre, inputs.data(), &ok, &errors);
    // Compact the good images to the front of the batch.
    int good = 0;
    std::vector<int> good_index;
    for (int i = 0; i < count; ++i) {
      if (!ok[i]) {
        if (!options.skip_bad_images) {
          return Status::InvalidInput(errors[i] +
                                      " (use --skip-bad-images to skip unreadable files)");
        }
        r.warnings.push_back(errors[i]);
        ++r.skipped;
        continue;
      }
      if (good != i) {
        std::copy(inputs.begin() + per_image * i, inputs.begin() + per_image * (i + 1),
                  inputs.begin() + per_image * good);
      }
      good_index.push_back(i);
      ++good;
    }
    if (good > 0) forward(inputs.data(), good, logits.data());
    for (int gi = 0; gi < good; ++gi) {
      const DatasetItem& item = items[begin + good_index[gi]];
      std::vector<int> top =
          TopK(&logits[static_cast<size_t>(gi) * c.num_classes], c.num_classes, 5);
      correct1 += top[0] == item.label;
      correct5 += std::find(top.begin(), top.end(), item.label) != top.end();
      if (options.keep_logits || options.reference_logits != nullptr) {
        r.logits.insert(r.logits.end(), logits.begin() + static_cast<size_t>(gi) * c.num_classes,
                        logits.begin() + static_cast<size_t>(gi + 1) * c.num_classes);
      }
      r.files.push_back(item.relative);
      r.labels.push_back(item.label);
      r.top5_classes.push_back(std::move(top));
    }
    bar.Add(count);
  }
  bar.Finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.images = static_cast<int64_t>(r.files.size());
  if (r.images == 0) {
    return Status::InvalidInput("dataset '" + dataset.root + "': no readable images (" +
                                std::to_string(r.skipped) + " skipped)");
  }
  if (options.reference_logits != nullptr) {
    const auto& ref = *options.reference_logits;
    if (ref.size() != r.logits.size()) {
      return Status::Internal("reference logits cover " +
                              std::to_string(ref.size() / c.num_classes) + " images, evaluated " +
                              std::to_string(r.images));
    }
    int64_t agree = 0;
    double kl = 0;
    const int nc = c.num_classes;
    for (int64_t i = 0; i < r.images; ++i) {
      const float* p = ref.data() + i * nc;
      const float* q = r.logits.data() + i * nc;
      agree += TopK(p, nc, 1)[0] == TopK(q, nc, 1)[0];
      double mp = p[0], mq = q[0];
      for (int j = 1; j < nc; ++j) {
        mp = std::max(mp, static_cast<double>(p[j]));
        mq = std::max(mq, static_cast<double>(q[j]));
      }
      double zp = 0, zq = 0;
      for (int j = 0; j < nc; ++j) {
        zp += std::exp(p[j] - mp);
        zq += std::exp(q[j] - mq);
      }
      double lzp = std::log(zp), lzq = std::log(zq), sum = 0;
      for (int j = 0; j < nc; ++j) {
        double lp = p[j] - mp - lzp, lq = q[j] - mq - lzq;
        sum += std::exp(lp) * (lp - lq);
      }
      kl += sum;
    }
    r.agreement = static_cast<double>(agree) / r.images;
    r.kl = kl / r.images;
    r.sqnr_db = Sqnr(ref.data(), r.logits.data(), static_cast<int64_t>(ref.size()));
    if (!options.keep_logits) r.logits.clear();
  }
  r.top1 = static_cast<double>(correct1) / r.images;
  r.top5 = static_cast<double>(correct5) / r.images;
  r.images_per_second = r.images / r.seconds;
  return r;
}

BenchResult BenchmarkForward(const ForwardFn& forward, const ModelSpec& spec, int batch,
                             int threads, double warmup_seconds, double min_seconds, int min_reps) {
  const ViTConfig& c = spec.config;
  std::vector<float> input(static_cast<size_t>(batch) * c.in_chans * c.img_size * c.img_size);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (auto& v : input) v = normal(rng);
  std::vector<float> logits(static_cast<size_t>(batch) * c.num_classes);
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  int warm = 0;
  while (warm < 1 || std::chrono::duration<double>(clock::now() - t0).count() < warmup_seconds) {
    forward(input.data(), batch, logits.data());
    ++warm;
  }
  std::vector<double> times;
  auto start = clock::now();
  while (static_cast<int>(times.size()) < min_reps ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    auto a = clock::now();
    forward(input.data(), batch, logits.data());
    times.push_back(std::chrono::duration<double, std::milli>(clock::now() - a).count());
  }
  const double total_s = std::chrono::duration<double>(clock::now() - start).count();
  std::sort(times.begin(), times.end());
  size_t n = times.size();
  double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  BenchResult r;
  r.batch = batch;
  r.threads = threads;
  r.reps = static_cast<int>(n);
  r.median_ms_per_call = median;
  r.ms_per_image = median / batch;
  r.images_per_second = 1000.0 * batch / median;
  r.mean_images_per_second = static_cast<double>(batch) * static_cast<double>(n) / total_s;
  return r;
}

}  // namespace vitq
