// `vitq compare MODEL --calib DIR --data DIR --methods a,b --bits 8,6,4`: the method x bits grid
// in one table (markdown, CSV or JSON) (cli).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "common.h"
#include "load.h"
#include "vitq/mixed_precision.h"
#include "vitq/qfile.h"
#include "vitq/quantize.h"
#include "vitq/runtime.h"
#include "vitq/safetensors.h"

namespace vitq::cli {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct Row {
  std::string method;
  std::string bits;
  double top1 = 0, top5 = 0, agreement = 1, kl = 0, size_mb = 0, calib_seconds = 0;
  std::string path = "float";  // "int8" (the integer engine) or "fake-quant"
};

// Writes the plan as a .vitq file in a private temporary directory and loads it back: compare
// evaluates exactly what `vitq quantize` would write and the integer engine would run.
Result<QuantizedModel> RoundTrip(const ViTModel& model, const QuantPlan& plan) {
  std::error_code ec;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path(ec) / ("vitq-compare-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::InvalidInput("cannot create temporary directory '" + dir.string() + "'");
  const std::string file = (dir / "plan.vitq").string();
  Status s = SaveQuantizedFile(file, model, plan);
  Result<QuantizedModel> q = s.ok() ? LoadQuantizedFile(file) : Result<QuantizedModel>(s);
  std::filesystem::remove_all(dir, ec);
  return q;
}

}  // namespace

void RegisterCompare(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand(
      "compare", "quantize with several methods and bit-widths, evaluate each, print one table");
  struct Args {
    std::string model, calib, data, methods = "minmax,percentile,omse,easyquant,liu2021",
                                    bits = "8,6,4";
    std::string format = "markdown", omega = "paper", report_dir;
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
                  "+no-per-channel, +no-reparam, +no-gptq, +no-asym, +uniform-attn");
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
  cmd->add_option("--calib-size", args->q.calib_size, "calibration images (default 100)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--seed", args->q.seed, "seed of the calibration draw (default 0)");
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      int threads = ApplyThreads(args->common.threads);
      if (args->common.json) args->format = "json";
      // Parse and validate the whole grid before any work.
      struct Config {
        std::string label;
        QuantizeOptions q;
        bool mixed = false;  // "6mp": mixed precision at the size of the uniform 6-bit model
        OmegaCriterion omega = OmegaCriterion::kPaper;
      };
      std::vector<OmegaCriterion> omegas;
      for (const auto& o : Split(args->omega, ',')) {
        auto c = ParseOmegaCriterion(o);
        if (!c.ok()) return ReportError(Status::InvalidInput("--omega: " + c.status().message()));
        omegas.push_back(c.value());
      }
      if (omegas.empty())
        return ReportError(Status::InvalidInput("--omega: give paper and/or scale-free"));
      std::vector<Config> grid;
      for (const auto& bits_s : Split(args->bits, ',')) {
        int bits = 0;
        bool mixed = bits_s.size() > 2 && (bits_s.substr(bits_s.size() - 2) == "mp" ||
                                           bits_s.substr(bits_s.size() - 2) == "MP");
        try {
          size_t used = 0;
          bits = std::stoi(bits_s, &used);
          if (used != bits_s.size() - (mixed ? 2 : 0)) throw std::invalid_argument(bits_s);
        } catch (const std::exception&) {
          return ReportError(Status::InvalidInput(
              "--bits: '" + bits_s + "' is not a bit-width (e.g. 8, or 6mp for mixed precision)"));
        }
        for (const auto& m : Split(args->methods, ',')) {
          auto parts = Split(m, '+');
          Config cfg{m, args->q, mixed};
          cfg.q.method = parts.empty() ? "" : parts[0];
          cfg.q.wbits = cfg.q.abits = bits;
          cfg.q.quiet = args->common.quiet;
          for (size_t i = 1; i < parts.size(); ++i) {
            if (parts[i] == "no-ranking")
              cfg.q.ranking = false;
            else if (parts[i] == "no-bias-correction")
              cfg.q.bias_correction = false;
            else if (parts[i] == "sequential")
              cfg.q.sequential = true;
            else if (parts[i] == "coarse")
              cfg.q.coarse_to_fine = true;
            else if (parts[i] == "no-per-channel" && cfg.q.method == "vitq")
              cfg.q.per_channel_weights = false;
            else if (parts[i] == "no-reparam" && cfg.q.method == "vitq")
              cfg.q.ln_reparam = false;
            else if (parts[i] == "no-gptq" && cfg.q.method == "vitq")
              cfg.q.gptq = false;
            else if (parts[i] == "no-asym" && cfg.q.method == "vitq")
              cfg.q.asymmetric = false;
            else if (parts[i] == "uniform-attn" && cfg.q.method == "vitq")
              cfg.q.attn_quantizer = "uniform";
            else
              return ReportError(Status::InvalidInput("--methods: unknown variant '+" + parts[i] +
                                                      "' in '" + m + "'"));
          }
          Status v = cfg.q.Validate();
          if (!v.ok()) return ReportError(v);
          if (mixed && cfg.q.method == "vitq") {
            return ReportError(Status::Usage("--bits " + bits_s +
                                             ": mixed precision does not run --method vitq yet"));
          }
          if (mixed) {
            MixedPrecisionOptions mp;
            mp.target_bits = bits;
            v = mp.Validate();
            if (!v.ok()) return ReportError(v);
            if (cfg.q.sequential) {
              return ReportError(Status::InvalidInput(
                  "--bits " + bits_s + ": mixed precision does not combine with +sequential"));
            }
          }
          if (!mixed) {
            grid.push_back(cfg);
            continue;
          }
          for (OmegaCriterion o : omegas) {
            cfg.omega = o;
            grid.push_back(cfg);
          }
        }
      }
      if (!args->report_dir.empty()) {  // before the work, so a bad directory fails fast
        std::error_code ec;
        std::filesystem::create_directories(args->report_dir, ec);
        if (!std::filesystem::is_directory(args->report_dir)) {
          return ReportError(Status::InvalidInput("--report-dir: cannot create directory '" +
                                                  args->report_dir + "'" +
                                                  (ec ? ": " + ec.message() : std::string())));
        }
      }
      // Uniform configurations first: mixed-precision rows reuse their plans.
      std::stable_partition(grid.begin(), grid.end(), [](const Config& g) { return !g.mixed; });
      std::map<std::string, PlanCache> caches;  // by method label (with variants)
      auto model = LoadModel(args->model);
      if (!model.ok()) return ReportError(model.status());
      auto dataset = OpenImageFolder(args->data);
      if (!dataset.ok()) return ReportError(dataset.status());
      auto calib = LoadCalibrationSet(model->spec, args->calib, args->q.calib_size, args->q.seed,
                                      args->common.quiet);
      if (!calib.ok()) return ReportError(calib.status());
      EvalOptions eo;
      eo.limit = args->limit;
      eo.batch = args->batch;
      eo.quiet = args->common.quiet;
      eo.keep_logits = true;
      eo.label = "fp32";
      Engine engine(model.value());
      auto fr = EvaluateDataset([&](const float* x, int b, float* y) { engine.Forward(x, b, y); },
                                model->spec, dataset.value(), eo);
      if (!fr.ok()) return ReportError(fr.status());
      std::vector<Row> rows;
      rows.push_back(
          {"fp32", "32", fr->top1, fr->top5, 1.0, 0.0, model->NumParams() * 4 / 1e6, 0.0});
      std::vector<float> ref = std::move(fr->logits);
      for (const auto& cfg : grid) {
        QuantizeReport report;
        auto t0 = std::chrono::steady_clock::now();
        PlanCache& cache = caches[cfg.label];
        MixedPrecisionReport mpr;
        MixedPrecisionOptions mpo;
        mpo.target_bits = cfg.q.wbits;
        mpo.omega = cfg.omega;
        Result<QuantPlan> plan = cfg.mixed
                                     ? QuantizeMixedPrecision(model.value(), calib.value(), cfg.q,
                                                              mpo, &mpr, &report, &cache)
                                     : QuantizeModel(model.value(), calib.value(), cfg.q, &report);
        if (!plan.ok()) return ReportError(plan.status());
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (cfg.mixed) {
          secs = report.total_seconds;  // every candidate's search, cached or not, + Ω table
        } else if (!cfg.q.sequential) {
          cache[cfg.q.wbits] = CachedPlan{plan.value(), report};
        }
        const std::string bits_label =
            std::to_string(cfg.q.wbits) +
            (cfg.mixed ? (cfg.omega == OmegaCriterion::kScaleFree ? "mp-sf" : "mp") : "");
        // The deployed accuracy: the integer engine where it runs the plan, else fake-quant.
        auto qm = RoundTrip(model.value(), plan.value());
        if (!qm.ok()) return ReportError(qm.status());
        const bool on_engine = CheckIntegerPlan(qm->plan, model->spec.config).ok();
        std::unique_ptr<IntegerEngine> engine_q;
        std::unique_ptr<SimulatedModel> sim;
        if (on_engine) {
          auto e = IntegerEngine::Create(qm.value());
          if (!e.ok()) return ReportError(e.status());
          engine_q = std::move(e).value();
        } else {
          auto sm = SimulatedModel::Create(model.value(), plan.value());
          if (!sm.ok()) return ReportError(sm.status());
          sim = std::move(sm).value();
        }
        EvalOptions qo = eo;
        qo.keep_logits = false;
        qo.reference_logits = &ref;
        qo.label = cfg.label + " W" + bits_label;
        auto r = EvaluateDataset(
            [&](const float* x, int b, float* y) {
              if (engine_q) {
                engine_q->Forward(x, b, y);
              } else {
                sim->Forward(x, b, y);
              }
            },
            model->spec, dataset.value(), qo);
        if (!r.ok()) return ReportError(r.status());
        rows.push_back({cfg.label, bits_label, r->top1, r->top5, r->agreement, r->kl,
                        ModelSizeBytes(model.value(), plan.value()) / 1e6, secs,
                        on_engine ? "int8" : "fake-quant"});
        if (!args->common.quiet && args->format == "markdown") {
          std::fprintf(stderr, "vitq compare: %s %s top-1 %.4f (%.1f s calibration)\n",
                       cfg.label.c_str(), bits_label.c_str(), r->top1, secs);
        }
      }
      if (!args->report_dir.empty()) {
        for (const auto& [label, cache] : caches) {
          for (const auto& [bits, cp] : cache) {
            const std::string path =
                args->report_dir + "/" + label + "-W" + std::to_string(bits) + ".json";
            Status w = WriteFileAtomic(path, cp.report.ToJson());
            if (!w.ok()) return ReportError(w);
          }
        }
      }
      if (args->format == "json") {
        nlohmann::ordered_json j;
        j["model"] = args->model;
        j["calib"] = args->calib;
        j["data"] = args->data;
        j["images"] = fr->images;
        j["calib_size"] = args->q.calib_size;
        j["seed"] = args->q.seed;
        j["threads"] = threads;
        j["rows"] = nlohmann::ordered_json::array();
        for (const auto& r : rows) {
          j["rows"].push_back({{"method", r.method},
                               {"bits", r.bits},
                               {"top1", r.top1},
                               {"top5", r.top5},
                               {"agreement", r.agreement},
                               {"kl", r.kl},
                               {"size_mb", r.size_mb},
                               {"calib_seconds", r.calib_seconds},
                               {"path", r.path}});
        }
        PrintJson(j);
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
