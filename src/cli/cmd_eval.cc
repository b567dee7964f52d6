// `vitq eval MODEL|FILE.vitq --data DIR`: top-1/top-5 and throughput on an ImageFolder (cli).
#include <cstdio>

#include "common.h"
#include "quant_path.h"
#include "vitq/dist.h"

namespace vitq::cli {

void RegisterEval(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("eval", "evaluate top-1/top-5 accuracy on an image folder");
  struct Args {
    std::string model, data, classes, reference;
    std::vector<std::string> keep_float;
    QuantPathFlags qpath, reference_qpath;
    EvalOptions eval;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model,
                  "model directory, .safetensors file, or quantized .vitq file")
      ->required();
  cmd->add_option("--data", args->data, "ImageFolder: DIR/<class>/<image>")->required();
  cmd->add_option("--classes", args->classes,
                  "class list file (default: DIR/classes.txt, then DIR/../classes.txt)");
  cmd->add_option("--limit", args->eval.limit, "evaluate only the first N images")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--batch", args->eval.batch, "images per forward call (default 32)")
      ->check(CLI::Range(1, 4096));
  cmd->add_flag("--skip-bad-images", args->eval.skip_bad_images,
                "warn about and skip unreadable images instead of failing");
  AddQuantPathFlags(cmd, &args->qpath, "", "for a .vitq file");
  cmd->add_option("--keep-float", args->keep_float,
                  "with --fake-quant: leave the activation sites whose names contain one of "
                  "these patterns float, e.g. mlp.fc2:in,attn.pv:a (which sites cost the most)")
      ->delimiter(',');
  cmd->add_option(
      "--reference", args->reference,
      "float model to compare with: adds top-1 agreement and mean KL(float || evaluated)");
  AddQuantPathFlags(cmd, &args->reference_qpath, "reference-", "for a --reference .vitq file");
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      int threads = ApplyThreads(args->common.threads);
      args->eval.quiet = args->common.quiet;
      auto model = OpenRunnable(args->model, args->qpath.path(), args->keep_float);
      if (Status st = dist::Agree(model.status()); !st.ok()) return ReportError(st);
      auto dataset = OpenImageFolder(args->data, args->classes);
      if (Status st = dist::Agree(dataset.status()); !st.ok()) return ReportError(st);
      std::vector<float> ref_logits;
      if (!args->reference.empty()) {
        auto ref = OpenRunnable(args->reference, args->reference_qpath.path());
        if (Status st = dist::Agree(ref.status()); !st.ok()) return ReportError(st);
        EvalOptions ro = args->eval;
        ro.keep_logits = true;
        ro.label = "reference";
        auto rr = EvaluateDataset((*ref)->forward, (*ref)->spec, dataset.value(), ro);
        if (!rr.ok()) return ReportError(rr.status());
        ref_logits = std::move(rr->logits);
        args->eval.reference_logits = &ref_logits;
      }
      auto r = EvaluateDataset((*model)->forward, (*model)->spec, dataset.value(), args->eval);
      if (!r.ok()) return ReportError(r.status());
      for (const auto& w : r->warnings) {
        if (dist::IsRoot()) std::fprintf(stderr, "vitq: warning: skipped %s\n", w.c_str());
      }
      const std::string engine = (*model)->engine;
      if (args->common.json) {
        PrintJson(EvalFigures(r.value(), **model, args->model, args->data, args->reference,
                              args->eval.batch, threads));
        return 0;
      }
      std::printf("model   %s (%s)\n", args->model.c_str(), engine.c_str());
      if ((*model)->float_sites > 0)
        std::printf("float   %d activation sites left float (--keep-float)\n",
                    (*model)->float_sites);
      std::printf("data    %s: %lld images%s\n", args->data.c_str(),
                  static_cast<long long>(r->images),
                  r->skipped ? (", " + std::to_string(r->skipped) + " skipped").c_str() : "");
      std::printf("top-1   %.4f\n", r->top1);
      std::printf("top-5   %.4f\n", r->top5);
      if (!args->reference.empty()) {
        std::printf("agree   %.4f top-1 agreement with %s\n", r->agreement,
                    args->reference.c_str());
        std::printf("KL      %.5f nats (reference || evaluated), mean over images\n", r->kl);
        std::printf("SQNR    %.1f dB of the logits against the reference\n", r->sqnr_db);
      }
      std::printf("size    %.2f MB of parameters\n", (*model)->size_bytes / 1e6);
      std::printf("speed   %.1f images/s (%.2f s, batch %d, %d threads, decoding included)\n",
                  r->images_per_second, r->seconds, args->eval.batch, threads);
      return 0;
    };
  });
}

}  // namespace vitq::cli
