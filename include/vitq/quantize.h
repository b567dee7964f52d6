// Post-training quantization of a ViT: calibration, per-operation scale search by a named method,
// bias correction, and the resulting QuantPlan with a per-site report (search stage).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vitq/dataset.h"
#include "vitq/dist.h"
#include "vitq/model.h"
#include "vitq/plan.h"
#include "vitq/status.h"

namespace vitq {

// The methods: minmax, percentile, omse, easyquant, liu2021 (method.md §1-2), and vitq, this
// project's low-bit method (docs/METHOD.md).
const std::vector<std::string>& MethodNames();

struct QuantizeOptions {
  std::string method = "vitq";  // docs/METHOD.md: why it is the default
  int wbits = 8, abits = 8;
  int calib_size = 100;
  uint64_t seed = 0;
  bool sequential = false;      // layer inputs from the quantized prefix (default: float model)
  bool ranking = true;          // liu2021: ranking loss on Q·Kᵀ
  bool bias_correction = true;  // liu2021: bias correction
  int candidates = 100;         // grid points per search step
  // Coarse-to-fine search grid (an option, method.md §1.5): every s-th grid point
  // (s = ceil(sqrt(candidates))), then the points within s - 1 of the best of those and of the
  // best one farther than s from it: at most 47 evaluations per step instead of 100.
  bool coarse_to_fine = false;
  int CoarseStep() const;  // 0 for the full grid
  int max_rounds = 20;
  // vitq method components (each switchable for ablation; ignored by the other methods, and the
  // CLI refuses them there).
  bool per_channel_weights = true;  // one scale per output channel, searched per channel
  bool ln_reparam = true;           // per-channel LayerNorm outputs folded into one interval
  bool gptq = true;                 // error-compensated weight rounding (else round to nearest)
  bool asymmetric = true;           // zero-point / unsigned activation grids below 8 bits
  // Grid of the attention probabilities P: "auto" (log-sqrt2-row below 8 bits, uniform-row at 8;
  // uniform with asymmetric off), "uniform" (one searched grid for the tensor), "uniform-row"
  // (each query's row on the grid 0 .. its maximum), "log-sqrt2" (one grid for the tensor, top
  // level P = 1) or "log-sqrt2-row" (the grid relative to each row's maximum).
  std::string attn_quantizer = "auto";
  // Grid of fc2's input (post-GELU): "auto" (token below 8 bits, with or without --reconstruct;
  // tensor at 8 bits, where W8A8 keeps its speed), "tensor" (one
  // grid searched for the tensor) or "token" (kUniformRow: each token's row on its own grid,
  // fixed at run time from the row; its few large post-GELU values no longer set every token's
  // step).
  std::string fc2_input = "auto";
  // Bits of the patch embedding's input, the image (0: abits). Pixels are 8-bit data, and at 4
  // bits a 16-level image costs DeiT-Tiny W4A4 about 2 points (docs/METHOD.md), so the image
  // keeps 8 bits below 8-bit activations, as RepQ-ViT's official code does.
  int image_bits = 8;
  int batch = 25;  // images per forward pass during calibration
  // Block reconstruction after vitq's closed-form plan (docs/METHOD.md "Reconstruction"): per
  // block, AdaRound weight rounding and LSQ activation steps learned by Adam on the calibration
  // images, inputs mixed with the float model's (QDrop). vitq only.
  bool reconstruct = false;
  int recon_iters = 300;             // optimizer steps per block
  int recon_batch = 8;               // images per step
  double recon_drop = 0.5;           // QDrop probability, in [0, 1]
  bool recon_steps = true;           // learn the activation steps (else only the rounding)
  double recon_round_weight = 0.01;  // AdaRound regularizer weight
  double recon_lr = 0.1;             // Adam step of the rounding variables
  double recon_step_lr = 0.01;       // Adam step of the activation steps (relative to their start)
  int recon_augment = 0;             // extra randomly cropped / flipped copies per image
  // Reconstruction checkpoint: after every block the plan so far is written here (atomically);
  // with resume, a checkpoint of the same options and calibration images is continued (finished
  // blocks are taken from it, the result is the same as an uninterrupted run). Removed by the
  // caller once the output is written. Empty: no checkpoint.
  std::string checkpoint_path;
  bool resume = false;
  int recon_stop_after = -1;  // testing: stop after this many blocks, as an interruption would
  bool quiet = false;
  // Per-module bit-widths (mixed precision): module name ("blocks.3.attn", "blocks.3.mlp") ->
  // bits for its weights and inputs. Modules not listed use wbits/abits.
  std::vector<std::pair<std::string, int>> module_bits;
  Status Validate() const;
};

// One row of the report: one quantized operation.
struct OpReport {
  std::string layer;  // "blocks.0.attn.qkv", "blocks.0.attn.qk"
  int bits_w = 0, bits_x = 0;
  float scale_w = 0, scale_x = 0;
  double similarity_before = 0, similarity_after = 0;  // Pearson (cosine for easyquant)
  double ranking_before = 0, ranking_after = 0;
  double sqnr_db = 0, bias_shift = 0;
  int rounds = 0, evaluations = 0;
  double seconds = 0;
};

// One reconstructed block: its loss (mean over tokens of the squared output error against the
// float block, on the calibration inputs from the quantized prefix) before and after.
struct ReconReport {
  std::string block;
  double loss_init = 0;     // the closed-form plan's
  double loss_learned = 0;  // the reconstruction's (hard rounding, learned steps)
  double loss_final = 0;    // the kept one's: the lower of the two
  bool kept_init = false;   // reconstruction did not lower the loss: the closed form was kept
  double seconds = 0;
};

struct QuantizeReport {
  std::vector<OpReport> ops;
  std::vector<ReconReport> reconstruction;
  double load_seconds = 0, capture_seconds = 0, search_seconds = 0, total_seconds = 0;
  int calib_images = 0;
  std::string calib_hash;
  std::string ToJson() const;
};

// The calibration images: `count` drawn from `dir` by `seed`, preprocessed like evaluation.
struct CalibrationSet {
  std::vector<DatasetItem> items;  // the whole set, in order
  std::vector<float> images;       // [held, 3, H, W]: items[first, first + held)
  int first = 0;
  std::string dir, hash;
};
// Draws `count` images from `dir` (seeded) and decodes them. With `shard` in an MPI job each
// process decodes only its block of them (dist::MyShard), for a method that runs distributed
// (QuantizeRunsDistributed); otherwise all. Every process returns the same error, if any.
Result<CalibrationSet> LoadCalibrationSet(const ModelSpec& spec, const std::string& dir, int count,
                                          uint64_t seed, bool quiet, bool shard = false);

// True when the method's statistics are reduced per image in a fixed order, so that in an MPI
// job (vitq/dist.h) the processes split the calibration images and the plan is byte for byte
// a 1-process run's (liu2021, easyquant, minmax). The other methods, and mixed precision, run on
// rank 0 alone while the other processes wait; every process receives the plan.
bool QuantizeRunsDistributed(const QuantizeOptions& options);

// MPI: a plan (its JSON and the float tensors it replaced, which the JSON does not hold) and a
// search report as bytes for dist::AllGather, so a plan made on one process reaches the others.
void PutPlan(dist::Writer* w, const QuantPlan& plan);
// `what` names the plan's origin in an error (e.g. "the plan of rank 1").
Result<QuantPlan> GetPlan(dist::Reader* r, const std::string& what);
void PutReport(dist::Writer* w, const QuantizeReport& report);
QuantizeReport GetReport(dist::Reader* r);

// With --reconstruct and augmentation: refuses (usage error naming --recon-augment) when the
// buffers for calib_images · (1 + augment) images would exceed 80 % of the available memory.
Status CheckReconstructMemory(const ViTConfig& config, const QuantizeOptions& options,
                              int calib_images);

// Runs the method over the calibration set and returns the plan (with provenance) and report.
Result<QuantPlan> QuantizeModel(const ViTModel& model, const CalibrationSet& calib,
                                const QuantizeOptions& options, QuantizeReport* report);

}  // namespace vitq
