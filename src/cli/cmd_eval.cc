// `vitq eval MODEL --data DIR`: top-1/top-5 and throughput on an ImageFolder (cli).
#include <cstdio>

#include "common.h"
#include "vitq/evaluate.h"

namespace vitq::cli {

void RegisterEval(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("eval", "evaluate top-1/top-5 accuracy on an image folder");
  struct Args {
    std::string model, data, classes;
    EvalOptions eval;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model, "model directory or .safetensors file")->required();
  cmd->add_option("--data", args->data, "ImageFolder: DIR/<class>/<image> (labels from DIR/classes.txt if present)")
      ->required();
  cmd->add_option("--classes", args->classes, "class list file (default: DIR/classes.txt, then DIR/../classes.txt)");
  cmd->add_option("--limit", args->eval.limit, "evaluate only the first N images")->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--batch", args->eval.batch, "images per forward call (default 32)")->check(CLI::Range(1, 4096));
  cmd->add_flag("--skip-bad-images", args->eval.skip_bad_images,
                "warn about and skip unreadable images instead of failing");
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      int threads = ApplyThreads(args->common.threads);
      args->eval.quiet = args->common.quiet;
      auto model = LoadModel(args->model);
      if (!model.ok()) return ReportError(model.status());
      auto dataset = OpenImageFolder(args->data, args->classes);
      if (!dataset.ok()) return ReportError(dataset.status());
      Engine engine(model.value());
      auto forward = [&](const float* x, int b, float* y) { engine.Forward(x, b, y); };
      auto r = EvaluateDataset(forward, model->spec, dataset.value(), args->eval);
      if (!r.ok()) return ReportError(r.status());
      for (const auto& w : r->warnings) std::fprintf(stderr, "vitq: warning: skipped %s\n", w.c_str());
      if (args->common.json) {
        nlohmann::ordered_json j;
        j["model"] = args->model;
        j["data"] = args->data;
        j["engine"] = "fp32";
        j["top1"] = r->top1;
        j["top5"] = r->top5;
        j["images"] = r->images;
        j["skipped"] = r->skipped;
        j["seconds"] = r->seconds;
        j["images_per_second"] = r->images_per_second;
        j["batch"] = args->eval.batch;
        j["threads"] = threads;
        PrintJson(j);
        return 0;
      }
      std::printf("model   %s (fp32)\n", args->model.c_str());
      std::printf("data    %s: %lld images%s\n", args->data.c_str(), static_cast<long long>(r->images),
                  r->skipped ? (", " + std::to_string(r->skipped) + " skipped").c_str() : "");
      std::printf("top-1   %.4f\n", r->top1);
      std::printf("top-5   %.4f\n", r->top5);
      std::printf("speed   %.1f images/s (%.2f s, batch %d, %d threads, decoding included)\n",
                  r->images_per_second, r->seconds, args->eval.batch, threads);
      return 0;
    };
  });
}

}  // namespace vitq::cli
