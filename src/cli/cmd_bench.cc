// `vitq bench MODEL`: steady-state inference speed (warm-up excluded, loading outside the timer).
#include <cstdio>

#include "common.h"
#include "quant_path.h"
#include "vitq/runtime.h"

namespace vitq::cli {

void RegisterBench(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("bench", "measure steady-state images/s on random inputs");
  struct Args {
    std::string model;
    int batch = 1;
    double seconds = 5, warmup = 1;
    int min_reps = 5;
    QuantPathFlags qpath;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model,
                  "model directory, .safetensors file, or quantized .vitq file")
      ->required();
  AddQuantPathFlags(cmd, &args->qpath, "", "for a .vitq file");
  cmd->add_option("--batch", args->batch, "images per call (default 1)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--seconds", args->seconds, "minimum timed seconds (default 5)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--warmup", args->warmup, "minimum warm-up seconds (default 1)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--min-reps", args->min_reps, "minimum timed calls (default 5)")
      ->check(CLI::Range(1, 1000000));
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      int threads = ApplyThreads(args->common.threads);
      auto model = OpenRunnable(args->model, args->qpath.path());
      if (!model.ok()) return ReportError(model.status());
      BenchResult r = BenchmarkForward((*model)->forward, (*model)->spec, args->batch, threads,
                                       args->warmup, args->seconds, args->min_reps);
      // Share of the calls (warm-up included) that ran on one thread: the adaptive choice.
      const auto* adaptive = (*model)->adaptive.get();
      const double one_thread_share =
          adaptive != nullptr && adaptive->calls() > 0
              ? static_cast<double>(adaptive->single_thread_calls()) / adaptive->calls()
              : (threads == 1 ? 1.0 : 0.0);
      if (args->common.json) {
        PrintJson({{"model", args->model},
                   {"architecture", (*model)->spec.config.architecture},
                   {"engine", (*model)->engine},
                   {"isa", EffectiveIsa()},
                   {"batch", r.batch},
                   {"threads", r.threads},
                   {"images_per_second", r.images_per_second},
                   {"ms_per_image", r.ms_per_image},
                   {"mean_images_per_second", r.mean_images_per_second},
                   {"reps", r.reps},
                   {"one_thread_share", one_thread_share}});
      } else {
        std::printf(
            "%s %s batch %d, %d threads: %.1f images/s, %.2f ms/image (median of %d calls)\n",
            (*model)->spec.config.architecture.c_str(), (*model)->engine.c_str(), r.batch,
            r.threads, r.images_per_second, r.ms_per_image, r.reps);
      }
      return 0;
    };
  });
}

}  // namespace vitq::cli
