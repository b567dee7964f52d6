// A quantization job from checkpoint to written .vitq, shared by `vitq quantize` and
// vitq.quantize() in Python (app).
#include <chrono>
#include <ctime>
#include <filesystem>

#include "vitq/app.h"
#include "vitq/dist.h"
#include "vitq/safetensors.h"

namespace vitq {

std::string ParetoSvgPath(const std::string& report) {
  return std::filesystem::path(report).replace_extension(".pareto.svg").string();
}

static Status CheckQuantizeJobAlone(QuantizeJob* job);

// In an MPI job every process checks (the same options and paths) and they agree.
Status CheckQuantizeJob(QuantizeJob* job) { return dist::Agree(CheckQuantizeJobAlone(job)); }

static Status CheckQuantizeJobAlone(QuantizeJob* job) {
  if (job->mixed && job->options.method == "vitq") {
    return Status::Usage(
        "--mixed-precision runs with the per-operation methods (liu2021 and the baselines); "
        "--method vitq does not support it yet");
  }
  VITQ_RETURN_IF_ERROR(job->options.Validate());
  if (!job->omega.empty()) {
    if (!job->mixed) return Status::InvalidInput("--omega needs --mixed-precision");
    VITQ_ASSIGN_OR_RETURN(job->mp.omega, ParseOmegaCriterion(job->omega));
  }
  if (!job->mixed &&
      (job->mp.target_bits || job->mp.target_size_mb > 0 || !job->mp.candidates.empty())) {
    return Status::InvalidInput(
        "--target-bits, --target-size-mb and --candidates need --mixed-precision");
  }
  std::vector<OutputPath> outputs = {{"--out", job->out}, {"--report", job->report}};
  if (job->mixed && !job->report.empty()) {
    outputs.push_back({"--report (Pareto curve)", ParetoSvgPath(job->report)});
  }
  if (job->options.reconstruct) {
    job->options.checkpoint_path = job->out + ".ckpt";
    outputs.push_back({"--out (reconstruction checkpoint)", job->options.checkpoint_path});
  }
  return CheckOutputPaths(outputs, ModelInputFiles(job->model));
}

nlohmann::ordered_json RunInfo(const std::string& command) {
  nlohmann::ordered_json run;
  if (!command.empty()) run["command"] = command;
  run["version"] = VITQ_VERSION_STRING;
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &utc);
  run["date"] = date;
  return run;
}

nlohmann::ordered_json CompareFigures(const CompareResult& result, const std::string& model,
                                      const std::string& calib, const std::string& data,
                                      const QuantizeOptions& base, int threads,
                                      const std::string& command) {
  nlohmann::ordered_json j;
  nlohmann::ordered_json run = RunInfo(command);
  run["model"] = model;
  run["calib"] = calib;
  run["data"] = data;
  j["run"] = run;
  j["model"] = model;
  j["calib"] = calib;
  j["data"] = data;
  j["images"] = result.images;
  j["calib_size"] = base.calib_size;
  j["seed"] = base.seed;
  j["threads"] = threads;
  j["rows"] = nlohmann::ordered_json::array();
  for (const auto& r : result.rows) {
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
  return j;
}

Result<QuantizeOutcome> RunQuantizeJob(QuantizeJob* job) {
  VITQ_RETURN_IF_ERROR(CheckQuantizeJob(job));
  QuantizeOptions& q = job->options;
  Result<ViTModel> loaded = LoadModel(job->model);
  VITQ_RETURN_IF_ERROR(dist::Agree(loaded.status()));
  ViTModel model = std::move(loaded).value();
  VITQ_RETURN_IF_ERROR(dist::Agree(CheckReconstructMemory(model.spec.config, q, q.calib_size)));
  const auto t0 = std::chrono::steady_clock::now();
  // In an MPI job a distributed method's processes each decode their block of the images.
  VITQ_ASSIGN_OR_RETURN(CalibrationSet calib,
                        LoadCalibrationSet(model.spec, job->calib, q.calib_size, q.seed, q.quiet,
                                           QuantizeRunsDistributed(q) && !job->mixed));
  QuantizeOutcome out;
  out.report.load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (job->mixed && job->mp.target_bits == 0 && job->mp.target_size_mb <= 0)
    job->mp.target_bits = q.wbits;
  Result<QuantPlan> plan = job->mixed ? QuantizeMixedPrecision(model, calib, q, job->mp,
                                                               &out.mixed, &out.report)
                                      : QuantizeModel(model, calib, q, &out.report);
  if (!plan.ok()) return plan.status();
  out.report.total_seconds += out.report.load_seconds;
  // Rank 0 alone writes (every process holds the same plan); the others wait for its outcome.
  Status saved = dist::IsRoot() ? SaveQuantizedFile(job->out, model, plan.value()) : Status::Ok();
  VITQ_RETURN_IF_ERROR(dist::Agree(saved));
  if (!q.checkpoint_path.empty() && dist::IsRoot()) {  // the output is complete
    std::error_code ec;
    std::filesystem::remove(q.checkpoint_path, ec);
  }
  out.json = nlohmann::ordered_json::object();
  nlohmann::ordered_json run = RunInfo(job->command);
  run["model"] = job->model;
  run["calib"] = job->calib;
  run["calib_size"] = q.calib_size;
  run["seed"] = q.seed;
  run["method"] = q.method;
  if (job->mixed) {
    run["mixed_precision"] = job->mp.target_bits ? "W" + std::to_string(job->mp.target_bits) + " budget"
                                                 : std::to_string(job->mp.target_size_mb) + " MB budget";
  } else {
    run["bits"] = "W" + std::to_string(q.wbits) + "A" + std::to_string(q.abits);
  }
  run["out"] = job->out;
  out.json["run"] = run;
  AddProcessFigures(&out.json);
  out.json.update(nlohmann::ordered_json::parse(out.report.ToJson()));
  if (job->mixed) out.json["mixed_precision"] = nlohmann::ordered_json::parse(out.mixed.ToJson());
  if (!job->report.empty() && dist::IsRoot()) {
    VITQ_RETURN_IF_ERROR(WriteFileAtomic(job->report, DumpJson(out.json, 1) + "\n"));
    if (job->mixed)
      VITQ_RETURN_IF_ERROR(WriteFileAtomic(ParetoSvgPath(job->report), out.mixed.ParetoSvg()));
  }
  return out;
}

}  // namespace vitq
