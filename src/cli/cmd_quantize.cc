// `vitq quantize MODEL --calib DIR --method NAME --wbits B --abits B --out FILE.vitq`: calibrate,
// search the quantization intervals and write the quantized model (cli).
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "vitq/dist.h"
#include "vitq/mixed_precision.h"
#include "vitq/qfile.h"
#include "vitq/quantize.h"
#include "vitq/safetensors.h"

namespace vitq::cli {
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
                  "vitq: grid of the attention probabilities: auto (log-sqrt2-row below 8 "
                  "bits, uniform-row at 8), uniform (one grid per tensor), uniform-row (up to "
                  "each row's maximum), log-sqrt2 (per tensor), log-sqrt2-row (relative to each "
                  "row's maximum)");
  cmd->add_option("--fc2-input", q->fc2_input,
                  "vitq: grid of fc2's input (post-GELU): auto (token below 8 bits, else "
                  "tensor), tensor (one searched grid), token (each "
                  "token's row on its own grid, set at run time)");
  cmd->add_option("--image-bits", q->image_bits,
                  "vitq: bits of the image input to the patch embedding, 2-8 (default 8: pixels "
                  "are 8-bit data; 0 = --abits)");
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
                           "--attn-quantizer", "--fc2-input", "--image-bits", "--reconstruct"}) {
    if (!vitq && cmd.count(flag) > 0) {
      return Status::Usage(std::string(flag) + " applies to --method vitq only, not '" + q.method +
                           "'");
    }
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
  QuantizeJob job;
  CommonOptions common;
};

// The summary on stdout: what was quantized, the similarity, the times, the chosen bits.
void PrintSummary(const QuantizeJob& args, const QuantizeReport& report,
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
    std::snprintf(what, sizeof what, "W%dA%d", args.options.wbits, args.options.abits);
  }
  std::printf("quantized %s with %s %s on %d calibration images (seed %llu, list %s)\n",
              args.model.c_str(), args.options.method.c_str(), what, report.calib_images,
              static_cast<unsigned long long>(args.options.seed), report.calib_hash.c_str());
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

// Loads, calibrates, quantizes and writes FILE.vitq (RunQuantizeJob); returns the exit code.
int RunQuantize(QuantizeArgs* args) {
  const int threads = ApplyThreads(args->common.threads);
  QuantizeJob& job = args->job;
  job.options.quiet = args->common.quiet;
  job.command = CommandLine();
  auto outcome = RunQuantizeJob(&job);
  if (!outcome.ok()) return ReportError(outcome.status());
  if (args->common.json) {
    nlohmann::ordered_json j = outcome->json;
    j["out"] = job.out;
    j["method"] = job.options.method;
    if (!job.mixed) {
      j["wbits"] = job.options.wbits;
      j["abits"] = job.options.abits;
    }
    j["threads"] = threads;
    PrintJson(j);
  } else {
    PrintSummary(job, outcome->report, outcome->mixed, threads);
  }
  return 0;
}
}  // namespace

void RegisterQuantize(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("quantize",
                                  "post-training quantization: calibrate, search, write FILE.vitq");
  auto args = std::make_shared<QuantizeArgs>();
  cmd->add_option("MODEL", args->job.model, "float model directory or .safetensors file")
      ->required();
  cmd->add_option("--calib", args->job.calib, "calibration ImageFolder (e.g. training images)")
      ->required();
  cmd->add_option("--method", args->job.options.method,
                  "vitq (default), liu2021, minmax, percentile, omse, easyquant");
  cmd->add_option("--wbits", args->job.options.wbits, "weight bits, 2-8 (default 8)");
  cmd->add_option("--abits", args->job.options.abits, "activation bits, 2-8 (default 8)");
  cmd->add_option("--out", args->job.out, "output .vitq file (written atomically)")->required();
  cmd->add_option("--report", args->job.report,
                  "write the per-site report as JSON (with --mixed-precision also the Pareto "
                  "curve as REPORT.pareto.svg)");
  cmd->add_flag("--mixed-precision", args->job.mixed,
                "one bit-width per module (MSA, MLP) by nuclear norm, under a size budget");
  cmd->add_option("--target-bits", args->job.mp.target_bits,
                  "mixed precision: budget = size of the uniform model at these bits");
  cmd->add_option("--target-size-mb", args->job.mp.target_size_mb,
                  "mixed precision: budget in MB (1e6 bytes) of parameters");
  cmd->add_option("--candidates", args->job.mp.candidates,
                  "mixed precision: candidate bit-widths, e.g. 4,5,6,7,8 (default: target-2 .. "
                  "target+2 within 2-8)")
      ->delimiter(',');
  cmd->add_option("--omega", args->job.omega,
                  "mixed precision: sensitivity Ω, paper (method.md §1.7, default) or scale-free "
                  "(each module's output divided by its RMS Frobenius norm)");
  AddQuantizeOptions(cmd, &args->job.options);
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run, cmd] {
    Status flags = CheckMethodFlags(*cmd, args->job.options);
    *run = [args, flags]() -> int {
      if (Status st = dist::Agree(flags); !st.ok()) return ReportError(st);
      return RunQuantize(args.get());
    };
  });
}

}  // namespace vitq::cli
