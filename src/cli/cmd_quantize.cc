// `vitq quantize MODEL --calib DIR --method NAME --wbits B --abits B --out FILE.vitq`: calibrate,
// search the quantization intervals and write the quantized model (cli).
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "output.h"
#include "vitq/mixed_precision.h"
#include "vitq/qfile.h"
#include "vitq/quantize.h"
#include "vitq/safetensors.h"

namespace vitq::cli {
namespace {
std::string ParetoSvgPath(const std::string& report) {
  return std::filesystem::path(report).replace_extension(".pareto.svg").string();
}
}  // namespace

void AddQuantizeOptions(CLI::App* cmd, QuantizeOptions* q) {
  cmd->add_option("--calib-size", q->calib_size,
                  "calibration images drawn from --calib (default 100)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--seed", q->seed, "seed of the calibration draw (default 0)");
  cmd->add_flag("--sequential", q->sequential,
                "feed each layer the outputs of the already quantized prefix");
  cmd->add_flag("!--no-ranking", q->ranking, "liu2021: no ranking loss (ablation)");
  cmd->add_flag("!--no-bias-correction", q->bias_correction,
                "liu2021: no bias correction (ablation)");
  cmd->add_option("--grid", q->candidates, "search grid points per step (default 100)")
      ->check(CLI::Range(1, 10000));
  cmd->add_flag(
      "--coarse-to-fine", q->coarse_to_fine,
      "search every sqrt(grid)-th interval, then the ones around the best two (at most 47 "
      "instead of 100 evaluations per step; checked against the full grid by "
      "bench/coarse_to_fine.sh)");
  cmd->add_option("--max-rounds", q->max_rounds, "alternating search rounds at most (default 20)")
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("!--no-per-channel", q->per_channel_weights,
                "vitq: one weight scale per tensor instead of per output channel (ablation)");
  cmd->add_flag("!--no-reparam", q->ln_reparam, "vitq: no LayerNorm reparameterization (ablation)");
  cmd->add_flag("!--no-gptq", q->gptq, "vitq: round weights to nearest instead of GPTQ (ablation)");
  cmd->add_option("--attn-quantizer", q->attn_quantizer,
                  "vitq: grid of the attention probabilities: auto (log-sqrt2 below 8 bits), "
                  "uniform, log-sqrt2");
  cmd->add_flag("!--no-asym", q->asymmetric,
                "vitq: symmetric signed activation grids at every bit-width (ablation)");
  cmd->add_flag("--reconstruct", q->reconstruct,
                "vitq: block reconstruction after the closed-form plan (AdaRound rounding, LSQ "
                "steps, QDrop; docs/METHOD.md)");
  cmd->add_option("--recon-iters", q->recon_iters,
                  "reconstruction: optimizer steps per block (default 300)");
  cmd->add_option("--recon-batch", q->recon_batch, "reconstruction: images per step (default 8)");
  cmd->add_option("--recon-drop", q->recon_drop,
                  "reconstruction: QDrop probability that an element keeps its float value "
                  "(default 0.5; 0 = no QDrop)");
  cmd->add_flag("!--recon-no-steps", q->recon_steps,
                "reconstruction: keep the closed-form activation steps (learn the rounding only)");
  cmd->add_option("--recon-round-weight", q->recon_round_weight,
                  "reconstruction: weight of AdaRound's rounding regularizer (default 0.01)");
  cmd->add_option("--recon-lr", q->recon_lr,
                  "reconstruction: Adam step of the rounding variables (default 0.1)");
  cmd->add_option("--recon-step-lr", q->recon_step_lr,
                  "reconstruction: Adam step of the activation steps, relative to their "
                  "closed-form value (default 0.01)");
  cmd->add_option("--recon-augment", q->recon_augment,
                  "reconstruction: extra copies of each calibration image, randomly cropped and "
                  "flipped (default 0)");
  cmd->add_flag("--resume", q->resume,
                "reconstruction: continue an interrupted run from OUT.ckpt (written after every "
                "block, removed when OUT is written)");
}

Status CheckMethodFlags(const CLI::App& cmd, const QuantizeOptions& q) {
  const bool vitq = q.method == "vitq";
  static const char* kRecon[] = {"--recon-iters",    "--recon-batch",        "--recon-drop",
                                 "--recon-no-steps", "--recon-round-weight", "--recon-lr",
                                 "--recon-step-lr",  "--recon-augment",      "--resume"};
  for (const char* flag : kRecon) {
    if (!q.reconstruct && cmd.count(flag) > 0)
      return Status::Usage(std::string(flag) + " configures --reconstruct, which is not given");
  }
  for (const char* flag : {"--no-per-channel", "--no-reparam", "--no-gptq", "--no-asym",
                           "--attn-quantizer", "--reconstruct"}) {
    if (!vitq && cmd.count(flag) > 0) {
      return Status::Usage(std::string(flag) + " applies to --method vitq only, not '" + q.method +
                           "'");
    }
  }
  if (vitq && cmd.get_option_no_throw("--mixed-precision") != nullptr &&
      cmd.count("--mixed-precision") > 0) {
    return Status::Usage(
        "--mixed-precision runs with the per-operation methods (liu2021 and the baselines); "
        "--method vitq does not support it yet");
  }
  for (const char* flag : {"--no-ranking", "--no-bias-correction", "--sequential", "--grid",
                           "--coarse-to-fine", "--max-rounds"}) {
    if (vitq && cmd.count(flag) > 0) {
      return Status::Usage(std::string(flag) + " configures the interval search of liu2021 and " +
                           "the baselines; --method vitq does not use it");
    }
  }
  return Status::Ok();
}

namespace {
struct QuantizeArgs {
  std::string model, calib, out, report;
  QuantizeOptions q;
  bool mixed = false;
  MixedPrecisionOptions mp;
  std::string omega;
  CommonOptions common;
};

// The options' consistency and every output path, before any work (the paths: not an input,
// not another output, not a device).
Status CheckQuantizeArgs(QuantizeArgs* args) {
  VITQ_RETURN_IF_ERROR(args->q.Validate());
  if (!args->omega.empty()) {
    if (!args->mixed) return Status::InvalidInput("--omega needs --mixed-precision");
    VITQ_ASSIGN_OR_RETURN(args->mp.omega, ParseOmegaCriterion(args->omega));
  }
  if (!args->mixed &&
      (args->mp.target_bits || args->mp.target_size_mb > 0 || !args->mp.candidates.empty())) {
    return Status::InvalidInput(
        "--target-bits, --target-size-mb and --candidates need --mixed-precision");
  }
  std::vector<OutputPath> outputs = {{"--out", args->out}, {"--report", args->report}};
  if (args->mixed && !args->report.empty()) {
    outputs.push_back({"--report (Pareto curve)", ParetoSvgPath(args->report)});
  }
  if (args->q.reconstruct) {
    args->q.checkpoint_path = args->out + ".ckpt";
    outputs.push_back({"--out (reconstruction checkpoint)", args->q.checkpoint_path});
  }
  return CheckOutputPaths(outputs, ModelInputFiles(args->model));
}

// --report (with mixed precision also the Pareto curve's SVG).
Status WriteReports(const QuantizeArgs& args, const nlohmann::ordered_json& rj,
                    const MixedPrecisionReport& mpr) {
  if (args.report.empty()) return Status::Ok();
  VITQ_RETURN_IF_ERROR(WriteFileAtomic(args.report, DumpJson(rj, 1) + "\n"));
  if (args.mixed)
    VITQ_RETURN_IF_ERROR(WriteFileAtomic(ParetoSvgPath(args.report), mpr.ParetoSvg()));
  return Status::Ok();
}

// The summary on stdout: what was quantized, the similarity, the times, the chosen bits.
void PrintSummary(const QuantizeArgs& args, const QuantizeReport& report,
                  const MixedPrecisionReport& mpr, int threads) {
  double mean_before = 0, mean_after = 0;
  for (const auto& o : report.ops) {
    mean_before += o.similarity_before;
    mean_after += o.similarity_after;
  }
  mean_before /= report.ops.size();
  mean_after /= report.ops.size();
  char what[96];
  if (args.mixed) {
    std::snprintf(what, sizeof what, "mixed precision (budget %s)",
                  args.mp.target_bits ? ("W" + std::to_string(args.mp.target_bits)).c_str()
                                      : (std::to_string(args.mp.target_size_mb) + " MB").c_str());
  } else {
    std::snprintf(what, sizeof what, "W%dA%d", args.q.wbits, args.q.abits);
  }
  std::printf("quantized %s with %s %s on %d calibration images (seed %llu, list %s)\n",
              args.model.c_str(), args.q.method.c_str(), what, report.calib_images,
              static_cast<unsigned long long>(args.q.seed), report.calib_hash.c_str());
  std::printf("  %zu operations, mean similarity %.5f -> %.5f\n", report.ops.size(), mean_before,
              mean_after);
  std::printf("  time: load %.1f s, capture %.1f s, search %.1f s, total %.1f s (%d threads)\n",
              report.load_seconds, report.capture_seconds, report.search_seconds,
              report.total_seconds, threads);
  if (args.mixed) {
    std::printf(
        "  mixed precision: %.3f MB of parameters (budget %.3f MB), sum of omega "
        "%.4g, Omega table %.1f s\n  bits per module:",
        mpr.size_bytes / 1e6, mpr.budget_bytes / 1e6, mpr.total_omega, mpr.table_seconds);
    for (size_t i = 0; i < mpr.modules.size(); ++i) {
      std::printf("%s %s %d", i % 6 == 0 ? "\n   " : ",", mpr.modules[i].c_str(), mpr.bits[i]);
    }
    std::printf("\n");
  }
  std::printf("  wrote %s%s%s\n", args.out.c_str(), args.report.empty() ? "" : " and ",
              args.report.c_str());
}

// Loads, calibrates, quantizes and writes FILE.vitq; returns the exit code.
int RunQuantize(QuantizeArgs* args) {
  const int threads = ApplyThreads(args->common.threads);
  args->q.quiet = args->common.quiet;
  Status valid = CheckQuantizeArgs(args);
  if (!valid.ok()) return ReportError(valid);
  auto model = LoadModel(args->model);
  if (!model.ok()) return ReportError(model.status());
  Status memory = CheckReconstructMemory(model->spec.config, args->q, args->q.calib_size);
  if (!memory.ok()) return ReportError(memory);
  auto t0 = std::chrono::steady_clock::now();
  auto calib =
      LoadCalibrationSet(model->spec, args->calib, args->q.calib_size, args->q.seed, args->q.quiet);
  if (!calib.ok()) return ReportError(calib.status());
  QuantizeReport report;
  report.load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MixedPrecisionReport mpr;
  if (args->mixed && args->mp.target_bits == 0 && args->mp.target_size_mb <= 0)
    args->mp.target_bits = args->q.wbits;
  Result<QuantPlan> plan =
      args->mixed
          ? QuantizeMixedPrecision(model.value(), calib.value(), args->q, args->mp, &mpr, &report)
          : QuantizeModel(model.value(), calib.value(), args->q, &report);
  if (!plan.ok()) return ReportError(plan.status());
  report.total_seconds += report.load_seconds;
  Status s = SaveQuantizedFile(args->out, model.value(), plan.value());
  if (!s.ok()) return ReportError(s);
  if (!args->q.checkpoint_path.empty()) {  // the output is complete: the checkpoint is done
    std::error_code ec;
    std::filesystem::remove(args->q.checkpoint_path, ec);
  }
  nlohmann::ordered_json rj = nlohmann::ordered_json::parse(report.ToJson());
  if (args->mixed) rj["mixed_precision"] = nlohmann::ordered_json::parse(mpr.ToJson());
  s = WriteReports(*args, rj, mpr);
  if (!s.ok()) return ReportError(s);
  if (args->common.json) {
    nlohmann::ordered_json j = rj;
    j["out"] = args->out;
    j["method"] = args->q.method;
    if (!args->mixed) {
      j["wbits"] = args->q.wbits;
      j["abits"] = args->q.abits;
    }
    j["threads"] = threads;
    PrintJson(j);
  } else {
    PrintSummary(*args, report, mpr, threads);
  }
  return 0;
}
}  // namespace

void RegisterQuantize(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("quantize",
                                  "post-training quantization: calibrate, search, write FILE.vitq");
  auto args = std::make_shared<QuantizeArgs>();
  cmd->add_option("MODEL", args->model, "float model directory or .safetensors file")->required();
  cmd->add_option("--calib", args->calib, "calibration ImageFolder (e.g. training images)")
      ->required();
  cmd->add_option("--method", args->q.method,
                  "vitq (default), liu2021, minmax, percentile, omse, easyquant");
  cmd->add_option("--wbits", args->q.wbits, "weight bits, 2-8 (default 8)");
  cmd->add_option("--abits", args->q.abits, "activation bits, 2-8 (default 8)");
  cmd->add_option("--out", args->out, "output .vitq file (written atomically)")->required();
  cmd->add_option("--report", args->report,
                  "write the per-site report as JSON (with --mixed-precision also the Pareto "
                  "curve as REPORT.pareto.svg)");
  cmd->add_flag("--mixed-precision", args->mixed,
                "one bit-width per module (MSA, MLP) by nuclear norm, under a size budget");
  cmd->add_option("--target-bits", args->mp.target_bits,
                  "mixed precision: budget = size of the uniform model at these bits");
  cmd->add_option("--target-size-mb", args->mp.target_size_mb,
                  "mixed precision: budget in MB (1e6 bytes) of parameters");
  cmd->add_option("--candidates", args->mp.candidates,
                  "mixed precision: candidate bit-widths, e.g. 4,5,6,7,8 (default: target-2 .. "
                  "target+2 within 2-8)")
      ->delimiter(',');
  cmd->add_option("--omega", args->omega,
                  "mixed precision: sensitivity Ω, paper (method.md §1.7, default) or scale-free "
                  "(each module's output divided by its RMS Frobenius norm)");
  AddQuantizeOptions(cmd, &args->q);
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run, cmd] {
    Status flags = CheckMethodFlags(*cmd, args->q);
    *run = [args, flags]() -> int {
      if (!flags.ok()) return ReportError(flags);
      return RunQuantize(args.get());
    };
  });
}

}  // namespace vitq::cli
