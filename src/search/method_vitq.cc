// vitq: this project's low-bit method (docs/METHOD.md). One pass over the calibration images,
// block by block, each block fed by the already quantized blocks before it; per block: LayerNorm
// reparameterization of the LN outputs that feed qkv and fc1, activation grids by output-error
// search (zero point / unsigned below 8 bits), log-√2 attention probabilities below 8 bits,
// per-channel weight scales and GPTQ rounding from each layer's input Hessian. The plan carries the
// folded LayerNorm parameters and the rounded weights (QuantPlan::tensors), so every path that
// applies the plan (the .vitq writer, the fake-quant simulation) sees the same model.
#include <dnnl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "lowbit.h"
#include "methods.h"
#include "pipeline.h"
#include "reconstruct.h"
#include "vitq/progress.h"
#include "vitq/quant.h"
#include "vitq/safetensors.h"
#include "vitq/simulate.h"

namespace vitq::search {
namespace {

std::vector<float> ToVector(const Tensor& t) { return {t.f32(), t.f32() + t.size()}; }

// Unlabelled augmentation for reconstruction: the n images [n, ch, size, size] followed by
// `copies` copies of each, every copy a random crop (8-100 % of the area, aspect 3/4-4/3)
// resized back bilinearly and flipped horizontally with probability 1/2. Deterministic in seed.
std::vector<float> AugmentImages(const std::vector<float>& images, int n, int ch, int size,
                                 int copies, uint64_t seed) {
  const int64_t per = static_cast<int64_t>(ch) * size * size;
  std::vector<float> out(static_cast<size_t>(n) * (1 + copies) * per);
  std::copy(images.begin(), images.begin() + n * per, out.begin());
  std::mt19937_64 rng(seed ^ 0xA5A5A5A5ull);
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  for (int k = 0; k < copies; ++k) {
    for (int i = 0; i < n; ++i) {
      double area = 0.08 + 0.92 * ud(rng);
      double aspect = std::exp(std::log(0.75) + (std::log(4.0 / 3.0) - std::log(0.75)) * ud(rng));
      const double cw = std::min(1.0, std::sqrt(area * aspect)) * size;
      const double chh = std::min(1.0, std::sqrt(area / aspect)) * size;
      const double x0 = ud(rng) * (size - cw), y0 = ud(rng) * (size - chh);
      const bool flip = ud(rng) < 0.5;
      const float* src = images.data() + i * per;
      float* dst = out.data() + (static_cast<int64_t>(n) * (k + 1) + i) * per;
      for (int c = 0; c < ch; ++c) {
        const float* sp = src + static_cast<int64_t>(c) * size * size;
        float* dp = dst + static_cast<int64_t>(c) * size * size;
        for (int y = 0; y < size; ++y) {
          const double sy = std::clamp(y0 + (y + 0.5) * chh / size - 0.5, 0.0, size - 1.0);
          const int yi = std::min(static_cast<int>(sy), size - 2 < 0 ? 0 : size - 2);
          const double fy = sy - yi;
          for (int xo = 0; xo < size; ++xo) {
            const int xs = flip ? size - 1 - xo : xo;
            const double sx = std::clamp(x0 + (xs + 0.5) * cw / size - 0.5, 0.0, size - 1.0);
            const int xi = std::min(static_cast<int>(sx), size - 2 < 0 ? 0 : size - 2);
            const double fx = sx - xi;
            const int yj = std::min(yi + 1, size - 1), xj = std::min(xi + 1, size - 1);
            const double v = (1 - fy) * ((1 - fx) * sp[yi * size + xi] + fx * sp[yi * size + xj]) +
                             fy * ((1 - fx) * sp[yj * size + xi] + fx * sp[yj * size + xj]);
            dp[y * size + xo] = static_cast<float>(v);
          }
        }
      }
    }
  }
  return out;
}

// Pearson correlation and SQNR of a layer's output with quantized input and weights against the
// float one, on at most 2048 evenly strided rows of its input.
void OutputFigures(const float* x, int64_t rows, int k, const float* w, const float* wq, int n,
                   const SitePlan& in, double* pearson, double* sqnr) {
  const int64_t stride = std::max<int64_t>(1, rows / 2048);
  std::vector<float> xs, xq;
  for (int64_t r = 0; r < rows; r += stride) xs.insert(xs.end(), x + r * k, x + (r + 1) * k);
  xq = xs;
  const int m = static_cast<int>(xs.size() / k);
  const Status s = FakeQuantizeTensor(xq.data(), {m, k}, in.scheme, in.params);
  VITQ_CHECK(s.ok(), s.message());  // a grid the search made
  std::vector<float> y(static_cast<size_t>(m) * n), yq(y.size());
  dnnl_sgemm('N', 'T', m, n, k, 1.0f, xs.data(), k, w, k, 0.0f, y.data(), n);
  dnnl_sgemm('N', 'T', m, n, k, 1.0f, xq.data(), k, wq, k, 0.0f, yq.data(), n);
  *pearson = Pearson(y.data(), yq.data(), static_cast<int64_t>(y.size()));
  *sqnr = Sqnr(y.data(), yq.data(), static_cast<int64_t>(y.size()));
}

class VitqPipeline {
 public:
  VitqPipeline(const ViTModel& model, const CalibrationSet& calib, const QuantizeOptions& opts,
               QuantizeReport* report)
      : model_(model),
        calib_(calib),
        opts_(opts),
        report_(report),
        c_(model.spec.config),
        n_img_(static_cast<int>(calib.items.size()) *
               (1 + (opts.reconstruct ? opts.recon_augment : 0))),
        folded_(CloneModel(model)),
        plan_(NewPlan(model, calib, opts)),
        module_bits_(opts.module_bits.begin(), opts.module_bits.end()) {}

  Result<QuantPlan> Run() {
    const auto t_start = Clock::now();
    report_->calib_images = n_img_;
    report_->calib_hash = calib_.hash;
    VITQ_RETURN_IF_ERROR(CheckReconstructMemory(c_, opts_, static_cast<int>(calib_.items.size())));
    images_ = &calib_.images;
    if (n_img_ > static_cast<int>(calib_.items.size())) {
      augmented_ = AugmentImages(calib_.images, static_cast<int>(calib_.items.size()), c_.in_chans,
                                 c_.img_size, opts_.recon_augment, opts_.seed);
      images_ = &augmented_;
    }
    int done = 0;  // blocks taken from a checkpoint
    if (opts_.reconstruct && opts_.resume && !opts_.checkpoint_path.empty()) {
      VITQ_ASSIGN_OR_RETURN(done, LoadCheckpoint());
    }
    const int t = c_.num_tokens(), d = c_.embed_dim;
    const size_t per_image = static_cast<size_t>(c_.in_chans) * c_.img_size * c_.img_size;
    const int batch = std::max(1, std::min(opts_.batch, n_img_));
    // With reconstruction the bar counts optimizer steps (they are nearly all of the time).
    ProgressBar bar(
        opts_.reconstruct ? "quantize vitq+reconstruct" : "quantize vitq",
        opts_.reconstruct ? static_cast<int64_t>(c_.depth) * opts_.recon_iters : c_.depth + 2,
        opts_.reconstruct ? "steps/s" : "stages/s", opts_.quiet);
    const int stage_unit = opts_.reconstruct ? 0 : 1;
    auto for_batches = [&](CaptureObserver* cap, const std::function<void(int, int)>& stage) {
      ForBatches(cap, n_img_, batch, &report_->capture_seconds, stage);
    };
    // Sequential calibration: `prefix` is the model with every stage planned so far applied
    // (folded tensors, fake-quantized weights). Each stage is captured on it (its own sites are
    // not planned yet, so they are float) and, once planned, the stream x is advanced through it
    // with its activations fake-quantized.
    ViTModel prefix = CloneModel(model_);
    auto advance = [&](const std::function<void(Engine&, int, int, Observer*)>& stage) -> Status {
      VITQ_ASSIGN_OR_RETURN(prefix, ApplyPlanToWeights(model_, plan_));
      Engine qe(prefix);
      FakeQuantObserver fq(plan_);
      CaptureObserver none(&fq);
      for_batches(&none, [&](int b, int nb) { stage(qe, b, nb, &none); });
      return Status::Ok();
    };
    std::vector<float> x(static_cast<size_t>(n_img_) * t * d);
    auto embed = [&](Engine& e, int b, int nb, Observer* o) {
      e.Embed(images_->data() + per_image * b, nb, x.data() + static_cast<size_t>(b) * t * d, o);
    };
    // Reconstruction also follows the float model's stream (its inputs and targets).
    std::unique_ptr<Engine> float_engine;
    std::vector<float> xf;
    if (opts_.reconstruct) {
      float_engine = std::make_unique<Engine>(model_);
      xf.resize(x.size());
      for (int b = 0; b < n_img_; b += batch) {
        const int nb = std::min(batch, n_img_ - b);
        float_engine->Embed(images_->data() + per_image * b, nb,
                            xf.data() + static_cast<size_t>(b) * t * d, nullptr);
      }
    }
    {  // patch embedding
      std::vector<float> patches;
      Engine engine(prefix);
      CaptureObserver cap;
      cap.Add("patch_embed.proj:in", &patches);
      for_batches(&cap, [&](int b, int nb) { embed(engine, b, nb, &cap); });
      if (done == 0) {
        VITQ_RETURN_IF_ERROR(
            Linear("patch_embed.proj", &folded_.weights.patch_embed, patches, c_.num_patches()));
      }
      VITQ_RETURN_IF_ERROR(advance(embed));
      bar.Add(stage_unit);
    }
    const char* kSites[] = {"attn.qkv:in", "attn.qk:a",    "attn.qk:b",  "attn.pv:a",
                            "attn.pv:b",   "attn.proj:in", "mlp.fc1:in", "mlp.fc2:in"};
    for (int li = 0; li < c_.depth; ++li) {
      const std::string p = "blocks." + std::to_string(li) + ".";
      if (li < done) {  // planned and reconstructed before the interruption: advance the streams
        for (int b = 0; b < n_img_; b += batch) {
          const int nb = std::min(batch, n_img_ - b);
          float_engine->Block(li, xf.data() + static_cast<size_t>(b) * t * d, nb, nullptr);
        }
        VITQ_RETURN_IF_ERROR(advance([&](Engine& e, int b, int nb, Observer* o) {
          e.Block(li, x.data() + static_cast<size_t>(b) * t * d, nb, o);
        }));
        bar.Add(opts_.recon_iters);
        continue;
      }
      std::map<std::string, std::vector<float>> buf;
      {  // block li's sites, on a copy of the stream (x is advanced once the block is planned)
        Engine engine(prefix);
        CaptureObserver cap;
        for (const char* s : kSites) cap.Add(p + s, &buf[s]);
        std::vector<float> xin = x;
        for_batches(&cap, [&](int b, int nb) {
          engine.Block(li, xin.data() + static_cast<size_t>(b) * t * d, nb, &cap);
        });
      }
      BlockWeights& bw = folded_.weights.blocks[li];
      const int64_t rows = static_cast<int64_t>(n_img_) * t;
      if (opts_.ln_reparam) {
        Fold(p + "norm1", &bw.norm1_weight, &bw.norm1_bias, {&bw.qkv}, {p + "attn.qkv"},
             c_.qkv_bias, &buf["attn.qkv:in"], rows);
        Fold(p + "norm2", &bw.norm2_weight, &bw.norm2_bias, {&bw.fc1}, {p + "mlp.fc1"}, true,
             &buf["mlp.fc1:in"], rows);
      }
      VITQ_RETURN_IF_ERROR(Linear(p + "attn.qkv", &bw.qkv, buf["attn.qkv:in"], t));
      Operands(p + "attn.qk", buf["attn.qk:a"], buf["attn.qk:b"]);
      Operands(p + "attn.pv", buf["attn.pv:a"], buf["attn.pv:b"]);
      VITQ_RETURN_IF_ERROR(Linear(p + "attn.proj", &bw.proj, buf["attn.proj:in"], t));
      VITQ_RETURN_IF_ERROR(Linear(p + "mlp.fc1", &bw.fc1, buf["mlp.fc1:in"], t));
      VITQ_RETURN_IF_ERROR(Linear(p + "mlp.fc2", &bw.fc2, buf["mlp.fc2:in"], t));
      if (opts_.reconstruct) {
        VITQ_RETURN_IF_ERROR(Reconstruct(li, x, &xf, float_engine.get(), batch, &bar));
      }
      VITQ_RETURN_IF_ERROR(advance([&](Engine& e, int b, int nb, Observer* o) {
        e.Block(li, x.data() + static_cast<size_t>(b) * t * d, nb, o);
      }));
      bar.Add(stage_unit);
      if (opts_.reconstruct && !opts_.checkpoint_path.empty()) {
        VITQ_RETURN_IF_ERROR(WriteCheckpoint(li + 1));
      }
      if (opts_.recon_stop_after == li + 1) {
        return Status::InvalidInput("reconstruction stopped after " + std::to_string(li + 1) +
                                    " blocks as asked (recon_stop_after); the checkpoint is kept");
      }
    }
    {  // final LayerNorm and head(s)
      std::vector<float> h0, h1, logits(static_cast<size_t>(batch) * c_.num_classes);
      Engine engine(prefix);
      CaptureObserver cap;
      cap.Add("head:in", &h0);
      if (c_.head_dist) cap.Add("head_dist:in", &h1);
      for_batches(&cap, [&](int b, int nb) {
        engine.Head(x.data() + static_cast<size_t>(b) * t * d, nb, logits.data(), &cap);
      });
      ViTWeights& w = folded_.weights;
      // The final LayerNorm is not reparameterized: its statistics would come from one token per
      // calibration image (too few to bound each channel: on the CIFAR-10 ViT with 16 images the
      // logits' KL to the float model rose tenfold), and the head is a small part of the error.
      VITQ_RETURN_IF_ERROR(Linear("head", &w.head, h0, 1));
      if (c_.head_dist) VITQ_RETURN_IF_ERROR(Linear("head_dist", &w.head_dist, h1, 1));
      bar.Add(stage_unit);
    }
    bar.Finish();
    report_->total_seconds = Since(t_start);
    plan_.report_json = report_->ToJson();
    return std::move(plan_);
  }

 private:
  int Bits(const std::string& layer, bool weight) const {
    // The image keeps its own bit-width (QuantizeOptions::image_bits).
    if (!weight && layer == "patch_embed.proj" && opts_.image_bits != 0) return opts_.image_bits;
    auto it = module_bits_.find(ModuleOf(layer));
    if (it != module_bits_.end()) return it->second;
    return weight ? opts_.wbits : opts_.abits;
  }

  // The checkpoint's identity: a checkpoint is continued only by the same run.
  std::string Fingerprint() const {
    nlohmann::ordered_json f = {
        {"options", plan_.options_json},      {"seed", plan_.seed},
        {"calib_hash", plan_.calib_hash},     {"calib_size", plan_.calib_size},
        {"architecture", plan_.architecture}, {"tool_version", plan_.tool_version}};
    return f.dump();
  }

  Status WriteCheckpoint(int blocks_done) {
    std::vector<Tensor> store;
    store.reserve(plan_.tensors.size());
    std::vector<NamedTensor> named;
    for (const auto& [name, v] : plan_.tensors) {
      store.push_back(Tensor::F32({static_cast<int64_t>(v.size())}));
      std::copy(v.begin(), v.end(), store.back().f32());
    }
    size_t i = 0;
    for (const auto& [name, v] : plan_.tensors) named.push_back({name, &store[i++]});
    QuantPlan sites = plan_;
    sites.tensors.clear();
    sites.report_json.clear();
    nlohmann::ordered_json meta = {{"version", 1},
                                   {"blocks_done", blocks_done},
                                   {"fingerprint", Fingerprint()},
                                   {"plan", PlanToJson(sites)}};
    return WriteSafetensors(opts_.checkpoint_path, named, {{"vitq_checkpoint", meta.dump()}})
        .WithContext("reconstruction checkpoint '" + opts_.checkpoint_path + "'");
  }

  // The number of blocks the checkpoint holds (0 when there is none), its plan in plan_.
  Result<int> LoadCheckpoint() {
    const std::string& path = opts_.checkpoint_path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      if (!opts_.quiet)
        std::fprintf(stderr, "vitq: no checkpoint '%s' to resume: starting from the first block\n",
                     path.c_str());
      return 0;
    }
    const std::string what = "reconstruction checkpoint '" + path + "'";
    auto file = SafetensorsFile::Open(path);
    if (!file.ok()) return file.status().WithContext(what);
    auto it = file->metadata().find("vitq_checkpoint");
    if (it == file->metadata().end())
      return Status::InvalidInput(what + " has no vitq_checkpoint metadata: not a checkpoint");
    nlohmann::json meta = nlohmann::json::parse(it->second, nullptr, false);
    if (meta.is_discarded() || !meta.is_object() || !meta.contains("version") ||
        !meta["version"].is_number_integer() || meta["version"] != 1 ||
        !meta.contains("blocks_done") || !meta["blocks_done"].is_number_integer() ||
        !meta.contains("fingerprint") || !meta["fingerprint"].is_string() ||
        !meta.contains("plan") || !meta["plan"].is_string()) {
      return Status::InvalidInput(what + ": metadata is not a version-1 checkpoint description");
    }
    const int blocks = meta["blocks_done"].get<int>();
    if (blocks < 1 || blocks > c_.depth) {
      return Status::InvalidInput(what + ": " + std::to_string(blocks) +
                                  " blocks done, expected 1-" + std::to_string(c_.depth));
    }
    if (meta["fingerprint"].get<std::string>() != Fingerprint()) {
      return Status::InvalidInput(
          what + " belongs to a run with other options, calibration images or model (" +
          meta["fingerprint"].get<std::string>() + ", this run: " + Fingerprint() +
          "); remove it or run without --resume");
    }
    VITQ_ASSIGN_OR_RETURN(QuantPlan plan, PlanFromJson(meta["plan"].get<std::string>(), path));
    VITQ_RETURN_IF_ERROR(ValidatePlan(plan, c_).WithContext(what));
    for (const auto& e : file->entries()) {
      VITQ_ASSIGN_OR_RETURN(Tensor t, file->ReadF32(e.name));
      plan.tensors[e.name] = ToVector(t);
    }
    VITQ_RETURN_IF_ERROR(ApplyPlanTensors(model_, plan).status().WithContext(what));
    plan.report_json.clear();
    plan_ = std::move(plan);
    return blocks;
  }

  // Block reconstruction of block li (after its closed-form plan): learns the rounding of its
  // four weights and its activation steps, writes them into the plan, and advances the float
  // stream xf to the float block's outputs (the targets).
  Status Reconstruct(int li, const std::vector<float>& x, std::vector<float>* xf,
                     Engine* float_engine, int batch, ProgressBar* bar) {
    const std::string p = "blocks." + std::to_string(li) + ".";
    const int t = c_.num_tokens(), d = c_.embed_dim;
    std::vector<float> target = *xf;
    for (int b = 0; b < n_img_; b += batch) {
      const int nb = std::min(batch, n_img_ - b);
      float_engine->Block(li, target.data() + static_cast<size_t>(b) * t * d, nb, nullptr);
    }
    const BlockWeights& bw = folded_.weights.blocks[li];
    TrainBlock<float> blk;
    blk.tokens = t;
    blk.dim = d;
    blk.heads = c_.num_heads;
    blk.hidden = c_.mlp_hidden;
    blk.eps = c_.ln_eps;
    blk.norm1_w = ToVector(bw.norm1_weight);
    blk.norm1_b = ToVector(bw.norm1_bias);
    blk.norm2_w = ToVector(bw.norm2_weight);
    blk.norm2_b = ToVector(bw.norm2_bias);
    const std::pair<TrainLinear<float>*, const LinearWeights*> layers[] = {
        {&blk.qkv, &bw.qkv}, {&blk.proj, &bw.proj}, {&blk.fc1, &bw.fc1}, {&blk.fc2, &bw.fc2}};
    const char* names[] = {"attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"};
    std::array<std::vector<float>, 4> init;
    for (int i = 0; i < 4; ++i) {
      TrainLinear<float>& l = *layers[i].first;
      const LinearWeights& lw = *layers[i].second;
      l.n = static_cast<int>(lw.weight.dim(0));
      l.k = static_cast<int>(lw.weight.dim(1));
      l.w = ToVector(lw.weight);
      l.bias = lw.bias.empty() ? std::vector<float>(l.n, 0.0f) : ToVector(lw.bias);
      const SitePlan& sw = plan_.sites.at(p + names[i] + ":w");
      l.scale = sw.params.scale;
      l.qmin = sw.scheme.qmin();
      l.qmax = sw.scheme.qmax();
      init[i] = plan_.tensors.at(p + names[i] + ".weight");
    }
    for (int s = 0; s < TrainBlock<float>::kNumSites; ++s) {
      const SitePlan& sp = plan_.sites.at(p + TrainBlock<float>::SiteName(s));
      TrainActQuant<float>& q = blk.act[s];
      q.active = true;
      q.log = IsLogSqrt2(sp.scheme.kind);
      q.log_row = sp.scheme.kind == QuantKind::kLogSqrt2Row;
      q.uniform_row = sp.scheme.kind == QuantKind::kUniformRow;
      q.bits = sp.scheme.bits;
      q.zero_point = sp.params.zero_point[0];
      q.qmin = sp.scheme.qmin();
      q.qmax = sp.scheme.qmax();
      q.scale = sp.params.scale[0];
    }
    ReconstructOptions ro;
    ro.iters = opts_.recon_iters;
    ro.batch = opts_.recon_batch;
    ro.drop_prob = opts_.recon_drop;
    ro.learn_steps = opts_.recon_steps;
    ro.round_weight = opts_.recon_round_weight;
    ro.lr_round = opts_.recon_lr;
    ro.lr_step = opts_.recon_step_lr;
    const std::string detail_block =
        "block " + std::to_string(li + 1) + "/" + std::to_string(c_.depth);
    const ReconstructStats st = ReconstructBlock(
        &blk, init, x.data(), xf->data(), target.data(), n_img_, ro,
        opts_.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(li) + 1, [&](int, double loss) {
          char buf[64];
          std::snprintf(buf, sizeof buf, " loss %.4g", loss);
          bar->SetDetail(detail_block + buf);
          bar->Add(1);
        });
    for (int i = 0; i < 4; ++i) plan_.tensors[p + names[i] + ".weight"] = layers[i].first->wq;
    for (int s = 0; s < TrainBlock<float>::kNumSites; ++s)
      plan_.sites[p + TrainBlock<float>::SiteName(s)].params.scale[0] = blk.act[s].scale;
    ReconReport rr;
    rr.block = "blocks." + std::to_string(li);
    rr.loss_init = st.loss_init;
    rr.loss_learned = st.loss_final;
    rr.loss_final = st.kept_init ? st.loss_init : st.loss_final;
    rr.kept_init = st.kept_init;
    rr.seconds = st.seconds;
    report_->reconstruction.push_back(rr);
    report_->search_seconds += st.seconds;
    *xf = std::move(target);
    return Status::Ok();
  }

  // Folds the LayerNorm `ln` into its consumers, records the replaced tensors and transforms the
  // captured LN output `x` [rows, D] the same way.
  void Fold(const std::string& ln, Tensor* gamma, Tensor* beta,
            const std::vector<LinearWeights*>& consumers, const std::vector<std::string>& names,
            bool has_bias, std::vector<float>* x, int64_t rows) {
    const int d = static_cast<int>(gamma->size());
    const LnFold f = ComputeLnFold(x->data(), rows, d, has_bias);
    FoldLayerNorm(f, gamma, beta, consumers);
    Record(ln, *gamma, *beta, consumers, names);
    ApplyLnFold(f, x->data(), rows, d);
  }

  void Record(const std::string& ln, const Tensor& gamma, const Tensor& beta,
              const std::vector<LinearWeights*>& consumers, const std::vector<std::string>& names) {
    plan_.tensors[ln + ".weight"] = ToVector(gamma);
    plan_.tensors[ln + ".bias"] = ToVector(beta);
    for (size_t i = 0; i < consumers.size(); ++i) {
      plan_.tensors[names[i] + ".weight"] = ToVector(consumers[i]->weight);
      // A qkv without a stored bias was folded without a shift (ComputeLnFold centred = false).
      if (c_.qkv_bias || names[i].find("attn.qkv") == std::string::npos)
        plan_.tensors[names[i] + ".bias"] = ToVector(consumers[i]->bias);
    }
  }

  // A linear layer with inputs x [images * tokens_per_image, K]: input grid, weight scales,
  // rounding; the rounded weights go into the plan.
  Status Linear(const std::string& name, LinearWeights* lw, const std::vector<float>& x,
                int tokens_per_image) {
    const auto t0 = Clock::now();
    const int n = static_cast<int>(lw->weight.dim(0)), k = static_cast<int>(lw->weight.dim(1));
    const int64_t rows = static_cast<int64_t>(n_img_) * tokens_per_image;
    const int bw = Bits(name, true), bx = Bits(name, false);
    // fc2's input (post-GELU) may take an 8-bit grid with a zero point: the engine holds it as u8.
    const bool fc2 = IsFc2InputSite(name + ":in");
    // auto: per token below 8 bits (with --reconstruct too, where it measured closer to the float
    // model than the per-tensor grid's learned step: bench/results/reconstruct.md).
    const bool row_grid =
        fc2 && (opts_.fc2_input == "token" || (opts_.fc2_input == "auto" && bx < 8));
    const SitePlan in = row_grid ? SearchRowInputGrid(x.data(), rows, k, lw->weight.f32(), n, bx)
                                 : SearchInputGrid(x.data(), rows, k, lw->weight.f32(), n, bx,
                                                   opts_.asymmetric, fc2);
    const std::vector<float> scales =
        SearchWeightScales(lw->weight.f32(), n, k, bw, opts_.per_channel_weights);
    std::vector<float> rtn = ToVector(lw->weight);
    RoundToGrid(rtn.data(), n, k, scales, bw);
    std::vector<float> wq;
    if (opts_.gptq) {
      wq = ToVector(lw->weight);
      VITQ_RETURN_IF_ERROR(GptqQuantize(wq.data(), n, k, InputHessian(x.data(), rows, k), scales,
                                        bw, /*act_order=*/true)
                               .WithContext("layer '" + name + "'"));
    } else {
      wq = rtn;
    }
    OpReport rep;
    rep.layer = name;
    rep.bits_w = bw;
    rep.bits_x = bx;
    double mean_scale = 0;
    for (float s : scales) mean_scale += s;
    rep.scale_w = static_cast<float>(mean_scale / scales.size());
    rep.scale_x = in.params.scale[0];
    double sqnr_rtn = 0;
    OutputFigures(x.data(), rows, k, lw->weight.f32(), rtn.data(), n, in, &rep.similarity_before,
                  &sqnr_rtn);
    OutputFigures(x.data(), rows, k, lw->weight.f32(), wq.data(), n, in, &rep.similarity_after,
                  &rep.sqnr_db);
    QuantScheme sw = SymmetricScheme(bw);
    if (scales.size() > 1) {
      sw.granularity = Granularity::kPerChannel;
      sw.axis = 0;
    }
    plan_.sites[name + ":w"] = {sw, {scales, std::vector<int32_t>(scales.size(), 0)}};
    plan_.sites[name + ":in"] = in;
    plan_.tensors[name + ".weight"] = std::move(wq);
    rep.seconds = Since(t0);
    report_->search_seconds += rep.seconds;
    report_->ops.push_back(rep);
    return Status::Ok();
  }

  // The operands of an attention matmul: one grid each.
  void Operands(const std::string& name, const std::vector<float>& a, const std::vector<float>& b) {
    const auto t0 = Clock::now();
    const int bits = Bits(name, false);
    SitePlan pa;
    const bool pv = name.find("attn.pv") != std::string::npos;
    const bool row_p = pv && (opts_.attn_quantizer == "log-sqrt2-row" ||
                              (opts_.attn_quantizer == "auto" && bits < 8));
    const bool log_p = row_p || (pv && opts_.attn_quantizer == "log-sqrt2");
    // P per row on a uniform grid up to the row's maximum (auto at 8 bits; --no-asym keeps the
    // signed per-tensor grid of its ablation).
    const bool uniform_row_p =
        pv && (opts_.attn_quantizer == "uniform-row" ||
               (opts_.attn_quantizer == "auto" && bits >= 8 && opts_.asymmetric));
    if (uniform_row_p) {  // code = round(P / (r / qmax)), r the row's maximum
      pa.scheme.bits = bits;
      pa.scheme.is_signed = false;
      pa.scheme.symmetric = false;
      pa.scheme.kind = QuantKind::kUniformRow;
      pa.params = {{1.0f / pa.scheme.qmax()}, {0}};
    } else if (log_p) {  // P in [0, 1]: the top code is P = 1 (per row: the row's maximum)
      pa.scheme.bits = bits;
      pa.scheme.is_signed = false;
      pa.scheme.kind = row_p ? QuantKind::kLogSqrt2Row : QuantKind::kLogSqrt2;
      pa.params = {{1.0f}, {0}};
    } else {
      pa = SearchActivationGrid(a.data(), static_cast<int64_t>(a.size()), bits, opts_.asymmetric,
                                /*unsigned8=*/pv);
    }
    const SitePlan pb =
        SearchActivationGrid(b.data(), static_cast<int64_t>(b.size()), bits, opts_.asymmetric);
    plan_.sites[name + ":a"] = pa;
    plan_.sites[name + ":b"] = pb;
    OpReport rep;
    rep.layer = name;
    rep.bits_w = rep.bits_x = bits;
    rep.scale_x = pa.params.scale[0];
    rep.scale_w = pb.params.scale[0];
    rep.seconds = Since(t0);
    report_->search_seconds += rep.seconds;
    report_->ops.push_back(rep);
  }

  const ViTModel& model_;
  const CalibrationSet& calib_;
  const std::vector<float>* images_ = nullptr;  // the calibration images (with augmentation)
  std::vector<float> augmented_;
  const QuantizeOptions& opts_;
  QuantizeReport* report_;
  const ViTConfig& c_;
  const int n_img_;
  ViTModel folded_;
  QuantPlan plan_;
  std::map<std::string, int> module_bits_;
};

}  // namespace

Result<QuantPlan> QuantizeVitq(const ViTModel& model, const CalibrationSet& calib,
                               const QuantizeOptions& opts, QuantizeReport* report) {
  return VitqPipeline(model, calib, opts, report).Run();
}

}  // namespace vitq::search

namespace vitq {

Status CheckReconstructMemory(const ViTConfig& c, const QuantizeOptions& opts, int calib_images) {
  if (!opts.reconstruct || opts.recon_augment == 0) return Status::Ok();
  const double t = c.num_tokens(), d = c.embed_dim;
  // Per calibration image: the streams and targets, the captured sites of one block, the image.
  const double per_image =
      4.0 * (t * d * 10 + static_cast<double>(c.num_heads) * t * t + t * c.mlp_hidden +
             static_cast<double>(c.in_chans) * c.img_size * c.img_size);
  const double images = static_cast<double>(calib_images) * (1 + opts.recon_augment);
  const double need = per_image * images;
  double avail = 0, kb = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemAvailable:") avail = kb * 1024.0;
  }
  if (avail > 0 && need > 0.8 * avail) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "--recon-augment %d: %.0f calibration images need about %.1f GB of buffers, "
                  "more than 80%% of the %.1f GB of memory available",
                  opts.recon_augment, images, need / 1e9, avail / 1e9);
    return Status::Usage(buf);
  }
  return Status::Ok();
}

}  // namespace vitq
