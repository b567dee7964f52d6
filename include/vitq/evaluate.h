// Dataset evaluation and steady-state speed measurement of a float engine (graph stage).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vitq/dataset.h"
#include "vitq/engine.h"
#include "vitq/status.h"

namespace vitq {

struct EvalOptions {
  int limit = 0;  // 0: all images
  int batch = 32;
  bool skip_bad_images = false;  // else the first unreadable image is an error
  bool quiet = false;            // no progress bar
  bool keep_logits = false;      // return every evaluated image's logits (MPI: this rank's)
  // Logits of a reference model on the same images in the same order (e.g. the float model's
  // EvalResult::logits): adds top-1 agreement and mean KL(reference || evaluated). In an MPI
  // job both cover this rank's images only (the same options give every rank the same shard).
  const std::vector<float>* reference_logits = nullptr;
  std::string label = "eval";  // progress bar label
};

struct EvalResult {
  int64_t images = 0;         // evaluated
  int64_t skipped = 0;        // unreadable, skipped with skip_bad_images
  double top1 = 0, top5 = 0;  // fractions 0..1
  double seconds = 0, images_per_second = 0;
  std::vector<std::string> files;  // relative paths of the evaluated images
  std::vector<int> labels;
  std::vector<std::vector<int>> top5_classes;  // per evaluated image, best first
  std::vector<std::string> warnings;           // one per skipped image
  std::vector<float> logits;                   // [images, classes] when keep_logits
  double agreement = -1, kl = -1;              // with reference_logits: fraction, nats
  double sqnr_db = 0;                          // with reference_logits: logits SQNR
};

// A forward function: images [batch, 3, H, W] -> logits [batch, classes].
using ForwardFn = std::function<void(const float* images, int batch, float* logits)>;

// Decodes, preprocesses and classifies the dataset in batches (decoding in parallel), timing the
// whole loop. In an MPI job (vitq/dist.h) each rank takes its block of the images and every rank
// returns the whole job's figures, equal to a 1-process run's; seconds: the slowest rank's. Errors: a label outside the model's classes, an unreadable image (unless skipped).
Result<EvalResult> EvaluateDataset(const ForwardFn& forward, const ModelSpec& spec,
                                   const Dataset& dataset, const EvalOptions& options);

struct BenchResult {
  int batch = 0, threads = 0, reps = 0;
  double images_per_second = 0, ms_per_image = 0, median_ms_per_call = 0;
  // Images over the whole timed span (every call, stalls included): the figure to compare
  // under CPU contention, where the median call hides the slow ones.
  double mean_images_per_second = 0;
};

// Times forward() on a fixed random input: warm-up (>= 1 call and >= warmup_seconds) excluded,
// then calls until >= min_seconds and >= min_reps; reports the median call and the mean rate.
BenchResult BenchmarkForward(const ForwardFn& forward, const ModelSpec& spec, int batch,
                             int threads, double warmup_seconds, double min_seconds, int min_reps);

// Indices of the k largest values, best first (ties: lower index first).
std::vector<int> TopK(const float* values, int n, int k);

}  // namespace vitq
