// Mixed precision by nuclear norm (search stage). See include/vitq/mixed_precision.h and
// docs/ARCHITECTURE.md ("Mixed precision").
#include "vitq/mixed_precision.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "methods.h"
#include "pipeline.h"
#include "vitq/dist.h"
#include "vitq/engine.h"
#include "vitq/progress.h"
#include "vitq/simulate.h"

extern "C" void sgesdd_(const char* jobz, const int* m, const int* n, float* a, const int* lda,
                        float* s, float* u, const int* ldu, float* vt, const int* ldvt, float* work,
                        const int* lwork, int* iwork, int* info, size_t jobz_len);

namespace vitq {

double NuclearNorm(const float* a, int rows, int cols) {
  // Row-major A is column-major Aᵀ: same singular values.
  int m = cols, n = rows, lda = cols, ldu = 1, ldvt = 1, info = 0, lwork = -1;
  std::vector<float> copy(a, a + static_cast<size_t>(rows) * cols);
  std::vector<float> s(std::min(rows, cols));
  std::vector<int> iwork(8 * std::min(rows, cols));
  float query = 0, u = 0, vt = 0;
  sgesdd_("N", &m, &n, copy.data(), &lda, s.data(), &u, &ldu, &vt, &ldvt, &query, &lwork,
          iwork.data(), &info, 1);
  lwork = static_cast<int>(query) + 1;
  std::vector<float> work(lwork);
  sgesdd_("N", &m, &n, copy.data(), &lda, s.data(), &u, &ldu, &vt, &ldvt, work.data(), &lwork,
          iwork.data(), &info, 1);
  VITQ_CHECK(info == 0, "sgesdd failed with info " + std::to_string(info));
  double sum = 0;
  for (float v : s) sum += v;
  return sum;
}

Result<std::vector<int>> SolveKnapsack(const std::vector<KnapsackItem>& items, int64_t budget,
                                       std::vector<double>* best_by_budget) {
  const double inf = std::numeric_limits<double>::infinity();
  if (budget < 0) return Status::InvalidInput("negative budget");
  const size_t width = static_cast<size_t>(budget) + 1;
  // dp[j]: least value with total cost exactly j after the items so far; choice per item.
  std::vector<double> dp(width, inf), next(width);
  std::vector<std::vector<int16_t>> choice(items.size(), std::vector<int16_t>(width, -1));
  dp[0] = 0;
  int64_t cheapest = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const KnapsackItem& it = items[i];
    cheapest += *std::min_element(it.cost.begin(), it.cost.end());
    std::fill(next.begin(), next.end(), inf);
    for (size_t j = 0; j < width; ++j) {
      if (dp[j] == inf) continue;
      for (size_t c = 0; c < it.cost.size(); ++c) {
        const size_t k = j + static_cast<size_t>(it.cost[c]);
        if (k >= width) continue;
        const double v = dp[j] + it.value[c];
        if (v < next[k]) {
          next[k] = v;
          choice[i][k] = static_cast<int16_t>(c);
        }
      }
    }
    dp.swap(next);
  }
  if (best_by_budget != nullptr) *best_by_budget = dp;
  size_t best = width;
  for (size_t j = 0; j < width; ++j) {
    if (dp[j] < inf && (best == width || dp[j] < dp[best])) best = j;
  }
  if (best == width) {
    return Status::InvalidInput("no configuration fits the budget of " + std::to_string(budget) +
                                " units (the cheapest needs " + std::to_string(cheapest) + ")");
  }
  std::vector<int> picks(items.size());
  size_t j = best;
  for (size_t i = items.size(); i-- > 0;) {
    picks[i] = choice[i][j];
    j -= static_cast<size_t>(items[i].cost[picks[i]]);
  }
  return picks;
}

const char* OmegaCriterionName(OmegaCriterion c) {
  return c == OmegaCriterion::kPaper ? "paper" : "scale-free";
}

Result<OmegaCriterion> ParseOmegaCriterion(const std::string& name) {
  if (name == "paper") return OmegaCriterion::kPaper;
  if (name == "scale-free") return OmegaCriterion::kScaleFree;
  return Status::InvalidInput("unknown Ω criterion '" + name + "' (expected paper or scale-free)");
}

Status MixedPrecisionOptions::Validate() const {
  for (int b : candidates) {
    if (b < 2 || b > 8) {
      return Status::InvalidInput("mixed precision: candidate bit-width " + std::to_string(b) +
                                  " outside 2-8");
    }
  }
  if (target_bits == 0 && target_size_mb <= 0)
    return Status::InvalidInput("mixed precision needs --target-bits or --target-size-mb");
  if (target_bits != 0 && (target_bits < 2 || target_bits > 8))
    return Status::InvalidInput("--target-bits " + std::to_string(target_bits) + " outside 2-8");
  if (target_bits != 0 && target_size_mb > 0)
    return Status::InvalidInput("give --target-bits or --target-size-mb, not both");
  if (candidates.empty() && target_bits == 0)
    return Status::InvalidInput("--target-size-mb needs --candidates (e.g. 4,5,6,7,8)");
  return Status::Ok();
}

std::vector<int> MixedPrecisionOptions::Candidates() const {
  std::vector<int> c = candidates;
  if (c.empty()) {
    for (int b = target_bits - 2; b <= target_bits + 2; ++b)
      if (b >= 2 && b <= 8) c.push_back(b);
  }
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

namespace {

struct Module {
  std::string name;  // "blocks.3.attn" / "blocks.3.mlp"
  int block = 0;
  bool attn = true;
  int64_t params = 0;
};

bool InModule(const std::string& site_or_layer, const Module& m) {
  return site_or_layer.rfind(m.name + ".", 0) == 0;
}

// The plan's sites and biases whose names start with one of `prefixes`.
QuantPlan Subplan(const QuantPlan& plan, const std::vector<std::string>& prefixes,
                  bool weights_only) {
  QuantPlan p;
  p.method = plan.method;
  auto keep = [&](const std::string& n) {
    for (const auto& pre : prefixes)
      if (n.rfind(pre, 0) == 0) return true;
    return false;
  };
  for (const auto& [n, sp] : plan.sites) {
    if (!keep(n)) continue;
    if (weights_only && !IsWeightSite(n)) continue;
    p.sites[n] = sp;
  }
  for (const auto& [n, b] : plan.biases)
    if (keep(n)) p.biases[n] = b;
  return p;
}

// `plan`'s sites and biases under blocks.<block>. renamed to blocks.0. (for a one-block model).
QuantPlan AsBlockZero(const QuantPlan& plan, int block) {
  const std::string from = "blocks." + std::to_string(block) + ".";
  QuantPlan p;
  p.method = plan.method;
  for (const auto& [n, sp] : plan.sites)
    if (n.rfind(from, 0) == 0) p.sites["blocks.0." + n.substr(from.size())] = sp;
  for (const auto& [n, b] : plan.biases)
    if (n.rfind(from, 0) == 0) p.biases["blocks.0." + n.substr(from.size())] = b;
  return p;
}

// Captures block `block`'s P (after any fake quantization before it) and fc2 output.
class ModuleCapture : public Observer {
 public:
  explicit ModuleCapture(int block) : block_(block) {}
  bool Wants(const Site& s) const override {
    return s.block == block_ && ((s.layer == SiteLayer::kPv && s.role == SiteRole::kA) ||
                                 (s.layer == SiteLayer::kFc2 && s.role == SiteRole::kOut));
  }
  void Observe(const Site& s, TensorView t) override {
    (s.layer == SiteLayer::kPv ? p : out).assign(t.data, t.data + t.size());
  }
  std::vector<float> p, out;

 private:
  int block_;
};

double SumOfSquares(const std::vector<float>& a) {
  double s = 0;
  for (float v : a) s += static_cast<double>(v) * v;
  return s;
}

double SquaredDistance(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return s;
}

// The modules (each block's MSA and MLP) and the size budget in bits: every parameter outside
// the linear layers at fp32, patch_embed and the head(s) at the top candidate.
struct Budget {
  std::vector<Module> modules;
  int64_t other_bits = 0, fixed_bits = 0, budget_bits = 0, min_bits = 0;
};
Result<Budget> MakeBudget(const ViTModel& model, const MixedPrecisionOptions& mp,
                          const std::vector<int>& cand) {
  const ViTConfig& c = model.spec.config;
  const int top = cand.back();
  Budget out;
  std::vector<Module>& modules = out.modules;
  for (int i = 0; i < c.depth; ++i) {
    const std::string p = "blocks." + std::to_string(i);
    const int64_t d = c.embed_dim;
    modules.push_back({p + ".attn", i, true, 4 * d * d});
    modules.push_back({p + ".mlp", i, false, 2 * d * c.mlp_hidden});
  }
  int64_t linear = 0;
  for (const auto& [name, shape] : LinearShapes(c)) linear += shape[0] * shape[1];
  int64_t module_params = 0;
  for (const auto& m : modules) module_params += m.params;
  const int64_t fixed_params = linear - module_params;  // patch_embed, head(s)
  out.other_bits = (model.NumParams() - linear) * 32;
  out.fixed_bits = fixed_params * top;
  out.budget_bits = mp.target_bits > 0 ? out.other_bits + linear * mp.target_bits
                                       : static_cast<int64_t>(std::floor(mp.target_size_mb * 8e6));
  out.min_bits = out.other_bits + out.fixed_bits + module_params * cand.front();
  if (out.budget_bits < out.min_bits) {
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "mixed precision: the budget of %.3f MB is below the smallest model the "
                  "candidates allow (%.3f MB: every module at %d bits, patch_embed and head at %d)",
                  out.budget_bits / 8e6, out.min_bits / 8e6, cand.front(), top);
    return Status::InvalidInput(msg);
  }
  return out;
}

// The uniform searches at every candidate bit-width (float inputs) that `cache` lacks.
Status RunUniformSearches(const ViTModel& model, const CalibrationSet& calib,
                          const QuantizeOptions& options, const std::vector<int>& cand,
                          PlanCache* cache) {
  for (int b : cand) {
    if (cache->count(b)) continue;
    QuantizeOptions o = options;
    o.wbits = o.abits = b;
    o.module_bits.clear();
    CachedPlan cp;
    VITQ_ASSIGN_OR_RETURN(cp.plan, QuantizeModel(model, calib, o, &cp.report));
    cache->emplace(b, std::move(cp));
  }
  return Status::Ok();
}

// The terms of Ω per module and candidate: the nuclear norm of the float output Y (P for an
// MSA, fc2's output for an MLP), its squared Frobenius norm, and ||Ŷ(b) - Y||² with only that
// module quantized at b (weights and activation sites), all means over the calibration images.
struct OmegaTerms {
  std::vector<double> nuc, frob2;
  std::vector<std::vector<double>> err;  // [module][candidate]
};
Result<OmegaTerms> MeasureOmegaTerms(const ViTModel& model, const CalibrationSet& calib,
                                     const QuantizeOptions& options,
                                     const std::vector<Module>& modules,
                                     const std::vector<int>& cand, const PlanCache& cache) {
  const ViTConfig& c = model.spec.config;
  Engine float_engine(model);
  const int n_img = static_cast<int>(calib.items.size());
  const int t = c.num_tokens(), d = c.embed_dim, heads = c.num_heads;
  const int64_t img_floats = static_cast<int64_t>(c.in_chans) * c.img_size * c.img_size;
  const int64_t x_floats = static_cast<int64_t>(t) * d;
  std::vector<float> x(static_cast<size_t>(n_img) * x_floats);
  const int batch = std::max(1, options.batch);
  for (int s = 0; s < n_img; s += batch) {
    const int nb = std::min(batch, n_img - s);
    float_engine.Embed(calib.images.data() + s * img_floats, nb, x.data() + s * x_floats);
  }
  const size_t nm = modules.size(), nc = cand.size();
  OmegaTerms terms;
  std::vector<double>& nuc = terms.nuc;
  std::vector<double>& frob2 = terms.frob2;
  std::vector<std::vector<double>>& err = terms.err;
  nuc.assign(nm, 0.0);
  frob2.assign(nm, 0.0);
  err.assign(nm, std::vector<double>(nc, 0.0));
  ProgressBar bar("mixed precision: Ω table", c.depth, "blocks/s", options.quiet);
  std::vector<float> xf, xq;
  for (int bi = 0; bi < c.depth; ++bi) {
    const size_t ma = 2 * bi, ml = 2 * bi + 1;
    // Per candidate, this block alone as a one-block model (blocks.0) with its MSA's or its
    // MLP's weights quantized, and the activation sites of that module alone: one block per
    // candidate and module in memory, never a whole model copy.
    std::vector<QuantPlan> attn_sites(nc), mlp_sites(nc);
    std::vector<ViTModel> attn_models(nc), mlp_models(nc);
    std::vector<std::unique_ptr<Engine>> attn_engines(nc), mlp_engines(nc);
    const ViTModel block = CloneModel(model, bi);
    for (size_t ci = 0; ci < nc; ++ci) {
      const QuantPlan& plan = cache.at(cand[ci]).plan;
      attn_sites[ci] = AsBlockZero(Subplan(plan, {modules[ma].name + "."}, false), bi);
      mlp_sites[ci] = AsBlockZero(Subplan(plan, {modules[ml].name + "."}, false), bi);
      VITQ_ASSIGN_OR_RETURN(
          attn_models[ci],
          ApplyPlanToWeights(block,
                             AsBlockZero(Subplan(plan, {modules[ma].name + "."}, true), bi)));
      VITQ_ASSIGN_OR_RETURN(
          mlp_models[ci],
          ApplyPlanToWeights(block,
                             AsBlockZero(Subplan(plan, {modules[ml].name + "."}, true), bi)));
      attn_engines[ci] = std::make_unique<Engine>(attn_models[ci]);
      mlp_engines[ci] = std::make_unique<Engine>(mlp_models[ci]);
    }
    for (int s = 0; s < n_img; s += batch) {
      const int nb = std::min(batch, n_img - s);
      float* xs = x.data() + s * x_floats;
      ModuleCapture ref(bi);
      xf.assign(xs, xs + nb * x_floats);
      float_engine.Block(bi, xf.data(), nb, &ref);
      // Nuclear norms: P per head and image (T x T), the MLP output per image (T x D).
      std::vector<double> nuc_p(static_cast<size_t>(nb) * heads), nuc_o(nb);
#pragma omp parallel for schedule(dynamic)
      for (int k = 0; k < nb * heads; ++k)
        nuc_p[k] = NuclearNorm(ref.p.data() + static_cast<int64_t>(k) * t * t, t, t);
#pragma omp parallel for schedule(dynamic)
      for (int k = 0; k < nb; ++k) nuc_o[k] = NuclearNorm(ref.out.data() + k * x_floats, t, d);
      for (double v : nuc_p) nuc[ma] += v / (static_cast<double>(n_img) * heads);
      for (double v : nuc_o) nuc[ml] += v / n_img;
      frob2[ma] += SumOfSquares(ref.p) / (static_cast<double>(n_img) * heads);
      frob2[ml] += SumOfSquares(ref.out) / n_img;
      for (size_t ci = 0; ci < nc; ++ci) {
        ModuleCapture qa(0), qm(0);
        FakeQuantObserver oa(attn_sites[ci], &qa), om(mlp_sites[ci], &qm);
        xq.assign(xs, xs + nb * x_floats);
        attn_engines[ci]->Block(0, xq.data(), nb, &oa);
        xq.assign(xs, xs + nb * x_floats);
        mlp_engines[ci]->Block(0, xq.data(), nb, &om);
        err[ma][ci] += SquaredDistance(qa.p, ref.p) / (static_cast<double>(n_img) * heads);
        err[ml][ci] += SquaredDistance(qm.out, ref.out) / n_img;
      }
      std::copy(xf.begin(), xf.end(), xs);
    }
    bar.Add(1);
  }
  bar.Finish();
  return terms;
}

// The exact optimum of Σ Ω under the budget, in units of the modules' gcd (report->omega gets
// every module's Ω per candidate).
struct Choice {
  std::vector<int> picks;     // per module, the index of its candidate
  std::vector<double> curve;  // least Σ Ω per size in units
  int64_t unit_bits = 0;      // the unit (gcd of the module sizes)
};
Result<Choice> ChooseBits(const Budget& budget, const OmegaTerms& terms,
                          const std::vector<int>& cand, OmegaCriterion omega,
                          MixedPrecisionReport* report) {
  const std::vector<Module>& modules = budget.modules;
  const size_t nm = modules.size(), nc = cand.size();
  Choice out;
  int64_t& g = out.unit_bits;
  for (const auto& m : modules) g = std::gcd(g, m.params);
  std::vector<KnapsackItem> items(nm);
  report->omega.assign(nm, std::vector<double>(nc));
  for (size_t i = 0; i < nm; ++i) {
    // Scale-free: Y/s and Ŷ/s with s = sqrt(frob2) scale the nuclear norm by 1/s, the squared
    // error by 1/s².
    const double norm = omega == OmegaCriterion::kScaleFree && terms.frob2[i] > 0
                            ? 1.0 / (terms.frob2[i] * std::sqrt(terms.frob2[i]))
                            : 1.0;
    for (size_t ci = 0; ci < nc; ++ci) {
      items[i].cost.push_back(modules[i].params / g * cand[ci]);
      items[i].value.push_back(terms.nuc[i] * terms.err[i][ci] * norm);
      report->omega[i][ci] = items[i].value.back();
    }
  }
  const int64_t budget_units = (budget.budget_bits - budget.other_bits - budget.fixed_bits) / g;
  VITQ_ASSIGN_OR_RETURN(out.picks, SolveKnapsack(items, budget_units, &out.curve));
  return out;
}

// The combined plan (each module's sites and biases from the plan of its chosen bit-width,
// the rest from the top candidate's) and the reports.
QuantPlan CombinePlans(const Budget& budget, const std::vector<int>& cand, const Choice& choice,
                       const OmegaTerms& terms, const PlanCache& cache,
                       const MixedPrecisionOptions& mp, MixedPrecisionReport* report,
                       QuantizeReport* qreport) {
  const std::vector<Module>& modules = budget.modules;
  const std::vector<int>& picks = choice.picks;
  const size_t nm = modules.size();
  const int top = cand.back();
  const CachedPlan& topc = cache.at(top);
  QuantPlan out = topc.plan;
  report->modules.clear();
  report->bits.clear();
  report->params.clear();
  int64_t module_bits_total = 0;
  for (size_t i = 0; i < nm; ++i) {
    const int b = cand[picks[i]];
    const QuantPlan& src = cache.at(b).plan;
    for (auto it = out.sites.begin(); it != out.sites.end(); ++it)
      if (InModule(it->first, modules[i])) it->second = src.sites.at(it->first);
    for (auto it = out.biases.begin(); it != out.biases.end();)
      it = InModule(it->first, modules[i]) ? out.biases.erase(it) : std::next(it);
    for (const auto& [layer, bias] : src.biases)
      if (InModule(layer, modules[i])) out.biases[layer] = bias;
    report->modules.push_back(modules[i].name);
    report->params.push_back(modules[i].params);
    report->bits.push_back(b);
    module_bits_total += modules[i].params * b;
  }
  report->candidates = cand;
  report->criterion = mp.omega;
  report->nuclear_norm = terms.nuc;
  report->frobenius2 = terms.frob2;
  report->error = terms.err;
  report->size_bytes = (budget.other_bits + budget.fixed_bits + module_bits_total) / 8;
  report->total_omega = 0;
  for (size_t i = 0; i < nm; ++i) report->total_omega += report->omega[i][picks[i]];
  report->pareto.clear();
  double best = std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < choice.curve.size(); ++j) {
    if (choice.curve[j] < best) {
      best = choice.curve[j];
      report->pareto.emplace_back(
          (budget.other_bits + budget.fixed_bits + static_cast<int64_t>(j) * choice.unit_bits) / 8,
          best);
    }
  }
  nlohmann::ordered_json opts = nlohmann::ordered_json::parse(out.options_json);
  opts["mixed_precision"] = {{"omega", OmegaCriterionName(mp.omega)},
                             {"candidates", cand},
                             {"target_bits", mp.target_bits},
                             {"target_size_mb", mp.target_size_mb}};
  opts.erase("wbits");
  opts.erase("abits");
  out.options_json = opts.dump();
  if (qreport != nullptr) {
    *qreport = topc.report;
    qreport->ops.clear();
    qreport->search_seconds = qreport->capture_seconds = 0;
    for (int b : cand) {
      qreport->search_seconds += cache.at(b).report.search_seconds;
      qreport->capture_seconds += cache.at(b).report.capture_seconds;
    }
    for (const auto& op : topc.report.ops) {
      int b = top;
      for (size_t i = 0; i < nm; ++i)
        if (InModule(op.layer, modules[i])) b = cand[picks[i]];
      for (const auto& o : cache.at(b).report.ops)
        if (o.layer == op.layer) qreport->ops.push_back(o);
    }
    qreport->total_seconds =
        qreport->search_seconds + qreport->capture_seconds + report->table_seconds;
  }
  return out;
}

}  // namespace

namespace {
// The options' checks, then the budget: what every process can compute alone, before any search.
Result<Budget> PlanMixedPrecision(const ViTModel& model, const QuantizeOptions& options,
                                  const MixedPrecisionOptions& mp) {
  VITQ_RETURN_IF_ERROR(options.Validate());
  if (search::FindMethod(options.method)->pipeline != nullptr) {
    return Status::Usage(
        "mixed precision runs with the per-operation methods (liu2021 and the "
        "baselines); --method " +
        options.method + " does not support it yet");
  }
  VITQ_RETURN_IF_ERROR(mp.Validate());
  if (options.sequential) {
    return Status::InvalidInput(
        "mixed precision combines searches made on float inputs; --sequential is not supported");
  }
  return MakeBudget(model, mp, mp.Candidates());
}

Result<QuantPlan> MixedPrecisionAlone(const ViTModel& model, const CalibrationSet& calib,
                                      const QuantizeOptions& options,
                                      const MixedPrecisionOptions& mp, MixedPrecisionReport* report,
                                      QuantizeReport* qreport, PlanCache* cache) {
  using Clock = std::chrono::steady_clock;
  VITQ_ASSIGN_OR_RETURN(Budget budget, PlanMixedPrecision(model, options, mp));
  const std::vector<int> cand = mp.Candidates();
  report->uniform_min_bytes = budget.min_bits / 8;
  report->budget_bytes = budget.budget_bits / 8;
  VITQ_RETURN_IF_ERROR(RunUniformSearches(model, calib, options, cand, cache));
  const auto t0 = Clock::now();
  VITQ_ASSIGN_OR_RETURN(OmegaTerms terms,
                        MeasureOmegaTerms(model, calib, options, budget.modules, cand, *cache));
  report->table_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  VITQ_ASSIGN_OR_RETURN(Choice choice, ChooseBits(budget, terms, cand, mp.omega, report));
  return CombinePlans(budget, cand, choice, terms, *cache, mp, report, qreport);
}
}  // namespace

// In an MPI job the uniform searches of a method that splits its images (liu2021, easyquant,
// minmax) run first on every process, each on its block; the Ω table, the choice and the
// combination then run on rank 0 alone (search::OnRootAlone), and every process receives the
// plan. Options the checks refuse go straight to rank 0, which returns the error.
Result<QuantPlan> QuantizeMixedPrecision(const ViTModel& model, const CalibrationSet& calib,
                                         const QuantizeOptions& options,
                                         const MixedPrecisionOptions& mp,
                                         MixedPrecisionReport* report, QuantizeReport* qreport,
                                         PlanCache* cache) {
  PlanCache local;
  if (cache == nullptr) cache = &local;
  if (dist::Size() > 1 && PlanMixedPrecision(model, options, mp).ok() &&
      QuantizeRunsDistributed(options)) {
    VITQ_RETURN_IF_ERROR(RunUniformSearches(model, calib, options, mp.Candidates(), cache));
  }
  return search::OnRootAlone([&]() -> Result<QuantPlan> {
    return MixedPrecisionAlone(model, calib, options, mp, report, qreport, cache);
  });
}

std::string MixedPrecisionReport::ToJson() const {
  nlohmann::ordered_json j;
  j["omega_criterion"] = OmegaCriterionName(criterion);
  j["candidates"] = candidates;
  j["budget_bytes"] = budget_bytes;
  j["size_bytes"] = size_bytes;
  j["smallest_bytes"] = uniform_min_bytes;
  j["total_omega"] = total_omega;
  j["table_seconds"] = table_seconds;
  nlohmann::ordered_json mods = nlohmann::ordered_json::array();
  for (size_t i = 0; i < modules.size(); ++i) {
    mods.push_back({{"module", modules[i]},
                    {"params", params[i]},
                    {"bits", bits[i]},
                    {"nuclear_norm", nuclear_norm[i]},
                    {"frobenius2", frobenius2[i]},
                    {"error", error[i]},
                    {"omega", omega[i]}});
  }
  j["modules"] = mods;
  nlohmann::ordered_json curve = nlohmann::ordered_json::array();
  for (const auto& [bytes, om] : pareto) curve.push_back({{"size_bytes", bytes}, {"omega", om}});
  j["pareto"] = curve;
  return j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string MixedPrecisionReport::ParetoSvg() const {
  const double w = 640, h = 400, ml = 80, mr = 20, mt = 30, mb = 50;
  if (pareto.empty()) return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n";
  const double x0 = pareto.front().first / 1e6, x1 = pareto.back().first / 1e6;
  double y0 = pareto.back().second, y1 = pareto.front().second;
  const double ly0 = std::log10(std::max(y0, 1e-30)), ly1 = std::log10(std::max(y1, 1e-30));
  auto px = [&](double mb_) {
    return ml + (x1 > x0 ? (mb_ - x0) / (x1 - x0) : 0.5) * (w - ml - mr);
  };
  auto py = [&](double v) {
    const double lv = std::log10(std::max(v, 1e-30));
    return mt + (ly1 > ly0 ? (ly1 - lv) / (ly1 - ly0) : 0.5) * (h - mt - mb);
  };
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n",
                w, h);
  s += buf;
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.0f\" y=\"18\" text-anchor=\"middle\">mixed precision: least "
                "&#931; &#937; by model size</text>\n",
                w / 2);
  s += buf;
  std::snprintf(buf, sizeof buf,
                "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n"
                "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n",
                ml, h - mb, w - mr, h - mb, ml, mt, ml, h - mb);
  s += buf;
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">model size (MB): %.3f .. "
                "%.3f</text>\n<text x=\"14\" y=\"%.0f\" transform=\"rotate(-90 14 %.0f)\" "
                "text-anchor=\"middle\">&#931; &#937; (log): %.3g .. %.3g</text>\n",
                (ml + w - mr) / 2, h - 15, x0, x1, (mt + h - mb) / 2, (mt + h - mb) / 2, y0, y1);
  s += buf;
  s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"";
  for (const auto& [bytes, om] : pareto) {
    std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(bytes / 1e6), py(om));
    s += buf;
  }
  s += "\"/>\n";
  std::snprintf(buf, sizeof buf,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#d62728\"/>\n<text x=\"%.1f\" "
                "y=\"%.1f\">chosen (%.3f MB)</text>\n",
                px(size_bytes / 1e6), py(total_omega), px(size_bytes / 1e6) + 8,
                py(total_omega) - 8, size_bytes / 1e6);
  s += buf;
  s += "</svg>\n";
  return s;
}

}  // namespace vitq
