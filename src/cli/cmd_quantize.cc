// `vitq quantize MODEL --calib DIR --method NAME --wbits B --abits B --out FILE.vitq`: calibrate,
// search the quantization intervals and write the quantized model (cli).
#include <cstdio>
#include <filesystem>

#include "common.h"
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
  cmd->add_option("--candidates", q->candidates, "search grid points per step (default 100)")
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--max-rounds", q->max_rounds, "alternating search rounds at most (default 20)")
      ->check(CLI::Range(1, 1000));
}

void RegisterQuantize(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("quantize",
                                  "post-training quantization: calibrate, search, write FILE.vitq");
  struct Args {
    std::string model, calib, out, report;
    QuantizeOptions q;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model, "float model directory or .safetensors file")->required();
  cmd->add_option("--calib", args->calib, "calibration ImageFolder (e.g. training images)")
      ->required();
  cmd->add_option("--method", args->q.method,
                  "minmax, percentile, omse, easyquant, liu2021 (default liu2021)");
  cmd->add_option("--wbits", args->q.wbits, "weight bits (default 8)");
  cmd->add_option("--abits", args->q.abits, "activation bits (default 8)");
  cmd->add_option("--out", args->out, "output .vitq file (written atomically)")->required();
  cmd->add_option("--report", args->report, "write the per-site report as JSON");
  AddQuantizeOptions(cmd, &args->q);
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      int threads = ApplyThreads(args->common.threads);
      args->q.quiet = args->common.quiet;
      Status valid = args->q.Validate();
      if (!valid.ok()) return ReportError(valid);
      std::error_code ec;
      auto parent = std::filesystem::path(args->out).parent_path();
      if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
        return ReportError(
            Status::InvalidInput("output directory '" + parent.string() + "' does not exist"));
      }
      auto model = LoadModel(args->model);
      if (!model.ok()) return ReportError(model.status());
      auto t0 = std::chrono::steady_clock::now();
      auto calib = LoadCalibrationSet(model->spec, args->calib, args->q.calib_size, args->q.seed,
                                      args->q.quiet);
      if (!calib.ok()) return ReportError(calib.status());
      QuantizeReport report;
      report.load_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      auto plan = QuantizeModel(model.value(), calib.value(), args->q, &report);
      if (!plan.ok()) return ReportError(plan.status());
      report.total_seconds += report.load_seconds;
      Status s = SaveQuantizedFile(args->out, model.value(), plan.value());
      if (!s.ok()) return ReportError(s);
      if (!args->report.empty()) {
        s = WriteFileAtomic(args->report, report.ToJson() + "\n");
        if (!s.ok()) return ReportError(s);
      }
      double mean_before = 0, mean_after = 0;
      for (const auto& o : report.ops) {
        mean_before += o.similarity_before;
        mean_after += o.similarity_after;
      }
      mean_before /= report.ops.size();
      mean_after /= report.ops.size();
      if (args->common.json) {
        nlohmann::ordered_json j = nlohmann::ordered_json::parse(report.ToJson());
        j["out"] = args->out;
        j["method"] = args->q.method;
        j["wbits"] = args->q.wbits;
        j["abits"] = args->q.abits;
        j["threads"] = threads;
        PrintJson(j);
      } else {
        std::printf("quantized %s with %s W%dA%d on %d calibration images (seed %llu, list %s)\n",
                    args->model.c_str(), args->q.method.c_str(), args->q.wbits, args->q.abits,
                    report.calib_images, static_cast<unsigned long long>(args->q.seed),
                    report.calib_hash.c_str());
        std::printf("  %zu operations, mean similarity %.5f -> %.5f\n", report.ops.size(),
                    mean_before, mean_after);
        std::printf(
            "  time: load %.1f s, capture %.1f s, search %.1f s, total %.1f s (%d threads)\n",
            report.load_seconds, report.capture_seconds, report.search_seconds,
            report.total_seconds, threads);
        std::printf("  wrote %s%s%s\n", args->out.c_str(), args->report.empty() ? "" : " and ",
                    args->report.c_str());
      }
      return 0;
    };
  });
}

}  // namespace vitq::cli
