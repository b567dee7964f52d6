// `vitq compare MODEL --calib DIR --data DIR --methods a,b --bits 8,6,4`: the method x bits grid
// in one table (markdown, CSV or JSON) (cli).
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "vitq/compare.h"
#include "vitq/dist.h"
#include "vitq/safetensors.h"

namespace vitq::cli {

void RegisterCompare(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand(
      "compare", "quantize with several methods and bit-widths, evaluate each, print one table");
  struct Args {
    std::string model, calib, data, methods = "minmax,percentile,omse,easyquant,liu2021",
                                    bits = "8,6,4";
    std::string format = "markdown", omega = "paper", report_dir, html;
    int limit = 0, batch = 32;
    QuantizeOptions q;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model, "float model directory or .safetensors file")->required();
  cmd->add_option("--calib", args->calib, "calibration ImageFolder")->required();
  cmd->add_option("--data", args->data, "evaluation ImageFolder")->required();
  cmd->add_option("--methods", args->methods,
                  "comma list; a method may carry +no-ranking, +no-bias-correction, +sequential, "
                  "+coarse (coarse-to-fine grid) (e.g. liu2021+no-ranking); vitq may carry "
                  "+no-per-channel, +no-reparam, +no-gptq, +no-asym, +uniform-attn, "
                  "+tensor-log-attn, +tensor-fc2, "
                  "+image-abits");
  cmd->add_option("--bits", args->bits,
                  "comma list of bit-widths for weights and activations (default 8,6,4); "
                  "'6mp' is mixed precision at the size of the uniform 6-bit model");
  cmd->add_option("--omega", args->omega,
                  "comma list of mixed-precision sensitivities: paper (default), scale-free; "
                  "each 'Nmp' bit-width gets one row per entry (scale-free rows are labelled "
                  "'Nmp-sf')");
  cmd->add_option("--limit", args->limit, "evaluate only the first N images")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--batch", args->batch, "evaluation batch (default 32)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--format", args->format, "markdown (default), csv or json")
      ->check(CLI::IsMember({"markdown", "csv", "json"}));
  cmd->add_option("--report-dir", args->report_dir,
                  "write the per-site report of every uniform search (each method, each bit-width "
                  "searched, mixed-precision candidates included) as DIR/METHOD-W<bits>.json");
  cmd->add_option("--html", args->html,
                  "also write the table as a self-contained HTML page (with a top-1 against size "
                  "plot)");
  cmd->add_option("--calib-size", args->q.calib_size, "calibration images (default 100)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--seed", args->q.seed, "seed of the calibration draw (default 0)");
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      int threads = ApplyThreads(args->common.threads);
      if (args->common.json) args->format = "json";
      // Parse and validate the whole grid before any work.
      QuantizeOptions base = args->q;
      base.quiet = args->common.quiet;
      auto grid = ParseCompareGrid(args->methods, args->bits, args->omega, base);
      if (Status st = dist::Agree(grid.status()); !st.ok()) return ReportError(st);
      Status paths = CheckOutputPaths({{"--html", args->html}}, ModelInputFiles(args->model));
      if (Status st = dist::Agree(paths); !st.ok()) return ReportError(st);
      if (!args->report_dir.empty() && dist::IsRoot()) {  // before the work: fail fast
        std::error_code ec;
        std::filesystem::create_directories(args->report_dir, ec);
        if (!std::filesystem::is_directory(args->report_dir)) {
          paths =
              Status::InvalidInput("--report-dir: cannot create directory '" + args->report_dir +
                                   "'" + (ec ? ": " + ec.message() : std::string()));
        }
      }
      if (Status st = dist::Agree(paths); !st.ok()) return ReportError(st);
      auto model = LoadModel(args->model);
      if (Status st = dist::Agree(model.status()); !st.ok()) return ReportError(st);
      auto dataset = OpenImageFolder(args->data);
      if (Status st = dist::Agree(dataset.status()); !st.ok()) return ReportError(st);
      auto calib = LoadCalibrationSet(model->spec, args->calib, args->q.calib_size, args->q.seed,
                                      args->common.quiet);
      if (!calib.ok()) return ReportError(calib.status());  // agreed by LoadCalibrationSet
      CompareOptions co;
      co.eval.limit = args->limit;
      co.eval.batch = args->batch;
      co.eval.quiet = args->common.quiet;
      if (!args->common.quiet && args->format == "markdown" && dist::IsRoot()) {
        co.on_row = [](const CompareRow& r) {
          std::fprintf(stderr, "vitq compare: %s %s top-1 %.4f (%.1f s calibration)\n",
                       r.method.c_str(), r.bits.c_str(), r.top1, r.calib_seconds);
        };
      }
      auto result = RunCompare(model.value(), calib.value(), dataset.value(), grid.value(), co);
      if (!result.ok()) return ReportError(result.status());  // agreed by every cell's steps
      const std::vector<CompareRow>& rows = result->rows;
      if (!dist::IsRoot()) return 0;  // rank 0 alone writes and prints
      if (!args->report_dir.empty()) {
        for (const auto& [label, cache] : result->searches) {
          for (const auto& [bits, cp] : cache) {
            const std::string path =
                args->report_dir + "/" + label + "-W" + std::to_string(bits) + ".json";
            Status w = WriteFileAtomic(path, cp.report.ToJson());
            if (!w.ok()) return ReportError(w);
          }
        }
      }
      const nlohmann::ordered_json figures = CompareFigures(
          result.value(), args->model, args->calib, args->data, args->q, threads, CommandLine());
      if (!args->html.empty()) {
        auto html = ReportHtml(figures, args->model);
        if (!html.ok()) return ReportError(html.status().WithContext("--html"));
        Status w = WriteFileAtomic(args->html, html.value());
        if (!w.ok()) return ReportError(w);
      }
      if (args->format == "json") {
        PrintJson(figures);
      } else if (args->format == "csv") {
        std::printf("method,bits,top1,top5,agreement,kl,size_mb,calib_seconds,path\n");
        for (const auto& r : rows) {
          std::printf("%s,%s,%.4f,%.4f,%.4f,%.5f,%.3f,%.1f,%s\n", r.method.c_str(), r.bits.c_str(),
                      r.top1, r.top5, r.agreement, r.kl, r.size_mb, r.calib_seconds,
                      r.path.c_str());
        }
      } else {
        std::printf(
            "| method | W/A bits | top-1 | top-5 | agreement | KL | size (MB) | calib (s) | run on "
            "|\n");
        std::printf("|---|---|---|---|---|---|---|---|---|\n");
        for (const auto& r : rows) {
          std::string shown = r.bits == "32" ? "32 (float)" : r.bits + "/" + r.bits;
          const size_t mp = r.bits.find("mp");
          if (mp != std::string::npos)
            shown = r.bits.substr(0, mp) + "MP" + (r.bits.size() > mp + 2 ? " (scale-free Ω)" : "");
          std::printf("| %s | %s | %.4f | %.4f | %.4f | %.5f | %.2f | %.1f | %s |\n",
                      r.method.c_str(), shown.c_str(), r.top1, r.top5, r.agreement, r.kl, r.size_mb,
                      r.calib_seconds, r.path.c_str());
        }
      }
      return 0;
    };
  });
}

}  // namespace vitq::cli
