// Dataset evaluation loop and steady-state benchmark (graph stage).
#include "vitq/evaluate.h"
#include "vitq/quant.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "vitq/dist.h"
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

namespace {

// One rank's part of an evaluation: its images' records in order, or the error that stopped it.
struct Part {
  Status status;
  int64_t skipped = 0;
  double seconds = 0;
  std::vector<std::string> files, warnings;
  std::vector<int> labels, top5;  // top5: 5 per image (fewer classes: padded with -1)
  std::vector<double> agree, kl, signal, noise;  // per image, with reference logits
};

void Put(dist::Writer* w, const Part& p) {
  dist::PutStatus(w, p.status);
  w->Pod(p.skipped);
  w->Pod(p.seconds);
  w->Pod<uint64_t>(p.files.size());
  for (const auto& f : p.files) w->Str(f);
  w->Pod<uint64_t>(p.warnings.size());
  for (const auto& f : p.warnings) w->Str(f);
  w->Vec(p.labels);
  w->Vec(p.top5);
  w->Vec(p.agree);
  w->Vec(p.kl);
  w->Vec(p.signal);
  w->Vec(p.noise);
}

Part Get(dist::Reader* r) {
  Part p;
  p.status = dist::GetStatus(r);
  p.skipped = r->Pod<int64_t>();
  p.seconds = r->Pod<double>();
  p.files.resize(r->Count(sizeof(uint64_t)));
  for (auto& f : p.files) f = r->Str();
  p.warnings.resize(r->Count(sizeof(uint64_t)));
  for (auto& f : p.warnings) f = r->Str();
  p.labels = r->Vec<int>();
  p.top5 = r->Vec<int>();
  p.agree = r->Vec<double>();
  p.kl = r->Vec<double>();
  p.signal = r->Vec<double>();
  p.noise = r->Vec<double>();
  return p;
}

// Top-1 agreement, KL(p || q) in nats and the two energies of the SQNR for one image's logits.
void CompareLogits(const float* p, const float* q, int nc, Part* part) {
  part->agree.push_back(TopK(p, nc, 1)[0] == TopK(q, nc, 1)[0] ? 1.0 : 0.0);
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
  double lzp = std::log(zp), lzq = std::log(zq), sum = 0, sig = 0, noise = 0;
  for (int j = 0; j < nc; ++j) {
    double lp = p[j] - mp - lzp, lq = q[j] - mq - lzq;
    sum += std::exp(lp) * (lp - lq);
    sig += static_cast<double>(p[j]) * p[j];
    double d = static_cast<double>(p[j]) - q[j];
    noise += d * d;
  }
  part->kl.push_back(sum);
  part->signal.push_back(sig);
  part->noise.push_back(noise);
}

}  // namespace

// In an MPI job each rank evaluates its contiguous block of the images (dist::MyShard); the
// per-image records are gathered and every figure is reduced over images in their order, so
// the result equals a 1-process run's (EvalResult::logits and reference_logits: this rank's
// images only).
Result<EvalResult> EvaluateDataset(const ForwardFn& forward, const ModelSpec& spec,
                                   const Dataset& dataset, const EvalOptions& options) {
  const ViTConfig& c = spec.config;
  std::vector<DatasetItem> items = dataset.items;
  if (options.limit > 0 && static_cast<size_t>(options.limit) < items.size())
    items.resize(options.limit);
  for (const auto& it : items) {
    if (it.label >= c.num_classes) {
      return dist::Agree(Status::InvalidInput("dataset '" + dataset.root + "': class folder '" +
                                  dataset.class_folders[it.label] + "' has label " +
                                  std::to_string(it.label) + " but the model has " +
                                  std::to_string(c.num_classes) + " classes"));
    }
  }
  const dist::Range shard = dist::MyShard(static_cast<int64_t>(items.size()));
  const int batch = std::max(1, options.batch);
  const PreprocessConfig& pre = spec.preprocess;
  const size_t per_image = static_cast<size_t>(3) * pre.crop_height * pre.crop_width;
  const int nc = c.num_classes;
  std::vector<float> inputs(per_image * batch), logits(static_cast<size_t>(batch) * nc);
  EvalResult r;
  Part part;
  const std::vector<float>* ref = options.reference_logits;
  // Rank 0 shows the whole job: its own share, scaled to the job's image count.
  ProgressBar bar(options.label, static_cast<int64_t>(items.size()), "img/s", options.quiet);
  int64_t shown = 0, done = 0;
  auto start = std::chrono::steady_clock::now();
  std::vector<char> ok;
  std::vector<std::string> errors;
  for (int64_t begin = shard.begin; begin < shard.end && part.status.ok(); begin += batch) {
    int count = static_cast<int>(std::min<int64_t>(batch, shard.end - begin));
    LoadBatch(items, begin, count, pre, inputs.data(), &ok, &errors);
    // Compact the good images to the front of the batch.
    int good = 0;
    std::vector<int> good_index;
    for (int i = 0; i < count; ++i) {
      if (!ok[i]) {
        if (!options.skip_bad_images) {
          part.status = Status::InvalidInput(errors[i] +
                                             " (use --skip-bad-images to skip unreadable files)");
          break;
        }
        part.warnings.push_back(errors[i]);
        ++part.skipped;
        continue;
      }
      if (good != i) {
        std::copy(inputs.begin() + per_image * i, inputs.begin() + per_image * (i + 1),
                  inputs.begin() + per_image * good);
      }
      good_index.push_back(i);
      ++good;
    }
    if (!part.status.ok()) break;
    if (good > 0) forward(inputs.data(), good, logits.data());
    for (int gi = 0; gi < good; ++gi) {
      const DatasetItem& item = items[begin + good_index[gi]];
      const float* l = &logits[static_cast<size_t>(gi) * nc];
      std::vector<int> top = TopK(l, nc, 5);
      if (ref != nullptr) {
        const size_t at = part.files.size();
        if ((at + 1) * nc > ref->size()) {
          part.status = Status::Internal("reference logits cover " +
                                         std::to_string(ref->size() / nc) +
                                         " images, fewer than evaluated");
          break;
        }
        CompareLogits(ref->data() + at * nc, l, nc, &part);
      }
      if (options.keep_logits) r.logits.insert(r.logits.end(), l, l + nc);
      part.files.push_back(item.relative);
      part.labels.push_back(item.label);
      for (int k = 0; k < 5; ++k) part.top5.push_back(k < static_cast<int>(top.size()) ? top[k] : -1);
    }
    done += count;
    const int64_t target = shard.size() > 0 ? done * static_cast<int64_t>(items.size()) / shard.size() : 0;
    bar.Add(target - shown);
    shown = target;
  }
  part.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (part.status.ok() && ref != nullptr && ref->size() != part.files.size() * nc) {
    part.status = Status::Internal("reference logits cover " + std::to_string(ref->size() / nc) +
                                   " images, evaluated " + std::to_string(part.files.size()));
  }
  std::vector<Part> parts;
  if (dist::Size() == 1) {
    parts.push_back(std::move(part));
  } else {
    dist::Writer w;
    Put(&w, part);
    for (const std::string& bytes : dist::AllGather(w.bytes())) {
      dist::Reader rd(bytes);
      parts.push_back(Get(&rd));
    }
  }
  bar.Finish();
  for (const Part& p : parts) {
    if (!p.status.ok()) return dist::Agree(p.status);  // the first failing image in order
  }
  int64_t correct1 = 0, correct5 = 0;
  double agree = 0, kl = 0, sig = 0, noise = 0;
  for (Part& p : parts) {
    for (size_t i = 0; i < p.files.size(); ++i) {
      const int* top = &p.top5[5 * i];
      correct1 += top[0] == p.labels[i];
      correct5 += std::find(top, top + 5, p.labels[i]) != top + 5;
      std::vector<int> t;
      for (int k = 0; k < 5 && top[k] >= 0; ++k) t.push_back(top[k]);
      r.top5_classes.push_back(std::move(t));
      if (ref != nullptr) {
        agree += p.agree[i];
        kl += p.kl[i];
        sig += p.signal[i];
        noise += p.noise[i];
      }
    }
    r.files.insert(r.files.end(), p.files.begin(), p.files.end());
    r.labels.insert(r.labels.end(), p.labels.begin(), p.labels.end());
    r.warnings.insert(r.warnings.end(), p.warnings.begin(), p.warnings.end());
    r.skipped += p.skipped;
    r.seconds = std::max(r.seconds, p.seconds);
  }
  r.images = static_cast<int64_t>(r.files.size());
  if (r.images == 0) {
    return dist::Agree(Status::InvalidInput("dataset '" + dataset.root +
                                            "': no readable images (" +
                                            std::to_string(r.skipped) + " skipped)"));
  }
  if (ref != nullptr) {
    r.agreement = agree / r.images;
    r.kl = kl / r.images;
    r.sqnr_db = noise > 0 ? 10.0 * std::log10(sig / noise) : 200.0;
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
