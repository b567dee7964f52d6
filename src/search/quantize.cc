// The quantization pipeline (search stage): calibration images -> float (or quantized-prefix)
// captures per block -> per-operation method -> QuantPlan + report. Memory stays bounded: only the
// residual stream of all calibration images and the captures of one block are held at a time.
#include "vitq/quantize.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "methods.h"
#include "pipeline.h"
#include "vitq/dist.h"
#include "vitq/engine.h"
#include "vitq/progress.h"
#include "vitq/simulate.h"

namespace vitq {
using search::CaptureObserver;
using search::Clock;
using search::Since;

namespace search {
std::string ModuleOf(const std::string& layer) {
  if (layer.rfind("blocks.", 0) == 0) {
    size_t dot = layer.find('.', 7);
    std::string block = layer.substr(0, dot);
    return block + (layer.find(".attn.") != std::string::npos ? ".attn" : ".mlp");
  }
  return layer == "patch_embed.proj" ? "patch_embed" : layer;  // head, head_dist
}

QuantPlan NewPlan(const ViTModel& model, const CalibrationSet& calib, const QuantizeOptions& opts) {
  QuantPlan plan;
  plan.method = opts.method;
  nlohmann::json o = {{"wbits", opts.wbits}, {"abits", opts.abits}};
  if (FindMethod(opts.method)->pipeline == nullptr) {
    o.update({{"sequential", opts.sequential},
              {"ranking", opts.ranking},
              {"bias_correction", opts.bias_correction},
              {"candidates", opts.candidates},
              {"max_rounds", opts.max_rounds},
              {"coarse_to_fine", opts.coarse_to_fine}});
  } else {
    o.update({{"per_channel_weights", opts.per_channel_weights},
              {"ln_reparam", opts.ln_reparam},
              {"gptq", opts.gptq},
              {"asymmetric", opts.asymmetric},
              {"attn_quantizer", opts.attn_quantizer},
              {"fc2_input", opts.fc2_input},
              {"image_bits", opts.image_bits}});
    if (opts.reconstruct) {
      o["reconstruct"] = {{"iters", opts.recon_iters},
                          {"batch", opts.recon_batch},
                          {"drop", opts.recon_drop},
                          {"steps", opts.recon_steps},
                          {"round_weight", opts.recon_round_weight},
                          {"lr", opts.recon_lr},
                          {"step_lr", opts.recon_step_lr},
                          {"augment", opts.recon_augment}};
    }
  }
  if (!opts.module_bits.empty()) {
    o["module_bits"] = std::map<std::string, int>(opts.module_bits.begin(), opts.module_bits.end());
  }
  plan.options_json = o.dump();
  plan.seed = opts.seed;
  plan.calib_dir = calib.dir;
  plan.calib_size = static_cast<int>(calib.items.size());
  plan.calib_hash = calib.hash;
  plan.tool_version = VITQ_VERSION_STRING;
  plan.architecture = model.spec.config.architecture;
  return plan;
}
}  // namespace search

const std::vector<std::string>& MethodNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& m : search::Methods()) n.push_back(m.name);
    return n;
  }();
  return names;
}

Status QuantizeOptions::Validate() const {
  if (search::FindMethod(method) == nullptr) {
    std::string list;
    for (const auto& n : MethodNames()) list += (list.empty() ? "" : ", ") + n;
    return Status::InvalidInput("unknown method '" + method + "' (available: " + list + ")");
  }
  if (wbits < 2 || wbits > 8)
    return Status::InvalidInput("--wbits " + std::to_string(wbits) +
                                ": weight bits outside 2-8 (the allowed range)");
  if (abits < 2 || abits > 8)
    return Status::InvalidInput("--abits " + std::to_string(abits) +
                                ": activation bits outside 2-8 (the allowed range)");
  for (const auto& [m, b] : module_bits) {
    if (b < 2 || b > 8)
      return Status::InvalidInput("module '" + m + "': bit-width " + std::to_string(b) +
                                  " outside 2-8");
  }
  if (image_bits != 0 && (image_bits < 2 || image_bits > 8))
    return Status::Usage("--image-bits " + std::to_string(image_bits) +
                         ": bits of the image input outside 2-8 (or 0 for --abits)");
  if (calib_size < 1) return Status::InvalidInput("calibration size must be at least 1");
  if (attn_quantizer != "auto" && attn_quantizer != "uniform" && attn_quantizer != "log-sqrt2" &&
      attn_quantizer != "log-sqrt2-row" && attn_quantizer != "uniform-row") {
    return Status::Usage("--attn-quantizer '" + attn_quantizer +
                         "': expected auto, uniform, uniform-row, log-sqrt2 or log-sqrt2-row");
  }
  if (fc2_input != "auto" && fc2_input != "tensor" && fc2_input != "token") {
    return Status::Usage("--fc2-input '" + fc2_input + "': expected auto, tensor or token");
  }
  if (resume && !reconstruct)
    return Status::Usage(
        "--resume continues an interrupted --reconstruct run; --reconstruct is "
        "not given");
  if (reconstruct) {
    if (method != "vitq") {
      return Status::Usage(
          "--reconstruct: block reconstruction is part of --method vitq, not of "
          "--method " +
          method);
    }
    if (recon_iters < 1)
      return Status::Usage("--recon-iters " + std::to_string(recon_iters) +
                           ": at least 1 optimizer step per block is needed");
    if (recon_batch < 1)
      return Status::Usage("--recon-batch " + std::to_string(recon_batch) +
                           ": at least 1 image per step is needed");
    if (!(recon_drop >= 0.0 && recon_drop <= 1.0))
      return Status::Usage("--recon-drop " + std::to_string(recon_drop) +
                           ": a probability must lie in [0, 1]");
    if (!(recon_round_weight >= 0.0) || !std::isfinite(recon_round_weight))
      return Status::Usage("--recon-round-weight: expected a finite value >= 0");
    if (!(recon_lr > 0.0) || !std::isfinite(recon_lr))
      return Status::Usage("--recon-lr: expected a finite value > 0");
    if (!(recon_step_lr > 0.0) || !std::isfinite(recon_step_lr))
      return Status::Usage("--recon-step-lr: expected a finite value > 0");
    if (recon_augment < 0 || recon_augment > 64)
      return Status::Usage("--recon-augment " + std::to_string(recon_augment) +
                           ": expected 0-64 extra copies per image");
  }
  if (candidates < 1 || max_rounds < 1)
    return Status::InvalidInput("candidates and rounds must be positive");
  return Status::Ok();
}

int QuantizeOptions::CoarseStep() const {
  if (!coarse_to_fine) return 0;
  int s = 1;
  while (s * s < candidates) ++s;
  return s;
}

std::string QuantizeReport::ToJson() const {
  nlohmann::ordered_json j;
  j["calib_images"] = calib_images;
  j["calib_hash"] = calib_hash;
  j["seconds"] = {{"load", load_seconds},
                  {"capture", capture_seconds},
                  {"search", search_seconds},
                  {"total", total_seconds}};
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& o : ops) {
    rows.push_back({{"layer", o.layer},
                    {"bits_w", o.bits_w},
                    {"bits_x", o.bits_x},
                    {"scale_w", o.scale_w},
                    {"scale_x", o.scale_x},
                    {"similarity_before", o.similarity_before},
                    {"similarity_after", o.similarity_after},
                    {"ranking_before", o.ranking_before},
                    {"ranking_after", o.ranking_after},
                    {"sqnr_db", o.sqnr_db},
                    {"bias_shift", o.bias_shift},
                    {"rounds", o.rounds},
                    {"evaluations", o.evaluations},
                    {"seconds", o.seconds}});
  }
  j["ops"] = rows;
  if (!reconstruction.empty()) {
    nlohmann::ordered_json rec = nlohmann::ordered_json::array();
    for (const auto& r : reconstruction) {
      rec.push_back({{"block", r.block},
                     {"loss_init", r.loss_init},
                     {"loss_learned", r.loss_learned},
                     {"loss_final", r.loss_final},
                     {"kept_init", r.kept_init},
                     {"seconds", r.seconds}});
    }
    j["reconstruction"] = rec;
  }
  return j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {
Result<CalibrationSet> LoadCalibrationImages(const ModelSpec& spec, const std::string& dir,
                                             int count, uint64_t seed, bool quiet, bool shard) {
  VITQ_ASSIGN_OR_RETURN(Dataset ds, OpenImageFolder(dir));
  if (static_cast<size_t>(count) > ds.items.size()) {
    return Status::InvalidInput("calibration folder '" + dir + "' has " +
                                std::to_string(ds.items.size()) +
                                " images, fewer than --calib-size " + std::to_string(count));
  }
  CalibrationSet cs;
  VITQ_ASSIGN_OR_RETURN(cs.items, SampleItems(ds, count, seed));
  cs.dir = dir;
  cs.hash = HashItemList(cs.items);
  const dist::Range held = shard ? dist::MyShard(count) : dist::Range{0, count};
  cs.first = static_cast<int>(held.begin);
  const size_t per =
      static_cast<size_t>(3) * spec.preprocess.crop_height * spec.preprocess.crop_width;
  cs.images.resize(per * held.size());
  ProgressBar bar("calib images", count, "img/s", quiet);
  std::vector<char> ok;
  std::vector<std::string> errors;
  for (int64_t b = held.begin; b < held.end; b += 32) {
    int n = static_cast<int>(std::min<int64_t>(32, held.end - b));
    LoadBatch(cs.items, b, n, spec.preprocess, cs.images.data() + per * (b - held.begin), &ok,
              &errors);
    for (int i = 0; i < n; ++i) {
      if (!ok[i]) return Status::InvalidInput(errors[i] + " (calibration image)");
    }
    bar.Add(n * count / std::max<int64_t>(1, held.size()));
  }
  return cs;
}
}  // namespace

Result<CalibrationSet> LoadCalibrationSet(const ModelSpec& spec, const std::string& dir, int count,
                                          uint64_t seed, bool quiet, bool shard) {
  Result<CalibrationSet> cs = LoadCalibrationImages(spec, dir, count, seed, quiet, shard);
  // In an MPI job: the first failing image in order, on every process (no process waits alone).
  VITQ_RETURN_IF_ERROR(dist::Agree(cs.status()));
  return cs;
}

bool QuantizeRunsDistributed(const QuantizeOptions& options) {
  const search::MethodInfo* m = search::FindMethod(options.method);
  return m != nullptr && m->distributed;
}

void PutPlan(dist::Writer* w, const QuantPlan& plan) {
  w->Str(PlanToJson(plan));
  w->Pod<uint64_t>(plan.tensors.size());
  for (const auto& [name, values] : plan.tensors) {
    w->Str(name);
    w->Vec(values);
  }
}

Result<QuantPlan> GetPlan(dist::Reader* r, const std::string& what) {
  VITQ_ASSIGN_OR_RETURN(QuantPlan plan, PlanFromJson(r->Str(), what));
  for (uint64_t i = r->Pod<uint64_t>(); i > 0; --i) {
    std::string name = r->Str();
    plan.tensors[name] = r->Vec<float>();
  }
  return plan;
}

void PutReport(dist::Writer* w, const QuantizeReport& report) {
  w->Pod<uint64_t>(report.ops.size());
  for (const OpReport& o : report.ops) {
    w->Str(o.layer);
    for (int v : {o.bits_w, o.bits_x, o.rounds, o.evaluations}) w->Pod(v);
    for (float v : {o.scale_w, o.scale_x}) w->Pod(v);
    for (double v : {o.similarity_before, o.similarity_after, o.ranking_before, o.ranking_after,
                     o.sqnr_db, o.bias_shift, o.seconds}) {
      w->Pod(v);
    }
  }
  w->Pod<uint64_t>(report.reconstruction.size());
  for (const ReconReport& b : report.reconstruction) {
    w->Str(b.block);
    for (double v : {b.loss_init, b.loss_learned, b.loss_final, b.seconds}) w->Pod(v);
    w->Pod<uint8_t>(b.kept_init ? 1 : 0);
  }
  for (double v :
       {report.load_seconds, report.capture_seconds, report.search_seconds, report.total_seconds}) {
    w->Pod(v);
  }
  w->Pod(report.calib_images);
  w->Str(report.calib_hash);
}

QuantizeReport GetReport(dist::Reader* r) {
  QuantizeReport report;
  report.ops.resize(r->Count(88));  // 88 bytes: an OpReport with an empty layer name
  for (OpReport& o : report.ops) {
    o.layer = r->Str();
    for (int* v : {&o.bits_w, &o.bits_x, &o.rounds, &o.evaluations}) *v = r->Pod<int>();
    for (float* v : {&o.scale_w, &o.scale_x}) *v = r->Pod<float>();
    for (double* v : {&o.similarity_before, &o.similarity_after, &o.ranking_before,
                      &o.ranking_after, &o.sqnr_db, &o.bias_shift, &o.seconds}) {
      *v = r->Pod<double>();
    }
  }
  report.reconstruction.resize(r->Count(41));  // 41 bytes: a ReconReport with an empty name
  for (ReconReport& b : report.reconstruction) {
    b.block = r->Str();
    for (double* v : {&b.loss_init, &b.loss_learned, &b.loss_final, &b.seconds}) {
      *v = r->Pod<double>();
    }
    b.kept_init = r->Pod<uint8_t>() != 0;
  }
  for (double* v : {&report.load_seconds, &report.capture_seconds, &report.search_seconds,
                    &report.total_seconds}) {
    *v = r->Pod<double>();
  }
  report.calib_images = r->Pod<int>();
  report.calib_hash = r->Str();
  return report;
}

namespace search {
Result<QuantPlan> OnRootAlone(const std::function<Result<QuantPlan>()>& work) {
  if (dist::Size() == 1) return work();
  Result<QuantPlan> plan = Status::Internal("not computed on this process");
  dist::Writer w;
  if (dist::IsRoot()) {
    dist::Solo alone;
    plan = work();
    if (plan.ok()) PutPlan(&w, plan.value());
  }
  // The other processes wait here (sleeping) for rank 0's outcome.
  VITQ_RETURN_IF_ERROR(dist::Agree(dist::IsRoot() ? plan.status() : Status::Ok()));
  const std::string shared = dist::AllGather(dist::IsRoot() ? w.bytes() : std::string())[0];
  if (dist::IsRoot()) return plan;
  dist::Reader r(shared);
  return GetPlan(&r, "the plan of rank 0");
}
}  // namespace search

namespace {

// The operations of one transformer block in the order they are quantized, each with the sites
// it reads (captured per image): a linear layer's input, or an attention matmul's two operands.
enum class BlockOpKind { kLinear, kScores, kValues };
struct BlockOpSpec {
  const char* name;  // under "blocks.<i>."
  BlockOpKind kind;
  std::vector<const char*> sites;
};
const std::vector<BlockOpSpec>& BlockOps() {
  static const std::vector<BlockOpSpec> ops = {
      {"attn.qkv", BlockOpKind::kLinear, {"attn.qkv:in"}},
      {"attn.qk", BlockOpKind::kScores, {"attn.qk:a", "attn.qk:b"}},  // Q·Kᵀ
      {"attn.pv", BlockOpKind::kValues, {"attn.pv:a", "attn.pv:b"}},  // P·V
      {"attn.proj", BlockOpKind::kLinear, {"attn.proj:in"}},
      {"mlp.fc1", BlockOpKind::kLinear, {"mlp.fc1:in"}},
      {"mlp.fc2", BlockOpKind::kLinear, {"mlp.fc2:in"}},
  };
  return ops;
}

// QuantizeModel for the per-operation methods: the embedding, each block and the heads in turn;
// every operation's captured tensors go to the method, whose scales (and corrected bias) enter
// the plan. In sequential mode each operation sees the outputs of everything quantized before it.
class OpPipeline {
 public:
  OpPipeline(const ViTModel& model, const CalibrationSet& calib, const QuantizeOptions& opts,
             const search::MethodInfo* method, QuantizeReport* report)
      : model_(model),
        c_(model.spec.config),
        calib_(calib),
        opts_(opts),
        method_(method),
        report_(report),
        n_total_(static_cast<int>(calib.items.size())),
        shard_(dist::MyShard(n_total_)),
        n_img_(static_cast<int>(shard_.size())),
        batch_(std::max(1, std::min(opts.batch, n_img_))),
        module_bits_(opts.module_bits.begin(), opts.module_bits.end()),
        plan_(search::NewPlan(model, calib, opts)),
        float_engine_(model),
        bar_("quantize " + opts.method, 6 * c_.depth + 2 + (c_.head_dist ? 1 : 0), "ops/s",
             opts.quiet),
        x_(static_cast<size_t>(n_img_) * c_.num_tokens() * c_.embed_dim) {}

  Result<QuantPlan> Run() {
    const auto t_start = Clock::now();
    report_->calib_images = n_total_;
    report_->calib_hash = calib_.hash;
    if (opts_.sequential) VITQ_RETURN_IF_ERROR(RefreshQuantizedModel());
    VITQ_RETURN_IF_ERROR(Embedding());
    for (int li = 0; li < c_.depth; ++li) VITQ_RETURN_IF_ERROR(Block(li));
    VITQ_RETURN_IF_ERROR(Heads());
    bar_.Finish();
    report_->total_seconds = Since(t_start);
    plan_.report_json = report_->ToJson();
    return std::move(plan_);
  }

 private:
  float* Stream(int image) { return x_.data() + static_cast<size_t>(image) * StreamFloats(); }
  int64_t StreamFloats() const { return static_cast<int64_t>(c_.num_tokens()) * c_.embed_dim; }
  // This process's image `image` (an index into its block of the calibration set).
  const float* Image(int image) const {
    return calib_.images.data() + static_cast<size_t>(shard_.begin + image - calib_.first) *
                                      c_.in_chans * c_.img_size * c_.img_size;
  }

  // The model with the layers decided so far (fake-quantized weights, corrected biases): the
  // quantized prefix of sequential mode.
  Status RefreshQuantizedModel() {
    VITQ_ASSIGN_OR_RETURN(qmodel_, ApplyPlanToWeights(model_, plan_));
    return Status::Ok();
  }

  int BitsFor(const std::string& layer, bool weight_side) const {
    auto it = module_bits_.find(search::ModuleOf(layer));
    if (it != module_bits_.end()) return it->second;
    return weight_side ? opts_.wbits : opts_.abits;
  }

  // Runs `stage(first_image, images)` over the calibration images in batches, capturing into
  // `cap`'s buffers; the time counts as capture time.
  void ForBatches(search::CaptureObserver* cap, const std::function<void(int, int)>& stage) {
    search::ForBatches(cap, n_img_, batch_, &report_->capture_seconds, stage);
  }

  search::OpTensors LinearOp(const std::string& name, const LinearWeights& w,
                             const std::vector<float>& x, int64_t rows) const {
    search::OpTensors op;
    op.name = name;
    op.images = n_img_;
    op.images_total = n_total_;
    op.x = x.data();
    op.rows = rows;
    op.k = static_cast<int>(w.weight.dim(1));
    op.n = static_cast<int>(w.weight.dim(0));
    op.weight = w.weight.f32();
    op.bias.assign(w.bias.f32(), w.bias.f32() + w.bias.size());
    return op;
  }

  // Block `li`'s operation `spec` over the captured buffers ("<layer>:a" [images*H, m, k] and
  // "<layer>:b" for the attention matmuls).
  search::OpTensors BlockOp(int li, const BlockOpSpec& spec,
                            std::map<std::string, std::vector<float>>& buf) const {
    const std::string p = "blocks." + std::to_string(li) + ".", name = p + spec.name;
    const BlockWeights& bw = model_.weights.blocks[li];
    const int t = c_.num_tokens(), hd = c_.head_dim();
    if (spec.kind == BlockOpKind::kLinear) {
      const LinearWeights& w = spec.name == std::string("attn.qkv")    ? bw.qkv
                               : spec.name == std::string("attn.proj") ? bw.proj
                               : spec.name == std::string("mlp.fc1")   ? bw.fc1
                                                                       : bw.fc2;
      return LinearOp(name, w, buf[p + spec.sites[0]], t);
    }
    search::OpTensors op;
    op.name = name;
    op.is_matmul = true;
    op.is_attention_scores = spec.kind == BlockOpKind::kScores;
    op.images = n_img_;
    op.images_total = n_total_;
    op.a = buf[name + ":a"].data();
    op.b = buf[name + ":b"].data();
    op.heads = c_.num_heads;
    op.m = t;
    // Q·Kᵀ: K [T, hd] is the transposed second operand; P·V: V [T, hd] is given as [K, N].
    op.k = op.is_attention_scores ? hd : t;
    op.n = op.is_attention_scores ? t : hd;
    op.b_rows_are_k = !op.is_attention_scores;
    return op;
  }

  // The method on one operation; its scales (and corrected bias) enter the plan, its figures the
  // report. Sequential mode then re-applies the plan to the quantized prefix model.
  Status RunOp(const search::OpTensors& op) {
    const auto t0 = Clock::now();
    search::MethodContext mc;
    // A matmul's second operand (K, V) is an activation: it takes the activation bits.
    mc.bits_w = BitsFor(op.name, !op.is_matmul);
    mc.bits_x = BitsFor(op.name, false);
    mc.ranking = opts_.ranking;
    mc.bias_correction = opts_.bias_correction;
    mc.candidates = opts_.candidates;
    mc.max_rounds = opts_.max_rounds;
    mc.coarse_step = opts_.CoarseStep();
    mc.ctx = &ctx_;
    const search::OpResult r = method_->run(op, mc);
    const QuantScheme sw = SymmetricScheme(mc.bits_w), sx = SymmetricScheme(mc.bits_x);
    if (op.is_matmul) {
      plan_.sites[op.name + ":a"] = {sx, {{r.scale_x}, {0}}};
      plan_.sites[op.name + ":b"] = {sw, {{r.scale_w}, {0}}};
    } else {
      plan_.sites[op.name + ":w"] = {sw, {{r.scale_w}, {0}}};
      plan_.sites[op.name + ":in"] = {sx, {{r.scale_x}, {0}}};
      if (!r.bias.empty() && r.bias != op.bias) plan_.biases[op.name] = r.bias;
    }
    OpReport rep;
    rep.layer = op.name;
    rep.bits_w = mc.bits_w;
    rep.bits_x = mc.bits_x;
    rep.scale_w = r.scale_w;
    rep.scale_x = r.scale_x;
    rep.similarity_before = r.similarity_before;
    rep.similarity_after = r.similarity_after;
    rep.ranking_before = r.ranking_before;
    rep.ranking_after = r.ranking_after;
    rep.sqnr_db = r.sqnr_db;
    rep.bias_shift = r.bias_shift;
    rep.rounds = r.rounds;
    rep.evaluations = r.evaluations;
    rep.seconds = Since(t0);
    report_->search_seconds += rep.seconds;
    report_->ops.push_back(rep);
    bar_.Add(1);
    return opts_.sequential ? RefreshQuantizedModel() : Status::Ok();
  }

  // The patch embedding: its input captured from the float pass; the stream then holds the
  // float embedding, or in sequential mode the quantized one.
  Status Embedding() {
    std::vector<float> patches;
    search::CaptureObserver cap;
    cap.Add("patch_embed.proj:in", &patches);
    ForBatches(&cap, [&](int b, int nb) { float_engine_.Embed(Image(b), nb, Stream(b), &cap); });
    VITQ_RETURN_IF_ERROR(
        RunOp(LinearOp("patch_embed.proj", model_.weights.patch_embed, patches, c_.num_patches())));
    if (opts_.sequential) {
      Engine e(qmodel_);
      FakeQuantObserver fq(plan_);
      search::CaptureObserver none(&fq);
      ForBatches(&none, [&](int b, int nb) { e.Embed(Image(b), nb, Stream(b), &none); });
    }
    return Status::Ok();
  }

  // Block li: parallel mode captures every site from one float pass; sequential mode captures
  // each operation's sites from a pass over the quantized prefix (itself excluded), then advances
  // the stream through the quantized block.
  Status Block(int li) {
    const std::string p = "blocks." + std::to_string(li) + ".";
    std::map<std::string, std::vector<float>> buf;
    if (!opts_.sequential) {
      search::CaptureObserver cap;
      for (const BlockOpSpec& spec : BlockOps())
        for (const char* site : spec.sites) cap.Add(p + site, &buf[p + site]);
      ForBatches(&cap, [&](int b, int nb) { float_engine_.Block(li, Stream(b), nb, &cap); });
      for (const BlockOpSpec& spec : BlockOps())
        VITQ_RETURN_IF_ERROR(RunOp(BlockOp(li, spec, buf)));
      return Status::Ok();
    }
    std::vector<float> xin(x_.size());
    for (const BlockOpSpec& spec : BlockOps()) {
      Engine e(qmodel_);
      FakeQuantObserver fq(plan_);
      search::CaptureObserver cap(&fq);
      for (const char* site : spec.sites) cap.Add(p + site, &buf[p + site]);
      std::memcpy(xin.data(), x_.data(), x_.size() * sizeof(float));
      ForBatches(&cap, [&](int b, int nb) {
        e.Block(li, xin.data() + static_cast<size_t>(b) * StreamFloats(), nb, &cap);
      });
      VITQ_RETURN_IF_ERROR(RunOp(BlockOp(li, spec, buf)));
    }
    Engine e(qmodel_);
    FakeQuantObserver fq(plan_);
    search::CaptureObserver none(&fq);
    ForBatches(&none, [&](int b, int nb) { e.Block(li, Stream(b), nb, &none); });
    return Status::Ok();
  }

  // The classifier head (and the distillation head) on the final stream.
  Status Heads() {
    std::vector<float> h0, h1, logits(static_cast<size_t>(batch_) * c_.num_classes);
    Engine qe(opts_.sequential ? qmodel_ : model_);
    FakeQuantObserver fq(plan_);
    search::CaptureObserver cap(opts_.sequential ? &fq : nullptr);
    cap.Add("head:in", &h0);
    if (c_.head_dist) cap.Add("head_dist:in", &h1);
    Engine& e = opts_.sequential ? qe : float_engine_;
    ForBatches(&cap, [&](int b, int nb) { e.Head(Stream(b), nb, logits.data(), &cap); });
    VITQ_RETURN_IF_ERROR(RunOp(LinearOp("head", model_.weights.head, h0, 1)));
    if (c_.head_dist)
      VITQ_RETURN_IF_ERROR(RunOp(LinearOp("head_dist", model_.weights.head_dist, h1, 1)));
    return Status::Ok();
  }

  const ViTModel& model_;
  const ViTConfig& c_;
  const CalibrationSet& calib_;
  const QuantizeOptions& opts_;
  const search::MethodInfo* method_;
  QuantizeReport* report_;
  // The job's calibration images, this process's block of them (all in a 1-process job) and its
  // size; the capture runs over the block, the method's figures over the whole job.
  const int n_total_;
  const dist::Range shard_;
  const int n_img_, batch_;
  const std::map<std::string, int> module_bits_;
  QuantPlan plan_;
  kernels::DnnlContext ctx_;
  ViTModel qmodel_;  // sequential mode: the quantized prefix
  Engine float_engine_;
  ProgressBar bar_;
  std::vector<float> x_;  // the residual stream of every image: float, or the quantized prefix's
};

}  // namespace

Result<QuantPlan> QuantizeModel(const ViTModel& model, const CalibrationSet& calib,
                                const QuantizeOptions& opts, QuantizeReport* report) {
  VITQ_RETURN_IF_ERROR(opts.Validate());
  const search::MethodInfo* method = search::FindMethod(opts.method);
  const int held = static_cast<int>(calib.images.size() /
                                    (static_cast<size_t>(model.spec.config.in_chans) *
                                     model.spec.config.img_size * model.spec.config.img_size));
  const bool holds_all = calib.first == 0 && held == static_cast<int>(calib.items.size());
  if (!method->distributed) {
    // Rank 0 runs it alone (the others wait) on the whole calibration set.
    if (!holds_all && dist::Size() > 1) {
      return dist::Agree(Status::Internal("--method " + opts.method +
                                          " runs on one process and needs every calibration "
                                          "image there; this one holds a block"));
    }
    return search::OnRootAlone([&]() -> Result<QuantPlan> {
      if (method->pipeline != nullptr) return method->pipeline(model, calib, opts, report);
      OpPipeline pipeline(model, calib, opts, method, report);
      return pipeline.Run();
    });
  }
  if (static_cast<int>(calib.items.size()) < dist::Size()) {
    return dist::Agree(
        Status::Usage("--calib-size " + std::to_string(calib.items.size()) + " with " +
                      std::to_string(dist::Size()) +
                      " processes: every process needs at least one calibration image"));
  }
  OpPipeline pipeline(model, calib, opts, method, report);
  return pipeline.Run();
}

}  // namespace vitq
