// Block reconstruction: AdaRound + LSQ + QDrop with Adam (search stage; reconstruct.h).
#include "reconstruct.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

namespace vitq::search {
namespace {

struct Adam {
  std::vector<double> m, v;
  int64_t step = 0;
  static constexpr double kB1 = 0.9, kB2 = 0.999, kEps = 1e-8;
  void Init(size_t n) {
    m.assign(n, 0.0);
    v.assign(n, 0.0);
    step = 0;
  }
  // One step on params (any arithmetic type) with gradients grad and step size lr.
  template <typename P>
  void Update(P* params, const double* grad, size_t n, double lr) {
    ++step;
    const double c1 = 1.0 - std::pow(kB1, static_cast<double>(step));
    const double c2 = 1.0 - std::pow(kB2, static_cast<double>(step));
#pragma omp parallel for
    for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
      m[i] = kB1 * m[i] + (1 - kB1) * grad[i];
      v[i] = kB2 * v[i] + (1 - kB2) * grad[i] * grad[i];
      params[i] = static_cast<P>(params[i] - lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + kEps));
    }
  }
};

std::array<TrainLinear<float>*, 4> Linears(TrainBlock<float>* b) {
  return {&b->qkv, &b->proj, &b->fc1, &b->fc2};
}

}  // namespace

double BlockLoss(TrainBlock<float>* block, const float* x, const float* target, int n, int batch) {
  const int64_t per = static_cast<int64_t>(block->tokens) * block->dim;
  const double saved_drop = block->drop_prob;
  block->drop_prob = 0;
  std::vector<float> out(static_cast<size_t>(batch) * per);
  double total = 0;
  for (int b = 0; b < n; b += batch) {
    const int nb = std::min(batch, n - b);
    block->Forward(x + b * per, nb, out.data(), 0);
    const float* tg = target + b * per;
    for (int64_t i = 0; i < nb * per; ++i) {
      const double e = static_cast<double>(out[i]) - tg[i];
      total += e * e;
    }
  }
  block->drop_prob = saved_drop;
  return total / (static_cast<double>(n) * block->tokens);
}

ReconstructStats ReconstructBlock(TrainBlock<float>* block,
                                  const std::array<std::vector<float>, 4>& init_weights,
                                  const float* xq, const float* xf, const float* target, int n,
                                  const ReconstructOptions& opts, uint64_t seed,
                                  const std::function<void(int, double)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  ReconstructStats st;
  const int64_t per = static_cast<int64_t>(block->tokens) * block->dim;
  const int eval_batch = std::min(n, 16);
  auto lin = Linears(block);

  // The closed-form initialization, as the plan has it.
  std::array<std::vector<float>, 4> float_w;
  std::array<float, TrainBlock<float>::kNumSites> init_scale{};
  for (int s = 0; s < TrainBlock<float>::kNumSites; ++s) init_scale[s] = block->act[s].scale;
  for (int i = 0; i < 4; ++i) {
    float_w[i] = lin[i]->w;
    lin[i]->w = init_weights[i];
    lin[i]->quantize = false;
    lin[i]->Materialize();
  }
  st.loss_init = BlockLoss(block, xq, target, n, eval_batch);
  for (int i = 0; i < 4; ++i) {
    lin[i]->w = float_w[i];
    lin[i]->hard = false;
    lin[i]->InitRounding();
  }

  // The learned variables and their optimizers.
  std::array<Adam, 4> adam_v;
  for (int i = 0; i < 4; ++i) adam_v[i].Init(lin[i]->v.size());
  std::vector<int> steps;  // the learned activation steps
  for (int s = 0; s < TrainBlock<float>::kNumSites; ++s) {
    TrainActQuant<float>& q = block->act[s];
    q.learn = opts.learn_steps && q.active && !q.log && !q.uniform_row;
    if (q.learn) steps.push_back(s);
  }
  Adam adam_s;
  adam_s.Init(steps.size());
  std::vector<double> theta(steps.size(), 1.0);  // step = initial step · θ

  std::mt19937_64 rng(seed);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  size_t cursor = n;
  const int batch = std::min(opts.batch, n);
  std::vector<float> in(static_cast<size_t>(batch) * per), tg(in.size()), out(in.size()),
      dout(in.size());
  const int warm = static_cast<int>(opts.warmup * opts.iters);
  block->drop_prob = opts.drop_prob;
  for (int it = 0; it < opts.iters; ++it) {
    // A batch of images, each image once per epoch.
    std::vector<int> pick;
    for (int j = 0; j < batch; ++j) {
      if (cursor >= order.size()) {
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      pick.push_back(order[cursor++]);
    }
    const uint64_t step_seed = rng();
    for (int j = 0; j < batch; ++j) {
      const int64_t src = static_cast<int64_t>(pick[j]) * per;
      std::copy(target + src, target + src + per, tg.begin() + j * per);
      // QDrop on the block input: each element from the float model with drop_prob.
      float* dst = in.data() + j * per;
      const uint64_t image_seed = step_seed ^ (static_cast<uint64_t>(j) << 48);
      for (int64_t e = 0; e < per; ++e) {
        const double u = SplitMixUniform(image_seed + static_cast<uint64_t>(e) * kGoldenGamma);
        dst[e] = u < opts.drop_prob ? xf[src + e] : xq[src + e];
      }
    }
    for (auto* l : lin) l->Materialize();
    block->Forward(in.data(), batch, out.data(), step_seed);
    const double rows = static_cast<double>(batch) * block->tokens;
    double loss = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const double e = static_cast<double>(out[i]) - tg[i];
      loss += e * e;
      dout[i] = static_cast<float>(2.0 * e / rows);
    }
    loss /= rows;
    block->Backward(dout.data(), nullptr);
    // Cosine decay of both step sizes.
    const double decay = 0.5 * (1 + std::cos(M_PI * it / opts.iters));
    const double rel =
        it < warm ? -1 : static_cast<double>(it - warm) / std::max(1, opts.iters - warm);
    const double beta = 2.0 + (20.0 - 2.0) * (1.0 - std::max(0.0, rel));
    for (int i = 0; i < 4; ++i) {
      if (rel >= 0) lin[i]->RoundingRegularizer(beta, &lin[i]->grad_v, opts.round_weight);
      adam_v[i].Update(lin[i]->v.data(), lin[i]->grad_v.data(), lin[i]->v.size(),
                       opts.lr_round * decay);
    }
    if (!steps.empty()) {
      std::vector<double> g(steps.size());
      for (size_t j = 0; j < steps.size(); ++j)
        g[j] = block->act[steps[j]].grad * init_scale[steps[j]];
      adam_s.Update(theta.data(), g.data(), theta.size(), opts.lr_step * decay);
      for (size_t j = 0; j < steps.size(); ++j) {
        theta[j] = std::max(theta[j], 0.05);
        block->act[steps[j]].scale = static_cast<float>(init_scale[steps[j]] * theta[j]);
      }
    }
    if (progress) progress(it + 1, loss);
  }
  block->drop_prob = 0;
  for (auto* l : lin) {
    l->hard = true;
    l->Materialize();
  }
  st.loss_final = BlockLoss(block, xq, target, n, eval_batch);
  if (!(st.loss_final < st.loss_init)) {  // keep the initialization
    st.kept_init = true;
    for (int i = 0; i < 4; ++i) {
      lin[i]->quantize = false;
      lin[i]->w = init_weights[i];
      lin[i]->Materialize();
    }
    for (int s = 0; s < TrainBlock<float>::kNumSites; ++s) block->act[s].scale = init_scale[s];
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace vitq::search
