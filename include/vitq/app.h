// What the front ends share (app stage): the `vitq` CLI and the Python module `vitq` open models,
// check output paths, describe models, evaluate and quantize through these functions, so both
// give the same results and the same error messages. Front ends add only their own parsing and
// printing.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vitq/compare.h"
#include "vitq/engine.h"
#include "vitq/evaluate.h"
#include "vitq/mixed_precision.h"
#include "vitq/qfile.h"
#include "vitq/quantize.h"
#include "vitq/runtime.h"
#include "vitq/simulate.h"
#include "vitq/status.h"
#include "vitq/threads.h"

namespace vitq {

// Sets the OpenMP thread count (threads <= 0: the user's OMP_NUM_THREADS, else the CPUs this
// process may use, UsableCpuCount); returns the count used.
int ApplyThreads(int threads);

// j as text (indent -1: one line); invalid UTF-8 in strings (file and class names are bytes)
// replaced by U+FFFD, so the result is always valid JSON and this never throws.
std::string DumpJson(const nlohmann::ordered_json& j, int indent = 2);

// ---- Opening a model to run ----

// How a .vitq file runs (float checkpoints ignore it):
//   kInteger    the integer engine (engine "int8");
//   kSimulate   its float simulation, bit-identical to it (engine "simulated"); plans the integer
//               engine cannot run (asymmetric, unsigned, per-channel activations) fall back to
//               the fake-quant path;
//   kFakeQuant  the fake-quant path the quantization methods evaluate plans with: the float
//               engine over dequantized weights with activations quantized-dequantized in place
//               (engine "fake-quant"). Same grids, float rounding of its own: not bit-identical.
enum class QuantPath { kInteger, kSimulate, kFakeQuant };

// A model ready to run: the float engine, or for a .vitq file the integer engine (default) or
// the simulated (fake-quant) path.
struct Runnable {
  ModelSpec spec;
  std::string engine;  // "fp32", "int8", "simulated" or "fake-quant"
  int64_t size_bytes = 0;
  int float_sites = 0;  // activation sites the fake-quant path leaves float (--keep-float)
  ForwardFn forward;    // not thread-safe: one call at a time
  // The thread chooser `forward` consults (null when its thread count is fixed).
  std::shared_ptr<const AdaptiveThreads> adaptive;
  // Owners of what `forward` uses.
  std::unique_ptr<ViTModel> model;
  std::unique_ptr<Engine> float_engine;
  std::unique_ptr<QuantizedModel> quantized;
  std::unique_ptr<IntegerEngine> integer;
  std::unique_ptr<SimulatedModel> simulated;
};

// The model at `path` (a model directory, a .safetensors file or a .vitq file); its `forward`
// adapts its thread count call by call (AdaptiveThreads in vitq/threads.h: the current OpenMP
// maximum, or one thread when that is faster under CPU contention; VITQ_ADAPTIVE_THREADS=0 turns
// it off). `keep_float`: activation sites the fake-quant path leaves float (KeepActivationsFloat
// in vitq/simulate.h); only for a .vitq file on QuantPath::kFakeQuant, else a usage error.
Result<std::unique_ptr<Runnable>> OpenRunnable(const std::string& path,
                                               QuantPath qpath = QuantPath::kInteger,
                                               const std::vector<std::string>& keep_float = {});
// The same, always on the current OpenMP maximum.
Result<std::unique_ptr<Runnable>> OpenRunnableFixed(
    const std::string& path, QuantPath qpath = QuantPath::kInteger,
    const std::vector<std::string>& keep_float = {});

// ---- Output paths, checked before any work starts ----

struct OutputPath {
  std::string option;  // names the path in messages, e.g. "--out"
  std::string path;
};

// The files a MODEL argument reads: for a directory its config.json, model.safetensors,
// preprocessor_config.json and classes.txt; for a file, the file and those beside it.
std::vector<std::string> ModelInputFiles(const std::string& model);

// Checks every output against `inputs` (the same file by inode), against the other outputs (the
// same path), and on its own (parent directory exists; an existing path is a regular file).
// Errors (InvalidInput) name the option and both paths.
Status CheckOutputPaths(const std::vector<OutputPath>& outputs,
                        const std::vector<std::string>& inputs);

// ---- Figures as JSON (what `--json` prints) ----

// `vitq info`: the model description (architecture, preprocessing, class names), parameters,
// sizes and, for a .vitq file, the method, format, checksum time, whether the integer engine
// runs it, and the bits and bytes of every linear layer.
struct ModelInfo {
  ModelSpec spec;
  nlohmann::ordered_json json;  // what `vitq info --json` prints
};
Result<ModelInfo> DescribeModel(const std::string& path);

// `vitq eval`: the figures of one evaluation (top-1/top-5, counts, speed; with a reference the
// agreement, KL and logits SQNR).
// "processes" (the MPI job's size, 1 without mpirun) and in an MPI job "collectives" and
// "bytes_received": this process's count of collectives and the bytes they brought it.
void AddProcessFigures(nlohmann::ordered_json* j);
nlohmann::ordered_json EvalFigures(const EvalResult& result, const Runnable& model,
                                   const std::string& model_path, const std::string& data,
                                   const std::string& reference, int batch, int threads);

// ---- Quantization from a checkpoint to a written .vitq ----

struct QuantizeJob {
  std::string model, calib, out;
  std::string report;  // optional: the report as JSON (with mixed precision also the Pareto SVG)
  QuantizeOptions options;
  bool mixed = false;  // mixed precision (options.method must be a per-operation method)
  MixedPrecisionOptions mp;
  std::string omega;  // mixed precision's Ω criterion by name (ParseOmegaCriterion); "" = default
  std::string command;  // how the job was started (the command line), for the report's "run"
};

struct QuantizeOutcome {
  QuantizeReport report;
  MixedPrecisionReport mixed;  // with job.mixed
  // The report as written to job.report: "run" (how it was made: command, version, model,
  // calibration folder, method, bits, seed, date), the report's own keys, "mixed_precision".
  nlohmann::ordered_json json;
};

// The job's option consistency and every output path (not an input, not another output, not a
// device), before any work. Sets options.checkpoint_path for --reconstruct (OUT.ckpt).
Status CheckQuantizeJob(QuantizeJob* job);

// Checks the job, loads the model and the calibration images, quantizes, writes job.out
// atomically (and job.report), and removes a reconstruction checkpoint once the output exists.
// A failure leaves no output behind.
Result<QuantizeOutcome> RunQuantizeJob(QuantizeJob* job);

// ---- Reports as HTML ----

// One self-contained HTML page (inline SVG, no scripts, no network) for a report: a quantization
// report (an object with "ops": `vitq quantize --report`, QuantizeOutcome::json) or a compare
// result (an object with "rows": CompareFigures), titled with `title`. Errors (InvalidInput): not
// a report, or a key missing or of the wrong type (the caller adds the file's name).
Result<std::string> ReportHtml(const nlohmann::ordered_json& report, const std::string& title);

// `vitq compare --json`: the grid's rows and how the run was made.
nlohmann::ordered_json CompareFigures(const CompareResult& result, const std::string& model,
                                      const std::string& calib, const std::string& data,
                                      const QuantizeOptions& base, int threads,
                                      const std::string& command);

// What the "run" object of reports holds besides the caller's fields: vitq's version and the
// date (UTC).
nlohmann::ordered_json RunInfo(const std::string& command);

// Where the Pareto curve of a mixed-precision report is written: REPORT with .pareto.svg.
std::string ParetoSvgPath(const std::string& report);

// ---- ONNX export (`vitq export`) ----

struct ExportJob {
  std::string model;  // a .vitq file (format "onnx"), or any model path ("onnx-float")
  std::string out;
  std::string format = "onnx";  // "onnx" (Q/DQ) or "onnx-float"
  bool approximate = false;     // OnnxExportOptions::approximate
};
// Checks the output, loads the model, writes the ONNX file; returns what `vitq export --json`
// prints (model, out, format, opset, nodes, qdq_sites, int8_weights, clipped_sites,
// approximations, input, output, bytes). Errors name the model or the site.
Result<nlohmann::ordered_json> RunExportJob(const ExportJob& job);

}  // namespace vitq
