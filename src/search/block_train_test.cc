// Block reconstruction's forward and backward passes: every gradient against central finite
// differences in float64 (activation quantizers off, AdaRound's soft weights on, so the block is
// differentiable), the LSQ step gradient against its formula, float against float64, and the
// optimizer: a lower block loss on a small block, every weight on the grid at the end.
#include "block_train.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "lowbit.h"
#include "reconstruct.h"

namespace vitq::search {
namespace {

template <typename T>
void FillLinear(TrainLinear<T>* l, int n, int k, std::mt19937* rng, bool quantize) {
  std::normal_distribution<double> nd(0.0, 1.0 / std::sqrt(static_cast<double>(k)));
  l->n = n;
  l->k = k;
  l->w.resize(static_cast<size_t>(n) * k);
  l->bias.resize(n);
  for (auto& v : l->w) v = static_cast<T>(nd(*rng));
  for (auto& v : l->bias) v = static_cast<T>(0.1 * nd(*rng));
  l->scale.assign(n, 0);
  for (int r = 0; r < n; ++r) {
    double mx = 0;
    for (int c = 0; c < k; ++c) mx = std::max(mx, std::fabs(static_cast<double>(l->w[r * k + c])));
    l->scale[r] = static_cast<T>(mx / 7);
  }
  l->qmin = -8;
  l->qmax = 7;
  if (quantize) {
    l->InitRounding();
    // Random soft rounding, away from the clamp of the rectified sigmoid.
    std::uniform_real_distribution<double> ud(-1.5, 1.5);
    for (auto& v : l->v) v = static_cast<T>(ud(*rng));
  }
  l->Materialize();
}

template <typename T>
TrainBlock<T> MakeBlock(uint32_t seed, bool quantize) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  TrainBlock<T> b;
  b.tokens = 5;
  b.dim = 8;
  b.heads = 2;
  b.hidden = 12;
  b.eps = 1e-6;
  for (auto* p : {&b.norm1_w, &b.norm2_w}) {
    p->resize(b.dim);
    for (auto& v : *p) v = static_cast<T>(1 + 0.3 * nd(rng));
  }
  for (auto* p : {&b.norm1_b, &b.norm2_b}) {
    p->resize(b.dim);
    for (auto& v : *p) v = static_cast<T>(0.2 * nd(rng));
  }
  FillLinear(&b.qkv, 3 * b.dim, b.dim, &rng, quantize);
  FillLinear(&b.proj, b.dim, b.dim, &rng, quantize);
  FillLinear(&b.fc1, b.hidden, b.dim, &rng, quantize);
  FillLinear(&b.fc2, b.dim, b.hidden, &rng, quantize);
  return b;
}

// loss = Σ out · g for a fixed random g.
double Loss(TrainBlock<double>* b, const std::vector<double>& x, int batch,
            const std::vector<double>& g) {
  std::vector<double> out(x.size());
  for (auto* l : {&b->qkv, &b->proj, &b->fc1, &b->fc2}) l->Materialize();
  b->Forward(x.data(), batch, out.data(), 0);
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * g[i];
  return s;
}

TEST(BlockTrain, EveryGradientMatchesFiniteDifferencesInFloat64) {
  TrainBlock<double> b = MakeBlock<double>(11, /*quantize=*/true);
  const int batch = 2;
  std::mt19937 rng(5);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> x(static_cast<size_t>(batch) * b.tokens * b.dim), g(x.size());
  for (auto& v : x) v = 2 * nd(rng);
  for (auto& v : g) v = nd(rng);
  std::vector<double> out(x.size()), dx(x.size());
  b.Forward(x.data(), batch, out.data(), 0);
  b.Backward(g.data(), dx.data());
  const double h = 1e-6;
  int checked = 0;
  // d loss / d x: LayerNorm, attention (softmax, both matmuls), GELU, residuals.
  for (size_t i = 0; i < x.size(); i += 3) {
    std::vector<double> xp = x, xm = x;
    xp[i] += h;
    xm[i] -= h;
    const double fd = (Loss(&b, xp, batch, g) - Loss(&b, xm, batch, g)) / (2 * h);
    EXPECT_NEAR(dx[i], fd, 1e-6 * std::max(1.0, std::fabs(fd))) << "x[" << i << "]";
    ++checked;
  }
  // d loss / d v of every layer (AdaRound's rectified sigmoid through the soft weights).
  for (auto* l : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) {
    // Backward again to refresh grad_v (Loss() reran Forward).
    b.Forward(x.data(), batch, out.data(), 0);
    b.Backward(g.data(), nullptr);
    const std::vector<double> gv = l->grad_v;
    for (size_t i = 0; i < l->v.size(); i += 7) {
      const double v0 = l->v[i];
      l->v[i] = v0 + h;
      const double lp = Loss(&b, x, batch, g);
      l->v[i] = v0 - h;
      const double lm = Loss(&b, x, batch, g);
      l->v[i] = v0;
      const double fd = (lp - lm) / (2 * h);
      EXPECT_NEAR(gv[i], fd, 1e-6 * std::max(1.0, std::fabs(fd))) << "v[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 80);
}

TEST(BlockTrain, RoundingRegularizerGradientMatchesFiniteDifferences) {
  TrainBlock<double> b = MakeBlock<double>(3, true);
  TrainLinear<double>& l = b.fc1;
  for (double beta : {2.0, 7.5, 20.0}) {
    std::vector<double> grad(l.v.size(), 0.0);
    l.RoundingRegularizer(beta, &grad, 0.01);
    for (size_t i = 0; i < l.v.size(); i += 5) {
      const double v0 = l.v[i], h = 1e-6;
      l.v[i] = v0 + h;
      const double rp = l.RoundingRegularizer(beta, nullptr, 0.01);
      l.v[i] = v0 - h;
      const double rm = l.RoundingRegularizer(beta, nullptr, 0.01);
      l.v[i] = v0;
      EXPECT_NEAR(grad[i], (rp - rm) / (2 * h), 1e-7) << "beta " << beta << " v[" << i << "]";
    }
  }
}

TEST(BlockTrain, RectifiedSigmoidHandValues) {
  EXPECT_DOUBLE_EQ(RectifiedSigmoid(0.0), 0.5);
  EXPECT_DOUBLE_EQ(RectifiedSigmoid(-20.0), 0.0);  // clamped
  EXPECT_DOUBLE_EQ(RectifiedSigmoid(20.0), 1.0);
  EXPECT_DOUBLE_EQ(RectifiedSigmoidGrad(20.0), 0.0);
  EXPECT_NEAR(RectifiedSigmoidGrad(0.0), 1.2 * 0.25, 1e-15);
  for (double f : {0.0, 0.1, 0.37, 0.5, 0.99})
    EXPECT_NEAR(RectifiedSigmoid(RectifiedSigmoidInverse(f)), f, 1e-12);
}

// LSQ: x̂ = s (clamp(round(x/s) + z) - z); ∂x̂/∂s = round(x/s) - x/s inside the grid, qmin - z or
// qmax - z where clamped; ∂x̂/∂x = 1 inside, 0 where clamped; dropped elements pass through.
TEST(BlockTrain, LsqStepGradientAndStraightThroughMatchTheFormula) {
  TrainBlock<double> b = MakeBlock<double>(7, false);
  TrainActQuant<double>& q = b.act[TrainBlock<double>::kFc2In];
  q.active = true;
  q.learn = true;
  q.bits = 4;
  q.zero_point = 3;
  q.qmin = 0;
  q.qmax = 15;
  q.scale = 0.05;
  const int batch = 1;
  std::mt19937 rng(9);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> x(static_cast<size_t>(b.tokens) * b.dim), g(x.size()), out(x.size());
  for (auto& v : x) v = nd(rng);
  for (auto& v : g) v = nd(rng);
  b.Forward(x.data(), batch, out.data(), 0);
  b.Backward(g.data(), nullptr);
  // Reference: d loss / d a4 = g W2 (fc2 unquantized), then the formula per element of gelu(h).
  TrainBlock<double> ref = MakeBlock<double>(7, false);
  std::vector<double> out2(x.size());
  ref.Forward(x.data(), batch, out2.data(), 0);  // same weights, quantizer off
  // Recover gelu(fc1(ln2(y1))) of the quantized run: y1 does not depend on the fc2 quantizer.
  // Compute it from `ref` by a forward with fc2 zeroed: out = y1 then.
  std::fill(ref.fc2.w.begin(), ref.fc2.w.end(), 0.0);
  std::fill(ref.fc2.bias.begin(), ref.fc2.bias.end(), 0.0);
  ref.fc2.Materialize();
  std::vector<double> y1(x.size());
  ref.Forward(x.data(), batch, y1.data(), 0);
  // ln2 and fc1 by hand.
  const int m = b.tokens, d = b.dim, hid = b.hidden;
  double expect = 0;
  int clamped = 0;
  for (int r = 0; r < m; ++r) {
    double mean = 0, var = 0;
    for (int c = 0; c < d; ++c) mean += y1[r * d + c];
    mean /= d;
    for (int c = 0; c < d; ++c) var += (y1[r * d + c] - mean) * (y1[r * d + c] - mean);
    var /= d;
    std::vector<double> ln(d);
    for (int c = 0; c < d; ++c)
      ln[c] = (y1[r * d + c] - mean) / std::sqrt(var + b.eps) * b.norm2_w[c] + b.norm2_b[c];
    for (int j = 0; j < hid; ++j) {
      double h = b.fc1.bias[j];
      for (int c = 0; c < d; ++c) h += ln[c] * b.fc1.w[j * d + c];
      const double gel = 0.5 * h * (1 + std::erf(h / std::sqrt(2.0)));
      double da = 0;  // d loss / d a4[r, j] = Σ_c g[r, c] W2[c, j]
      for (int c = 0; c < d; ++c) da += g[r * d + c] * b.fc2.w[c * hid + j];
      const double u = static_cast<float>(gel) / static_cast<float>(q.scale);
      const double rr = std::nearbyint(u);
      if (rr + q.zero_point < q.qmin) {
        expect += (q.qmin - q.zero_point) * da;
        ++clamped;
      } else if (rr + q.zero_point > q.qmax) {
        expect += (q.qmax - q.zero_point) * da;
        ++clamped;
      } else {
        expect += (rr - u) * da;
      }
    }
  }
  EXPECT_GT(clamped, 0);  // the case includes clamped elements
  EXPECT_NEAR(q.grad, expect, 1e-9 * std::max(1.0, std::fabs(expect)));
}

TEST(BlockTrain, FloatMatchesFloat64) {
  TrainBlock<double> bd = MakeBlock<double>(21, true);
  TrainBlock<float> bf;
  bf.tokens = bd.tokens;
  bf.dim = bd.dim;
  bf.heads = bd.heads;
  bf.hidden = bd.hidden;
  bf.eps = bd.eps;
  auto cv = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  bf.norm1_w = cv(bd.norm1_w);
  bf.norm1_b = cv(bd.norm1_b);
  bf.norm2_w = cv(bd.norm2_w);
  bf.norm2_b = cv(bd.norm2_b);
  auto copy = [&](const TrainLinear<double>& s, TrainLinear<float>* d) {
    d->n = s.n;
    d->k = s.k;
    d->w = cv(s.w);
    d->bias = cv(s.bias);
    d->scale = cv(s.scale);
    d->qmin = s.qmin;
    d->qmax = s.qmax;
    d->quantize = true;
    d->floor_w = cv(s.floor_w);
    d->v = cv(s.v);
    d->Materialize();
  };
  copy(bd.qkv, &bf.qkv);
  copy(bd.proj, &bf.proj);
  copy(bd.fc1, &bf.fc1);
  copy(bd.fc2, &bf.fc2);
  const int batch = 3;
  std::mt19937 rng(2);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> xd(static_cast<size_t>(batch) * bd.tokens * bd.dim), gd(xd.size()),
      od(xd.size()), dxd(xd.size());
  for (auto& v : xd) v = nd(rng);
  for (auto& v : gd) v = nd(rng);
  std::vector<float> xf = cv(xd), gf = cv(gd), of(xf.size()), dxf(xf.size());
  bd.Forward(xd.data(), batch, od.data(), 0);
  bd.Backward(gd.data(), dxd.data());
  bf.Forward(xf.data(), batch, of.data(), 0);
  bf.Backward(gf.data(), dxf.data());
  for (size_t i = 0; i < od.size(); ++i) EXPECT_NEAR(of[i], od[i], 1e-4);
  for (size_t i = 0; i < dxd.size(); ++i) EXPECT_NEAR(dxf[i], dxd[i], 1e-4);
  for (size_t i = 0; i < bd.fc1.grad_v.size(); ++i)
    EXPECT_NEAR(bf.fc1.grad_v[i], bd.fc1.grad_v[i], 1e-4);
}

// fc2's input per token (kUniformRow): with the step at each row's min-max range nothing is
// clamped, so the straight-through gradient leaves d loss / d x exactly as without the quantizer
// (the forward differs by the rounding only); with the row's top clipped some gradients become 0.
TEST(BlockTrain, PerTokenFc2InputIsStraightThroughInsideEachRowsGrid) {
  std::mt19937 rng(11);
  std::normal_distribution<double> nd(0.0, 1.0);
  TrainBlock<double> plain = MakeBlock<double>(7, false);
  std::vector<double> x(static_cast<size_t>(plain.tokens) * plain.dim), g(x.size());
  for (auto& v : x) v = nd(rng);
  for (auto& v : g) v = nd(rng);
  std::vector<double> out_f(x.size()), dx_f(x.size());
  plain.Forward(x.data(), 1, out_f.data(), 0);
  plain.Backward(g.data(), dx_f.data());
  for (double scale : {1.0 / 15, 1.0 / 30}) {
    TrainBlock<double> b = MakeBlock<double>(7, false);
    TrainActQuant<double>& q = b.act[TrainBlock<double>::kFc2In];
    q.active = true;
    q.uniform_row = true;
    q.bits = 4;
    q.qmin = 0;
    q.qmax = 15;
    q.scale = scale;
    std::vector<double> out(x.size()), dx(x.size());
    b.Forward(x.data(), 1, out.data(), 0);
    b.Backward(g.data(), dx.data());
    double max_out = 0, max_dx = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      max_out = std::max(max_out, std::fabs(out[i] - out_f[i]));
      max_dx = std::max(max_dx, std::fabs(dx[i] - dx_f[i]));
    }
    EXPECT_GT(max_out, 0.0) << scale;  // the values were rounded
    if (scale == 1.0 / 15) {
      EXPECT_LT(max_out, 1.0);
      EXPECT_LT(max_dx, 1e-12);  // straight through everywhere
    } else {
      EXPECT_GT(max_dx, 1e-6);  // the clipped tops pass no gradient
    }
  }
}

TEST(Reconstruct, LowersTheBlockLossAndEndsOnTheGrid) {
  TrainBlock<float> b;
  std::mt19937 rng(4);
  std::normal_distribution<double> nd(0.0, 1.0);
  b.tokens = 9;
  b.dim = 16;
  b.heads = 2;
  b.hidden = 32;
  b.norm1_w.assign(b.dim, 1.0f);
  b.norm1_b.assign(b.dim, 0.0f);
  b.norm2_w.assign(b.dim, 1.0f);
  b.norm2_b.assign(b.dim, 0.0f);
  FillLinear(&b.qkv, 3 * b.dim, b.dim, &rng, false);
  FillLinear(&b.proj, b.dim, b.dim, &rng, false);
  FillLinear(&b.fc1, b.hidden, b.dim, &rng, false);
  FillLinear(&b.fc2, b.dim, b.hidden, &rng, false);
  for (auto* l : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) {  // 3-bit weights: a large rounding error
    for (auto& s : l->scale) s *= 7.0f / 3.0f;
    l->qmin = -4;
    l->qmax = 3;
  }
  const int n = 24;
  const int64_t per = static_cast<int64_t>(b.tokens) * b.dim;
  std::vector<float> x(n * per), target(n * per);
  for (auto& v : x) v = static_cast<float>(nd(rng));
  b.Forward(x.data(), n, target.data(), 0);  // the float block's outputs
  // 4-bit unsigned grid with a zero point on the GELU output, learned.
  TrainActQuant<float>& q = b.act[TrainBlock<float>::kFc2In];
  q.active = true;
  q.bits = 4;
  q.zero_point = 1;
  q.qmin = 0;
  q.qmax = 15;
  q.scale = 0.3f;
  std::array<std::vector<float>, 4> init;  // round to nearest on the 3-bit grid
  {
    int i = 0;
    for (auto* l : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) {
      init[i] = l->w;
      RoundToGrid(init[i++].data(), l->n, l->k, l->scale, 3);
    }
  }
  TrainBlock<float> again = b;
  ReconstructOptions ro;
  ro.iters = 500;
  ro.drop_prob = 0;  // inputs are exact here
  ro.batch = 8;
  ro.lr_round = 0.03;
  ReconstructStats st =
      ReconstructBlock(&b, init, x.data(), x.data(), target.data(), n, ro, 1, nullptr);
  EXPECT_FALSE(st.kept_init);
  EXPECT_LT(st.loss_final, 0.85 * st.loss_init) << st.loss_init << " -> " << st.loss_final;
  for (auto* l : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) {
    ASSERT_TRUE(l->hard);
    for (int r = 0; r < l->n; ++r) {
      for (int c = 0; c < l->k; ++c) {
        const float code = l->wq[r * l->k + c] / l->scale[r];
        EXPECT_NEAR(code, std::nearbyint(code), 1e-4);
        EXPECT_GE(std::nearbyint(code), l->qmin);
        EXPECT_LE(std::nearbyint(code), l->qmax);
      }
    }
  }
  // Deterministic: the same seed gives the same block.
  ReconstructBlock(&again, init, x.data(), x.data(), target.data(), n, ro, 1, nullptr);
  EXPECT_EQ(again.fc1.wq, b.fc1.wq);
  EXPECT_EQ(again.qkv.wq, b.qkv.wq);
  EXPECT_EQ(again.act[TrainBlock<float>::kFc2In].scale, q.scale);
}

}  // namespace
}  // namespace vitq::search

#include "test_util.h"
#include "vitq/qfile.h"
#include "vitq/quantize.h"
#include "vitq/safetensors.h"

namespace vitq::search {
namespace {

QuantizeOptions ReconOptions(const std::string& ckpt) {
  QuantizeOptions o;
  o.wbits = o.abits = 4;
  o.reconstruct = true;
  o.recon_iters = 6;
  o.recon_batch = 2;
  o.quiet = true;
  o.checkpoint_path = ckpt;
  return o;
}

// An interrupted run continued with resume writes the same .vitq bytes as an uninterrupted one,
// and a second uninterrupted run with the same seed does too.
TEST(Reconstruct, ResumeAndTheSameSeedGiveTheSameFile) {
  testing::TempDir dir;
  const ViTConfig c = testing::SmallConfig();
  ViTModel m = RandomModel(c, 3);
  CalibrationSet calib = testing::RandomCalibration(c, 6);
  QuantizeReport r1, r2, r3, r4;
  auto whole = QuantizeModel(m, calib, ReconOptions(dir.path("a.ckpt")), &r1);
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  ASSERT_EQ(r1.reconstruction.size(), 2u);
  ASSERT_TRUE(SaveQuantizedFile(dir.path("a.vitq"), m, whole.value()).ok());
  auto again = QuantizeModel(m, calib, ReconOptions(dir.path("b.ckpt")), &r2);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(SaveQuantizedFile(dir.path("b.vitq"), m, again.value()).ok());
  EXPECT_EQ(testing::ReadText(dir.path("a.vitq")), testing::ReadText(dir.path("b.vitq")));

  QuantizeOptions stop = ReconOptions(dir.path("c.ckpt"));
  stop.recon_stop_after = 1;
  auto stopped = QuantizeModel(m, calib, stop, &r3);
  ASSERT_FALSE(stopped.ok());
  ASSERT_TRUE(std::filesystem::exists(dir.path("c.ckpt")));
  QuantizeOptions resume = ReconOptions(dir.path("c.ckpt"));
  resume.resume = true;
  auto resumed = QuantizeModel(m, calib, resume, &r4);
  ASSERT_TRUE(resumed.ok()) << resumed.status().message();
  EXPECT_EQ(r4.reconstruction.size(), 1u);  // block 0 came from the checkpoint
  ASSERT_TRUE(SaveQuantizedFile(dir.path("c.vitq"), m, resumed.value()).ok());
  EXPECT_EQ(testing::ReadText(dir.path("a.vitq")), testing::ReadText(dir.path("c.vitq")));

  // A checkpoint of other options is refused, naming the file.
  QuantizeOptions other = ReconOptions(dir.path("c.ckpt"));
  other.resume = true;
  other.recon_iters = 7;
  auto refused = QuantizeModel(m, calib, other, &r4);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(refused.status().message().find("c.ckpt"), std::string::npos);
  EXPECT_NE(refused.status().message().find("other options"), std::string::npos);
}

TEST(Reconstruct, ImpossibleOptionsAreRefusedBeforeWork) {
  QuantizeOptions o = ReconOptions("");
  o.recon_iters = 0;
  EXPECT_NE(o.Validate().message().find("--recon-iters"), std::string::npos);
  o = ReconOptions("");
  o.recon_drop = 1.5;
  EXPECT_NE(o.Validate().message().find("--recon-drop"), std::string::npos);
  o = ReconOptions("");
  o.recon_drop = -0.1;
  EXPECT_EQ(o.Validate().code(), StatusCode::kUsage);
  o = ReconOptions("");
  o.method = "liu2021";
  EXPECT_NE(o.Validate().message().find("--reconstruct"), std::string::npos);
  o = ReconOptions("");
  o.reconstruct = false;
  o.resume = true;
  EXPECT_NE(o.Validate().message().find("--resume"), std::string::npos);
  o = ReconOptions("");
  o.recon_augment = 65;
  EXPECT_NE(o.Validate().message().find("--recon-augment"), std::string::npos);
}

}  // namespace
}  // namespace vitq::search

#include <nlohmann/json.hpp>

#include "vitq/model.h"

namespace vitq::search {
namespace {

// Block 0 of the bundled DeiT-Tiny in float64 with AdaRound soft weights on all four layers,
// against PyTorch autograd (tests/data/block0_grad_reference.json, made by
// tools/block_grad_reference.py with the same inputs).
TEST(BlockTrain, MatchesPyTorchAutogradOnDeitTinyBlock0) {
  auto model = LoadModel(testing::RepoPath("models/deit-tiny"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  const nlohmann::json ref = nlohmann::json::parse(
      testing::ReadText(testing::RepoPath("tests/data/block0_grad_reference.json")));
  const BlockWeights& bw = model->weights.blocks[0];
  const ViTConfig& c = model->spec.config;
  TrainBlock<double> b;
  b.tokens = c.num_tokens();
  b.dim = c.embed_dim;
  b.heads = c.num_heads;
  b.hidden = c.mlp_hidden;
  b.eps = c.ln_eps;
  auto vec = [](const Tensor& t) { return std::vector<double>(t.f32(), t.f32() + t.size()); };
  b.norm1_w = vec(bw.norm1_weight);
  b.norm1_b = vec(bw.norm1_bias);
  b.norm2_w = vec(bw.norm2_weight);
  b.norm2_b = vec(bw.norm2_bias);
  const std::pair<TrainLinear<double>*, const LinearWeights*> layers[] = {
      {&b.qkv, &bw.qkv}, {&b.proj, &bw.proj}, {&b.fc1, &bw.fc1}, {&b.fc2, &bw.fc2}};
  for (int li = 0; li < 4; ++li) {
    TrainLinear<double>& l = *layers[li].first;
    l.n = static_cast<int>(layers[li].second->weight.dim(0));
    l.k = static_cast<int>(layers[li].second->weight.dim(1));
    l.w = vec(layers[li].second->weight);
    l.bias = vec(layers[li].second->bias);
    l.scale.assign(l.n, 0.0);
    for (int r = 0; r < l.n; ++r) {
      for (int k = 0; k < l.k; ++k) l.scale[r] = std::max(l.scale[r], std::fabs(l.w[r * l.k + k]));
      l.scale[r] /= 7.0;
    }
    l.qmin = -8;
    l.qmax = 7;
    l.InitRounding();
    for (size_t i = 0; i < l.v.size(); ++i) l.v[i] = 2.0 * std::sin(0.37 * i + 1.0 + li);
    l.Materialize();
  }
  const int64_t n = static_cast<int64_t>(b.tokens) * b.dim;
  std::vector<double> x(n), g(n), out(n), dx(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = 2.0 * std::sin(0.007 * i + 0.3);
    g[i] = std::cos(0.0013 * i + 0.1);
  }
  b.Forward(x.data(), 1, out.data(), 0);
  b.Backward(g.data(), dx.data());
  const int stride = ref["stride"].get<int>();
  auto check = [&](const std::string& key, const std::vector<double>& got) {
    const auto& want = ref[key]["values"];
    double norm = 0;
    for (double v : got) norm += v * v;
    norm = std::sqrt(norm);
    const double ref_norm = ref[key]["norm"].get<double>();
    EXPECT_NEAR(norm, ref_norm, 1e-9 * ref_norm) << key;
    ASSERT_EQ(want.size(), (got.size() + stride - 1) / stride) << key;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(got[i * stride], want[i].get<double>(), 1e-9 * std::max(1.0, ref_norm))
          << key << " " << i;
    }
  };
  check("out", out);
  check("dx", dx);
  check("dv.attn.qkv", b.qkv.grad_v);
  check("dv.attn.proj", b.proj.grad_v);
  check("dv.mlp.fc1", b.fc1.grad_v);
  check("dv.mlp.fc2", b.fc2.grad_v);
}

}  // namespace
}  // namespace vitq::search
