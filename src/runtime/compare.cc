// The comparison grid of `vitq compare` (runtime stage): parsing, then quantize + evaluate per
// cell.
#include "vitq/compare.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>

#include "vitq/dist.h"
#include "vitq/qfile.h"
#include "vitq/runtime.h"
#include "vitq/simulate.h"

namespace vitq {
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

// "8" -> (8, uniform), "6mp" / "6MP" -> (6, mixed); an InvalidInput error for anything else.
Result<std::pair<int, bool>> ParseBits(const std::string& s) {
  const bool mixed =
      s.size() > 2 && (s.substr(s.size() - 2) == "mp" || s.substr(s.size() - 2) == "MP");
  try {
    size_t used = 0;
    const int bits = std::stoi(s, &used);
    if (used == s.size() - (mixed ? 2 : 0)) return std::make_pair(bits, mixed);
  } catch (const std::exception&) {
  }
  return Status::InvalidInput("--bits: '" + s +
                              "' is not a bit-width (e.g. 8, or 6mp for mixed precision)");
}

// Applies the "+variant" suffixes of a method entry.
Status ApplyVariants(const std::string& entry, const std::vector<std::string>& parts,
                     QuantizeOptions* q) {
  const bool vitq = q->method == "vitq";
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& v = parts[i];
    if (v == "no-ranking") {
      q->ranking = false;
    } else if (v == "no-bias-correction") {
      q->bias_correction = false;
    } else if (v == "sequential") {
      q->sequential = true;
    } else if (v == "coarse") {
      q->coarse_to_fine = true;
    } else if (vitq && v == "no-per-channel") {
      q->per_channel_weights = false;
    } else if (vitq && v == "no-reparam") {
      q->ln_reparam = false;
    } else if (vitq && v == "no-gptq") {
      q->gptq = false;
    } else if (vitq && v == "no-asym") {
      q->asymmetric = false;
    } else if (vitq && v == "uniform-attn") {
      q->attn_quantizer = "uniform";
    } else if (vitq && v == "tensor-log-attn") {
      q->attn_quantizer = "log-sqrt2";
    } else if (vitq && v == "tensor-fc2") {
      q->fc2_input = "tensor";
    } else if (vitq && v == "image-abits") {
      q->image_bits = 0;
    } else {
      return Status::InvalidInput("--methods: unknown variant '+" + v + "' in '" + entry + "'");
    }
  }
  return Status::Ok();
}

// Writes the plan as a .vitq file in a private temporary directory and loads it back.
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

// The plan of one cell and the seconds its calibration took (cached plans reused).
Result<QuantPlan> QuantizeCell(const ViTModel& model, const CalibrationSet& calib,
                               const CompareCell& cell, PlanCache* cache, double* seconds) {
  QuantizeReport report;
  const auto t0 = std::chrono::steady_clock::now();
  Result<QuantPlan> plan = [&]() -> Result<QuantPlan> {
    if (!cell.mixed) return QuantizeModel(model, calib, cell.q, &report);
    MixedPrecisionReport mpr;
    MixedPrecisionOptions mpo;
    mpo.target_bits = cell.q.wbits;
    mpo.omega = cell.omega;
    return QuantizeMixedPrecision(model, calib, cell.q, mpo, &mpr, &report, cache);
  }();
  if (!plan.ok()) return plan.status();
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (cell.mixed) {
    *seconds = report.total_seconds;  // every candidate's search, cached or not, + Ω table
  } else if (!cell.q.sequential) {
    (*cache)[cell.q.wbits] = CachedPlan{plan.value(), report};
  }
  return plan;
}

// The deployed accuracy of a plan: the integer engine where it runs the plan, else fake-quant.
Result<CompareRow> EvaluateCell(const ViTModel& model, const QuantPlan& plan, const Dataset& data,
                                const EvalOptions& eval) {
  bool on_engine = false;
  QuantizedModel qm;  // the engine refers to it
  std::unique_ptr<IntegerEngine> engine;
  std::unique_ptr<SimulatedModel> sim;
  Status ready = [&]() -> Status {  // no collective inside: every process reaches the Agree
    VITQ_ASSIGN_OR_RETURN(qm, RoundTrip(model, plan));
    on_engine = CheckIntegerPlan(qm.plan, model.spec.config).ok();
    if (on_engine) {
      VITQ_ASSIGN_OR_RETURN(engine, IntegerEngine::Create(qm));
    } else {
      VITQ_ASSIGN_OR_RETURN(sim, SimulatedModel::Create(model, plan));
    }
    return Status::Ok();
  }();
  // In an MPI job: a temporary directory one machine cannot write fails the job once, together.
  VITQ_RETURN_IF_ERROR(dist::Agree(ready));
  VITQ_ASSIGN_OR_RETURN(EvalResult r, EvaluateDataset(
                                          [&](const float* x, int b, float* y) {
                                            if (engine) {
                                              engine->Forward(x, b, y);
                                            } else {
                                              sim->Forward(x, b, y);
                                            }
                                          },
                                          model.spec, data, eval));
  CompareRow row;
  row.top1 = r.top1;
  row.top5 = r.top5;
  row.agreement = r.agreement;
  row.kl = r.kl;
  row.size_mb = ModelSizeBytes(model, plan) / 1e6;
  row.path = on_engine ? "int8" : "fake-quant";
  return row;
}

}  // namespace

std::string CompareCell::BitsLabel() const {
  return std::to_string(q.wbits) +
         (mixed ? (omega == OmegaCriterion::kScaleFree ? "mp-sf" : "mp") : "");
}

Result<std::vector<CompareCell>> ParseCompareGrid(const std::string& methods,
                                                  const std::string& bits,
                                                  const std::string& omegas,
                                                  const QuantizeOptions& base) {
  std::vector<OmegaCriterion> omega_list;
  for (const auto& o : Split(omegas, ',')) {
    auto c = ParseOmegaCriterion(o);
    if (!c.ok()) return Status::InvalidInput("--omega: " + c.status().message());
    omega_list.push_back(c.value());
  }
  if (omega_list.empty()) return Status::InvalidInput("--omega: give paper and/or scale-free");
  std::vector<CompareCell> grid;
  for (const auto& bits_s : Split(bits, ',')) {
    VITQ_ASSIGN_OR_RETURN(auto parsed, ParseBits(bits_s));
    const auto [width, mixed] = parsed;
    for (const auto& entry : Split(methods, ',')) {
      const auto parts = Split(entry, '+');
      CompareCell cell{entry, base, mixed};
      cell.q.method = parts.empty() ? "" : parts[0];
      cell.q.wbits = cell.q.abits = width;
      VITQ_RETURN_IF_ERROR(ApplyVariants(entry, parts, &cell.q));
      VITQ_RETURN_IF_ERROR(cell.q.Validate());
      if (mixed) {
        if (cell.q.method == "vitq") {
          return Status::Usage("--bits " + bits_s +
                               ": mixed precision does not run --method vitq yet");
        }
        MixedPrecisionOptions mp;
        mp.target_bits = width;
        VITQ_RETURN_IF_ERROR(mp.Validate());
        if (cell.q.sequential) {
          return Status::InvalidInput("--bits " + bits_s +
                                      ": mixed precision does not combine with +sequential");
        }
        for (OmegaCriterion o : omega_list) {
          cell.omega = o;
          grid.push_back(cell);
        }
      } else {
        grid.push_back(cell);
      }
    }
  }
  // Uniform cells first: mixed-precision cells reuse their plans.
  std::stable_partition(grid.begin(), grid.end(), [](const CompareCell& c) { return !c.mixed; });
  return grid;
}

namespace {

// One uniform cell of a method that does not run distributed, quantized on one process.
struct SoloCell {
  Status status;
  QuantPlan plan;
  QuantizeReport report;
  double seconds = 0;
};

// In an MPI job: the uniform cells whose method runs on one process (vitq, percentile, omse) are
// dealt round-robin to the processes, each quantizes its cells at once as a 1-process job (on the
// whole calibration set, which every process holds here), and every process receives every
// cell's plan, report and time. The plans equal a 1-process run's: nothing depends on where a cell
// ran. Returns the cells by grid index (empty in a 1-process job, where cells run in order).
Result<std::map<size_t, SoloCell>> QuantizeSoloCells(const ViTModel& model,
                                                     const CalibrationSet& calib,
                                                     const std::vector<CompareCell>& grid) {
  std::map<size_t, SoloCell> cells;
  if (dist::Size() == 1) return cells;
  std::vector<size_t> solo;
  for (size_t i = 0; i < grid.size(); ++i) {
    if (!grid[i].mixed && !QuantizeRunsDistributed(grid[i].q)) solo.push_back(i);
  }
  const int rank = dist::Rank(), size = dist::Size();
  dist::Writer w;
  for (size_t k = static_cast<size_t>(rank); k < solo.size(); k += static_cast<size_t>(size)) {
    CompareCell cell = grid[solo[k]];
    cell.q.quiet = cell.q.quiet || rank != 0;  // rank 0 alone shows progress
    PlanCache none;
    SoloCell out;
    {
      dist::Solo alone;
      Result<QuantPlan> plan = QuantizeCell(model, calib, cell, &none, &out.seconds);
      out.status = plan.status();
      if (plan.ok()) out.plan = std::move(plan).value();
      if (none.count(cell.q.wbits)) out.report = none.at(cell.q.wbits).report;
    }
    w.Pod<uint64_t>(solo[k]);
    dist::PutStatus(&w, out.status);
    if (out.status.ok()) {
      PutPlan(&w, out.plan);
      PutReport(&w, out.report);
      w.Pod(out.seconds);
    }
  }
  const std::vector<std::string> parts = dist::AllGather(w.bytes());
  for (size_t r = 0; r < parts.size(); ++r) {
    dist::Reader rd(parts[r]);
    for (size_t k = r; k < solo.size(); k += parts.size()) {
      const auto index = rd.Pod<uint64_t>();
      SoloCell& c = cells[index];
      c.status = dist::GetStatus(&rd);
      if (!c.status.ok()) continue;
      Result<QuantPlan> plan = GetPlan(&rd, "the plan of rank " + std::to_string(r));
      c.status = plan.status();  // the same on every process: agreed with the cell, in order
      if (!plan.ok()) break;     // the rest of this rank's bytes cannot be read
      c.plan = std::move(plan).value();
      c.report = GetReport(&rd);
      c.seconds = rd.Pod<double>();
    }
  }
  return cells;
}

}  // namespace

Result<CompareResult> RunCompare(const ViTModel& model, const CalibrationSet& calib,
                                 const Dataset& data, const std::vector<CompareCell>& grid,
                                 const CompareOptions& options) {
  CompareResult result;
  EvalOptions eo = options.eval;
  eo.keep_logits = true;
  eo.reference_logits = nullptr;
  eo.label = "fp32";
  Engine engine(model);
  VITQ_ASSIGN_OR_RETURN(EvalResult fr, EvaluateDataset([&](const float* x, int b,
                                                           float* y) { engine.Forward(x, b, y); },
                                                       model.spec, data, eo));
  result.images = fr.images;
  CompareRow fp32{"fp32", "32", fr.top1, fr.top5, 1.0, 0.0, model.NumParams() * 4 / 1e6, 0.0};
  result.rows.push_back(fp32);
  const std::vector<float> ref = std::move(fr.logits);
  VITQ_ASSIGN_OR_RETURN(auto solo, QuantizeSoloCells(model, calib, grid));
  for (size_t i = 0; i < grid.size(); ++i) {
    const CompareCell& cell = grid[i];
    double seconds = 0;
    QuantPlan plan;
    if (auto it = solo.find(i); it != solo.end()) {  // quantized on one of the processes
      // The first failing cell in grid order fails the job, as in a 1-process run (every
      // process holds the same status; Agree makes the failure a joint one).
      VITQ_RETURN_IF_ERROR(dist::Agree(it->second.status));
      plan = std::move(it->second.plan);
      seconds = it->second.seconds;
      if (!cell.q.sequential) result.searches[cell.label][cell.q.wbits] = {plan, it->second.report};
    } else {
      VITQ_ASSIGN_OR_RETURN(
          plan, QuantizeCell(model, calib, cell, &result.searches[cell.label], &seconds));
    }
    EvalOptions qo = options.eval;
    qo.keep_logits = false;
    qo.reference_logits = &ref;
    qo.label = cell.label + " W" + cell.BitsLabel();
    VITQ_ASSIGN_OR_RETURN(CompareRow row, EvaluateCell(model, plan, data, qo));
    row.method = cell.label;
    row.bits = cell.BitsLabel();
    row.calib_seconds = seconds;
    result.rows.push_back(row);
    if (options.on_row) options.on_row(row);
  }
  return result;
}

}  // namespace vitq
