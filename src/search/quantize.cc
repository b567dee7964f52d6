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
              {"attn_quantizer", opts.attn_quantizer}});
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
  if (calib_size < 1) return Status::InvalidInput("calibration size must be at least 1");
  if (attn_quantizer != "auto" && attn_quantizer != "uniform" && attn_quantizer != "log-sqrt2") {
    return Status::Usage("--attn-quantizer '" + attn_quantizer +
                         "': expected auto, uniform or log-sqrt2");
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

Result<CalibrationSet> LoadCalibrationSet(const ModelSpec& spec, const std::string& dir, int count,
                                          uint64_t seed, bool quiet) {
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
  const size_t per =
      static_cast<size_t>(3) * spec.preprocess.crop_height * spec.preprocess.crop_width;
  cs.images.resize(per * count);
  ProgressBar bar("calib images", count, "img/s", quiet);
  std::vector<char> ok;
  std::vector<std::string> errors;
  for (int b = 0; b < count; b += 32) {
    int n = std::min(32, count - b);
    LoadBatch(cs.items, b, n, spec.preprocess, cs.images.data() + per * b, &ok, &errors);
    for (int i = 0; i < n; ++i) {
      if (!ok[i]) return Status::InvalidInput(errors[i] + " (calibration image)");
    }
    bar.Add(n);
  }
  return cs;
}

Result<QuantPlan> QuantizeModel(const ViTModel& model, const CalibrationSet& calib,
                                const QuantizeOptions& opts, QuantizeReport* report) {
  VITQ_RETURN_IF_ERROR(opts.Validate());
  const search::MethodInfo* method = search::FindMethod(opts.method);
  if (method->pipeline != nullptr) return method->pipeline(model, calib, opts, report);
  const auto t_start = Clock::now();
  const ViTConfig& c = model.spec.config;
  const int n_img = static_cast<int>(calib.items.size());
  const int t = c.num_tokens(), d = c.embed_dim;
  const size_t per_image = static_cast<size_t>(c.in_chans) * c.img_size * c.img_size;
  const int batch = std::max(1, std::min(opts.batch, n_img));
  std::map<std::string, int> module_bits(opts.module_bits.begin(), opts.module_bits.end());

  QuantPlan plan = search::NewPlan(model, calib, opts);
  report->calib_images = n_img;
  report->calib_hash = calib.hash;

  kernels::DnnlContext ctx;
  // The model whose layers are already decided (fake-quantized weights, corrected biases), used
  // for the quantized prefix in sequential mode.
  ViTModel qmodel;
  if (opts.sequential) {
    auto q = ApplyPlanToWeights(model, plan);
    if (!q.ok()) return q.status();
    qmodel = std::move(q).value();
  }
  Engine float_engine(model);
  const int total_ops = 6 * c.depth + 2 + (c.head_dist ? 1 : 0);
  ProgressBar bar("quantize " + opts.method, total_ops, "ops/s", opts.quiet);

  auto bits_for = [&](const std::string& layer, bool weight_side) {
    auto it = module_bits.find(search::ModuleOf(layer));
    if (it != module_bits.end()) return it->second;
    return weight_side ? opts.wbits : opts.abits;
  };
  auto run_op = [&](search::OpTensors& op) -> Status {
    auto t0 = Clock::now();
    search::MethodContext mc;
    // A matmul's second operand (K, V) is an activation: it takes the activation bits.
    mc.bits_w = bits_for(op.name, !op.is_matmul);
    mc.bits_x = bits_for(op.name, false);
    mc.ranking = opts.ranking;
    mc.bias_correction = opts.bias_correction;
    mc.candidates = opts.candidates;
    mc.max_rounds = opts.max_rounds;
    mc.coarse_step = opts.CoarseStep();
    mc.ctx = &ctx;
    search::OpResult r = method->run(op, mc);
    QuantScheme sw = SymmetricScheme(mc.bits_w), sx = SymmetricScheme(mc.bits_x);
    if (op.is_matmul) {
      plan.sites[op.name + ":a"] = {sx, {{r.scale_x}, {0}}};
      plan.sites[op.name + ":b"] = {sw, {{r.scale_w}, {0}}};
    } else {
      plan.sites[op.name + ":w"] = {sw, {{r.scale_w}, {0}}};
      plan.sites[op.name + ":in"] = {sx, {{r.scale_x}, {0}}};
      if (!r.bias.empty() && r.bias != op.bias) plan.biases[op.name] = r.bias;
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
    report->search_seconds += rep.seconds;
    report->ops.push_back(rep);
    bar.Add(1);
    if (opts.sequential) {
      auto q = ApplyPlanToWeights(model, plan);
      if (!q.ok()) return q.status();
      qmodel = std::move(q).value();
    }
    return Status::Ok();
  };
  auto linear_op = [&](const std::string& name, const LinearWeights& w, const std::vector<float>& x,
                       int64_t rows) {
    search::OpTensors op;
    op.name = name;
    op.images = n_img;
    op.x = x.data();
    op.rows = rows;
    op.k = static_cast<int>(w.weight.dim(1));
    op.n = static_cast<int>(w.weight.dim(0));
    op.weight = w.weight.f32();
    op.bias.assign(w.bias.f32(), w.bias.f32() + w.bias.size());
    return op;
  };

  // Runs `stage` over all images in batches with `observer`; captures go to the capture buffers.
  // `stream` is the residual stream [images, T, D] (updated in place by Embed/Block).
  auto for_batches = [&](CaptureObserver* cap, const std::function<void(int, int)>& stage) {
    auto t0 = Clock::now();
    cap->SetTotal(n_img);
    for (int b = 0; b < n_img; b += batch) {
      int nb = std::min(batch, n_img - b);
      cap->SetBatch(b, nb);
      stage(b, nb);
    }
    report->capture_seconds += Since(t0);
  };

  std::vector<float> x(static_cast<size_t>(n_img) * t *
                       d);  // float (parallel) or quantized-prefix stream
  // ---- patch embedding ----
  {
    std::vector<float> patches;
    CaptureObserver cap;
    cap.Add("patch_embed.proj:in", &patches);
    for_batches(&cap, [&](int b, int nb) {
      float_engine.Embed(calib.images.data() + per_image * b, nb,
                         x.data() + static_cast<size_t>(b) * t * d, &cap);
    });
    auto op = linear_op("patch_embed.proj", model.weights.patch_embed, patches, c.num_patches());
    VITQ_RETURN_IF_ERROR(run_op(op));
    if (opts.sequential) {
      Engine e(qmodel);
      FakeQuantObserver fq(plan);
      CaptureObserver none(&fq);
      for_batches(&none, [&](int b, int nb) {
        e.Embed(calib.images.data() + per_image * b, nb, x.data() + static_cast<size_t>(b) * t * d,
                &none);
      });
    }
  }
  // ---- blocks ----
  const char* kSites[] = {"attn.qkv:in", "attn.qk:a",    "attn.qk:b",  "attn.pv:a",
                          "attn.pv:b",   "attn.proj:in", "mlp.fc1:in", "mlp.fc2:in"};
  for (int li = 0; li < c.depth; ++li) {
    const std::string p = "blocks." + std::to_string(li) + ".";
    const BlockWeights& bw = model.weights.blocks[li];
    std::map<std::string, std::vector<float>> buf;
    // An attention matmul over the captured operands "<name>:a" [images*H, m, k] and "<name>:b".
    auto matmul_op = [&](const std::string& name, int m, int k, int n, bool b_rows_are_k,
                         bool scores) {
      search::OpTensors op;
      op.name = name;
      op.is_matmul = true;
      op.is_attention_scores = scores;
      op.images = n_img;
      op.a = buf[name + ":a"].data();
      op.b = buf[name + ":b"].data();
      op.heads = c.num_heads;
      op.m = m;
      op.k = k;
      op.n = n;
      op.b_rows_are_k = b_rows_are_k;
      return op;
    };
    auto make_ops = [&](int which) {
      const int64_t hd = c.head_dim();
      switch (which) {
        case 0:
          return linear_op(p + "attn.qkv", bw.qkv, buf[p + "attn.qkv:in"], t);
        case 1:  // Q·Kᵀ: K [T, hd] is the transposed second operand
          return matmul_op(p + "attn.qk", t, static_cast<int>(hd), t, false, true);
        case 2:  // P·V
          return matmul_op(p + "attn.pv", t, t, static_cast<int>(hd), true, false);
        case 3:
          return linear_op(p + "attn.proj", bw.proj, buf[p + "attn.proj:in"], t);
        case 4:
          return linear_op(p + "mlp.fc1", bw.fc1, buf[p + "mlp.fc1:in"], t);
        default:
          return linear_op(p + "mlp.fc2", bw.fc2, buf[p + "mlp.fc2:in"], t);
      }
    };
    if (!opts.sequential) {
      CaptureObserver cap;
      for (const char* s : kSites) cap.Add(p + s, &buf[p + s]);
      for_batches(&cap, [&](int b, int nb) {
        float_engine.Block(li, x.data() + static_cast<size_t>(b) * t * d, nb, &cap);
      });
      for (int which = 0; which < 6; ++which) {
        auto op = make_ops(which);
        VITQ_RETURN_IF_ERROR(run_op(op));
      }
    } else {
      // Each operation sees the outputs of everything quantized before it, itself excluded.
      const int first_site[6] = {0, 1, 3, 5, 6, 7}, num_sites[6] = {1, 2, 2, 1, 1, 1};
      std::vector<float> xin(x.size());
      for (int which = 0; which < 6; ++which) {
        Engine e(qmodel);
        FakeQuantObserver fq(plan);
        CaptureObserver cap(&fq);
        for (int s = first_site[which]; s < first_site[which] + num_sites[which]; ++s) {
          cap.Add(p + kSites[s], &buf[p + kSites[s]]);
        }
        std::memcpy(xin.data(), x.data(), x.size() * sizeof(float));
        for_batches(&cap, [&](int b, int nb) {
          e.Block(li, xin.data() + static_cast<size_t>(b) * t * d, nb, &cap);
        });
        auto op = make_ops(which);
        VITQ_RETURN_IF_ERROR(run_op(op));
      }
      Engine e(qmodel);
      FakeQuantObserver fq(plan);
      CaptureObserver none(&fq);
      for_batches(&none, [&](int b, int nb) {
        e.Block(li, x.data() + static_cast<size_t>(b) * t * d, nb, &none);
      });
    }
  }
  // ---- head(s) ----
  {
    std::vector<float> h0, h1, logits(static_cast<size_t>(batch) * c.num_classes);
    Engine qe(opts.sequential ? qmodel : model);
    FakeQuantObserver fq(plan);
    CaptureObserver cap(opts.sequential ? &fq : nullptr);
    cap.Add("head:in", &h0);
    if (c.head_dist) cap.Add("head_dist:in", &h1);
    Engine& e = opts.sequential ? qe : float_engine;
    for_batches(&cap, [&](int b, int nb) {
      e.Head(x.data() + static_cast<size_t>(b) * t * d, nb, logits.data(), &cap);
    });
    auto op = linear_op("head", model.weights.head, h0, 1);
    VITQ_RETURN_IF_ERROR(run_op(op));
    if (c.head_dist) {
      auto opd = linear_op("head_dist", model.weights.head_dist, h1, 1);
      VITQ_RETURN_IF_ERROR(run_op(opd));
    }
  }
  bar.Finish();
  report->total_seconds = Since(t_start);
  plan.report_json = report->ToJson();
  return plan;
}

}  // namespace vitq
