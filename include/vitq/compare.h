// The method × bit-width comparison grid behind `vitq compare` (runtime stage): parse a grid,
// quantize every cell, evaluate each on the integer engine (or fake-quant where the engine cannot
// run the plan), and return one row per cell beside the float model's.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vitq/dataset.h"
#include "vitq/evaluate.h"
#include "vitq/mixed_precision.h"
#include "vitq/model.h"
#include "vitq/quantize.h"
#include "vitq/status.h"

namespace vitq {

// One cell: a method (with variants) at one bit-width, uniform or mixed precision.
struct CompareCell {
  std::string label;   // as written in the grid, e.g. "liu2021+no-ranking"
  QuantizeOptions q;   // method, wbits = abits, variants applied
  bool mixed = false;  // "6mp": mixed precision at the size of the uniform 6-bit model
  OmegaCriterion omega = OmegaCriterion::kPaper;
  // "8", "6mp", "6mp-sf"
  std::string BitsLabel() const;
};

// The grid of `methods` (comma list; a method may carry +no-ranking, +no-bias-correction,
// +sequential, +coarse, and for vitq +no-per-channel, +no-reparam, +no-gptq, +no-asym,
// +uniform-attn, +image-abits) × `bits` (comma list: 8, 6, ..., or 6mp) × for mixed cells
// `omegas` (comma list: paper, scale-free), every cell's options validated; uniform cells first
// (mixed cells reuse their plans). `base` supplies the calibration size, seed and quietness.
// Errors name the entry.
Result<std::vector<CompareCell>> ParseCompareGrid(const std::string& methods,
                                                  const std::string& bits,
                                                  const std::string& omegas,
                                                  const QuantizeOptions& base);

struct CompareRow {
  std::string method;  // the cell's label, or "fp32"
  std::string bits;    // BitsLabel(), or "32"
  double top1 = 0, top5 = 0, agreement = 1, kl = 0, size_mb = 0, calib_seconds = 0;
  std::string path = "float";  // "int8" (the integer engine) or "fake-quant"
};

struct CompareOptions {
  EvalOptions eval;  // limit, batch, quiet (keep_logits and reference_logits are set here)
  // Called after each cell (progress lines of the CLI); may be empty.
  std::function<void(const CompareRow&)> on_row;
};

struct CompareResult {
  int64_t images = 0;            // evaluated per row
  std::vector<CompareRow> rows;  // the float model first, then the cells in grid order
  // The per-site report of every uniform search (each method label, each bit-width searched,
  // mixed-precision candidates included), for --report-dir.
  std::map<std::string, PlanCache> searches;
};

// Quantizes and evaluates every cell. Each plan is written to a private temporary .vitq and read
// back, so a row measures exactly what `vitq quantize` writes and the integer engine runs.
Result<CompareResult> RunCompare(const ViTModel& model, const CalibrationSet& calib,
                                 const Dataset& data, const std::vector<CompareCell>& grid,
                                 const CompareOptions& options);

}  // namespace vitq
