// The per-operation alternating scale search (search stage). Liu et al., "Post-Training
// Quantization for Vision Transformer", NeurIPS 2021, §3.2-3.4; method.md §1.3-1.6.
#include "op_search.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "../kernels/int8_matmul.h"
#include "ranking_loss.h"
#include "vitq/quant.h"

namespace vitq::search {

float InitialScale(const float* x, int64_t n, int bits) {
  float m = 0.f;
#pragma omp parallel for reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m > 0 ? m / static_cast<float>(1 << (bits - 1)) : 1.0f;
}

namespace {

// Candidate evaluation only: x · (1/Δ) may differ from x / Δ in the last bit at exact ties, which
// cannot change which candidate wins measurably; plans and simulation use QuantizeValue.
// Hot loops get an AVX-512 clone chosen at load time (GCC target_clones, ifunc dispatch); the
// default clone runs on any x86-64.
#define VITQ_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

VITQ_SIMD_CLONES void QuantizeRange(const float* x, int64_t n, float inv, float qmin, float qmax,
                                    int8_t* q) {
  for (int64_t i = 0; i < n; ++i) {
    float r = __builtin_nearbyintf(x[i] * inv);
    r = r < qmin ? qmin : (r > qmax ? qmax : r);
    q[i] = static_cast<int8_t>(r);
  }
}

// Ô = scale · acc + bias for `rows` rows of `nch` channels (bias may be null).
VITQ_SIMD_CLONES void ConvertRows(const int32_t* acc, int64_t rows, int nch, float scale,
                                  const float* bias, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * nch;
    float* o = out + r * nch;
    if (bias != nullptr) {
      for (int c = 0; c < nch; ++c) o[c] = static_cast<float>(a[c]) * scale + bias[c];
    } else {
      for (int c = 0; c < nch; ++c) o[c] = static_cast<float>(a[c]) * scale;
    }
  }
}

// Sums of q, q², o·q over n values: float partial sums over blocks of 1024, double across blocks.
VITQ_SIMD_CLONES void SimilaritySums(const float* o, const float* q, int64_t n, double* s1,
                                     double* s2, double* s12) {
  double d1 = 0, d2 = 0, d12 = 0;
  for (int64_t j0 = 0; j0 < n; j0 += 1024) {
    const int64_t j1 = std::min<int64_t>(n, j0 + 1024);
    float f1 = 0, f2 = 0, f12 = 0;
#pragma omp simd reduction(+ : f1, f2, f12)
    for (int64_t j = j0; j < j1; ++j) {
      f1 += q[j];
      f2 += q[j] * q[j];
      f12 += o[j] * q[j];
    }
    d1 += f1;
    d2 += f2;
    d12 += f12;
  }
  *s1 = d1;
  *s2 = d2;
  *s12 = d12;
}

void QuantizeParallel(const float* x, int64_t n, float scale, int bits, int8_t* q) {
  const float qmin = static_cast<float>(-(1 << (bits - 1))),
              qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const float inv = 1.0f / scale;
  const int64_t block = 1 << 16;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < (n + block - 1) / block; ++b) {
    const int64_t i0 = b * block;
    QuantizeRange(x + i0, std::min(block, n - i0), inv, qmin, qmax, q + i0);
  }
}

struct Evaluation {
  double similarity = 0;           // mean over images
  double ranking = 0;              // L_rank (mean over pairs)
  std::vector<double> bias_error;  // mean (Ô - O) per output channel
  double signal = 0, noise = 0;
};

class Searcher {
 public:
  Searcher(const OpTensors& op, const SearchOptions& opt, kernels::DnnlContext* ctx)
      : op_(op),
        opt_(opt),
        ctx_(ctx),
        lin_(ctx, op.is_matmul ? 1 : op.n, op.is_matmul ? 1 : op.k),
        bmm_(ctx) {
    const int64_t n_img = op.images;
    if (!op.is_matmul) {
      x_per_image_ = op.rows * op.k;
      w_per_image_ = 0;
      out_per_image_ = op.rows * op.n;
      out_channels_ = op.n;
    } else {
      const int64_t hk = static_cast<int64_t>(op.heads);
      x_per_image_ = hk * op.m * op.k;
      w_per_image_ = hk * op.k * op.n;
      out_per_image_ = hk * op.m * op.n;
      out_channels_ = 0;
    }
    // Float outputs, computed once.
    o_.resize(static_cast<size_t>(n_img * out_per_image_));
    if (!op.is_matmul) {
      kernels::PackedLinear fl(ctx, op.weight, op.bias.data(), op.n, op.k);
      fl.Run(op.x, static_cast<int>(n_img * op.rows), o_.data(), false, false);
    } else {
      kernels::DnnlOps ops(ctx);
      ops.BatchedMatmul(op.a, op.b, op.b_rows_are_k, static_cast<int>(n_img * op.heads), op.m, op.k,
                        op.n, o_.data());
    }
    o_mean_.resize(n_img);
    o_norm2_.resize(n_img);
#pragma omp parallel for
    for (int64_t i = 0; i < n_img; ++i) {
      const float* o = o_.data() + i * out_per_image_;
      double s = 0, s2 = 0;
      for (int64_t j = 0; j < out_per_image_; ++j) {
        s += o[j];
        s2 += static_cast<double>(o[j]) * o[j];
      }
      o_mean_[i] = s / out_per_image_;
      o_norm2_[i] = opt_.similarity == Similarity::kPearson ? s2 - s * s / out_per_image_ : s2;
    }
    if (op.is_matmul && op.is_attention_scores && opt.ranking) {
      const int64_t rows = n_img * op.heads * op.m;
      const int w = op.n;
      order_.resize(static_cast<size_t>(rows) * w);
      group_end_.resize(order_.size());
      a_sorted_.resize(order_.size());
#pragma omp parallel for schedule(dynamic, 64)
      for (int64_t r = 0; r < rows; ++r) {
        const float* a = o_.data() + r * w;
        RowOrder ro = SortRow(a, w);
        for (int p = 0; p < w; ++p) {
          order_[r * w + p] = ro.order[p];
          group_end_[r * w + p] = ro.group_end[p];
          a_sorted_[r * w + p] = a[ro.order[p]];
        }
      }
    }
    // Chunks of images small enough for the candidate outputs to stay in cache.
    chunk_ = static_cast<int>(
        std::max<int64_t>(1, std::min<int64_t>(n_img, (1 << 20) / out_per_image_)));
    out_.resize(static_cast<size_t>(chunk_ * out_per_image_));
    acc_.resize(out_.size());
    qx_.resize(static_cast<size_t>(chunk_ * x_per_image_));
    if (op.is_matmul)
      qw_.resize(static_cast<size_t>(chunk_ * w_per_image_));
    else
      qw_.resize(static_cast<size_t>(op.n) * op.k);
  }

  const std::vector<float>& float_output() const { return o_; }

  struct Candidate {
    float dx, dw;
  };

  Evaluation Evaluate(float dx, float dw, const std::vector<float>& bias, bool ranking,
                      bool bias_error, bool sqnr) {
    return EvaluateMany({{dx, dw}}, bias, ranking, bias_error, sqnr)[0];
  }

  // Evaluates candidates chunk by chunk of images, all candidates per chunk, so each chunk's float
  // outputs are read from memory once per call rather than once per candidate.
  std::vector<Evaluation> EvaluateMany(const std::vector<Candidate>& cands,
                                       const std::vector<float>& bias, bool ranking,
                                       bool bias_error, bool sqnr) {
    const int n_img = op_.images;
    const int nc = static_cast<int>(cands.size());
    evaluations_ += nc;
    // Linear layers: pack each distinct weight interval once.
    std::vector<int> packed_index(nc, -1);
    std::vector<dnnl::memory> packed;
    if (!op_.is_matmul) {
      std::vector<float> seen;
      for (int i = 0; i < nc; ++i) {
        auto it = std::find(seen.begin(), seen.end(), cands[i].dw);
        if (it != seen.end()) {
          packed_index[i] = static_cast<int>(it - seen.begin());
          continue;
        }
        QuantizeParallel(op_.weight, static_cast<int64_t>(op_.n) * op_.k, cands[i].dw, opt_.bits_w,
                         qw_.data());
        packed.push_back(lin_.Pack(qw_.data()));
        packed_index[i] = static_cast<int>(seen.size());
        seen.push_back(cands[i].dw);
      }
    }
    std::vector<Evaluation> ev(nc);
    std::vector<std::vector<double>> sims(nc, std::vector<double>(n_img));
    std::vector<double> rank_sum(nc, 0.0);
    std::vector<int64_t> rank_pairs(nc, 0);
    if (bias_error) {
      for (auto& e : ev) e.bias_error.assign(out_channels_, 0.0);
    }
    for (int c0 = 0; c0 < n_img; c0 += chunk_) {
      const int cn = std::min(chunk_, n_img - c0);
      const float* oc = o_.data() + c0 * out_per_image_;
      float quantized_w_dw = -1.0f;
      for (int ci = 0; ci < nc; ++ci) {
        const float dx = cands[ci].dx, dw = cands[ci].dw, scale = dx * dw;
        const int8_t* qx = QuantizedX(dx, c0, cn);
        if (!op_.is_matmul) {
          lin_.Run(qx, static_cast<int>(cn * op_.rows), packed[packed_index[ci]], acc_.data());
        } else {
          if (dw != quantized_w_dw) {
            QuantizeParallel(op_.b + c0 * w_per_image_, cn * w_per_image_, dw, opt_.bits_w,
                             qw_.data());
            quantized_w_dw = dw;
          }
          bmm_.Run(qx, qw_.data(), op_.b_rows_are_k, cn * op_.heads, op_.m, op_.k, op_.n,
                   acc_.data());
        }
        // Ô = scale · accumulator (+ bias per output channel for linear layers).
        {
          const int64_t rows = cn * out_per_image_ / op_.n;
          const float* bp = op_.is_matmul ? nullptr : bias.data();
          const int64_t block = std::max<int64_t>(1, 4096 / op_.n);
#pragma omp parallel for schedule(static)
          for (int64_t b = 0; b < (rows + block - 1) / block; ++b) {
            const int64_t r0 = b * block;
            ConvertRows(acc_.data() + r0 * op_.n, std::min(block, rows - r0), op_.n, scale, bp,
                        out_.data() + r0 * op_.n);
          }
        }
        double chunk_signal = 0, chunk_noise = 0;
        std::vector<double>& sim_c = sims[ci];
#pragma omp parallel for reduction(+ : chunk_signal, chunk_noise)
        for (int i = 0; i < cn; ++i) {
          const float* o = oc + i * out_per_image_;
          const float* q = out_.data() + i * out_per_image_;
          double s1 = 0, s2 = 0, s12 = 0, sig = 0, noise = 0;
          SimilaritySums(o, q, out_per_image_, &s1, &s2, &s12);
          if (sqnr) {
            for (int64_t j = 0; j < out_per_image_; ++j) {
              double d = static_cast<double>(o[j]) - q[j];
              sig += static_cast<double>(o[j]) * o[j];
              noise += d * d;
            }
          }
          const int64_t n = out_per_image_;
          const int img = c0 + i;
          double sim;
          if (opt_.similarity == Similarity::kPearson) {
            double cov = s12 - o_mean_[img] * s1, var = s2 - s1 * s1 / n;
            sim = (var > 0 && o_norm2_[img] > 0) ? cov / std::sqrt(var * o_norm2_[img]) : 0.0;
          } else {
            sim = (s2 > 0 && o_norm2_[img] > 0) ? s12 / std::sqrt(s2 * o_norm2_[img]) : 0.0;
          }
          sim_c[img] = sim;
          chunk_signal += sig;
          chunk_noise += noise;
        }
        ev[ci].signal += chunk_signal;
        ev[ci].noise += chunk_noise;
        if (bias_error) {
          const int64_t rows = cn * op_.rows;
          const int nch = op_.n;
          std::vector<double>& be = ev[ci].bias_error;
#pragma omp parallel
          {
            std::vector<double> local(nch, 0.0);
#pragma omp for
            for (int64_t r = 0; r < rows; ++r) {
              const float* o = oc + r * nch;
              const float* q = out_.data() + r * nch;
              for (int c = 0; c < nch; ++c) local[c] += q[c] - o[c];
            }
#pragma omp critical
            for (int c = 0; c < nch; ++c) be[c] += local[c];
          }
        }
        if (ranking) {
          const int64_t rows = static_cast<int64_t>(cn) * op_.heads * op_.m;
          const int64_t row0 = static_cast<int64_t>(c0) * op_.heads * op_.m;
          const int w = op_.n;
          double rs_sum = 0;
          int64_t rs_pairs = 0;
#pragma omp parallel reduction(+ : rs_sum, rs_pairs)
          {
            std::vector<float> scratch(2 * w);
#pragma omp for schedule(dynamic, 64)
            for (int64_t r = 0; r < rows; ++r) {
              const int64_t g = (row0 + r) * w;
              RankSum rs = RankingRowWindowedFlat(order_.data() + g, group_end_.data() + g,
                                                  a_sorted_.data() + g, out_.data() + r * w, w,
                                                  opt_.theta, scratch.data());
              rs_sum += rs.sum;
              rs_pairs += rs.pairs;
            }
          }
          rank_sum[ci] += rs_sum;
          rank_pairs[ci] += rs_pairs;
        }
      }
    }
    for (int ci = 0; ci < nc; ++ci) {
      ev[ci].similarity = std::accumulate(sims[ci].begin(), sims[ci].end(), 0.0) / n_img;
      ev[ci].ranking = rank_pairs[ci] > 0 ? rank_sum[ci] / rank_pairs[ci] : 0.0;
      if (bias_error) {
        const double rows = static_cast<double>(n_img) * op_.rows;
        for (auto& e : ev[ci].bias_error) e /= rows;
      }
    }
    return ev;
  }

  // The quantized first operand of images [c0, c0 + cn). The whole quantized X is cached for one
  // scale when it fits in 256 MB (the W-step reuses it for every candidate).
  const int8_t* QuantizedX(float dx, int c0, int cn) {
    const float* xs = op_.is_matmul ? op_.a : op_.x;
    const int64_t total = static_cast<int64_t>(op_.images) * x_per_image_;
    if (total <= (int64_t{256} << 20)) {
      if (cached_dx_ != dx) {
        qx_all_.resize(static_cast<size_t>(total));
        QuantizeParallel(xs, total, dx, opt_.bits_x, qx_all_.data());
        cached_dx_ = dx;
      }
      return qx_all_.data() + c0 * x_per_image_;
    }
    if (chunk_dx_ != dx || chunk_c0_ != c0) {
      QuantizeParallel(xs + c0 * x_per_image_, cn * x_per_image_, dx, opt_.bits_x, qx_.data());
      chunk_dx_ = dx;
      chunk_c0_ = c0;
    }
    return qx_.data();
  }

  bool use_ranking() const { return op_.is_matmul && op_.is_attention_scores && opt_.ranking; }
  double Objective(const Evaluation& e) const {
    return e.similarity - (use_ranking() ? opt_.gamma * e.ranking : 0.0);
  }

  // Best candidate for one operand with the other fixed. With the ranking loss, candidates are
  // visited by decreasing similarity and the loss computed only while a candidate could still
  // win (objective <= similarity since the loss is >= 0): exact, and far fewer loss evaluations.
  float BestCandidate(bool search_w, float dx, float dw, float d0, const std::vector<float>& bias) {
    const int n = opt_.candidates;
    std::vector<Candidate> cand(n);
    for (int i = 0; i < n; ++i) {
      float d = n == 1 ? d0 : d0 * (opt_.alpha + (opt_.beta - opt_.alpha) * i / (n - 1));
      cand[i] = search_w ? Candidate{dx, d} : Candidate{d, dw};
    }
    std::vector<Evaluation> evs = EvaluateMany(cand, bias, false, false, false);
    std::vector<double> sim(n);
    for (int i = 0; i < n; ++i) sim[i] = evs[i].similarity;
    auto pick = [&](int i) { return search_w ? cand[i].dw : cand[i].dx; };
    if (!use_ranking())
      return pick(static_cast<int>(std::max_element(sim.begin(), sim.end()) - sim.begin()));
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sim[a] > sim[b]; });
    double best = -1e300;
    int best_i = order[0];
    // Batches of the most similar candidates still able to win, until none is.
    size_t next = 0;
    while (next < order.size() && sim[order[next]] > best) {
      std::vector<int> batch;
      while (next < order.size() && sim[order[next]] > best && batch.size() < 8)
        batch.push_back(order[next++]);
      std::vector<Candidate> bc;
      for (int i : batch) bc.push_back(cand[i]);
      std::vector<Evaluation> re = EvaluateMany(bc, bias, true, false, false);
      for (size_t j = 0; j < batch.size(); ++j) {
        double obj = sim[batch[j]] - opt_.gamma * re[j].ranking;
        if (obj > best || (obj == best && batch[j] < best_i)) {
          best = obj;
          best_i = batch[j];
        }
      }
    }
    return pick(best_i);
  }

  int evaluations() const { return evaluations_; }

 private:
  const OpTensors& op_;
  const SearchOptions& opt_;
  kernels::DnnlContext* ctx_;
  kernels::S8Linear lin_;
  kernels::S8BatchedMatmul bmm_;
  int64_t x_per_image_ = 0, w_per_image_ = 0, out_per_image_ = 0;
  int out_channels_ = 0;
  std::vector<float> o_, out_;
  std::vector<int32_t> acc_;
  std::vector<double> o_mean_, o_norm2_;
  std::vector<uint16_t> order_,
      group_end_;  // per row of Q·Kᵀ: the float-sorted order (ranking loss)
  std::vector<float> a_sorted_;
  std::vector<int8_t> qx_, qw_, qx_all_;
  float cached_dx_ = -1.0f, chunk_dx_ = -1.0f;
  int chunk_c0_ = -1;
  int chunk_ = 1;
  int evaluations_ = 0;
};

}  // namespace

OpResult SearchOp(const OpTensors& op, const SearchOptions& opt, kernels::DnnlContext* ctx,
                  float fixed_w, float fixed_x) {
  Searcher s(op, opt, ctx);
  const float* xs = op.is_matmul ? op.a : op.x;
  const int64_t x_size = op.is_matmul ? static_cast<int64_t>(op.images) * op.heads * op.m * op.k
                                      : static_cast<int64_t>(op.images) * op.rows * op.k;
  const float* ws = op.is_matmul ? op.b : op.weight;
  const int64_t w_size = op.is_matmul ? static_cast<int64_t>(op.images) * op.heads * op.k * op.n
                                      : static_cast<int64_t>(op.n) * op.k;
  const float dx0 = InitialScale(xs, x_size, opt.bits_x),
              dw0 = InitialScale(ws, w_size, opt.bits_w);
  const bool correct = opt.bias_correction && !op.is_matmul;
  std::vector<float> bias = op.bias;
  OpResult r;
  Evaluation e0 = s.Evaluate(dx0, dw0, bias, s.use_ranking(), false, false);
  r.similarity_before = e0.similarity;
  r.ranking_before = e0.ranking;
  float dx = fixed_x > 0 ? fixed_x : dx0, dw = fixed_w > 0 ? fixed_w : dw0;
  auto correct_bias = [&] {
    Evaluation eb = s.Evaluate(dx, dw, bias, false, true, false);
    for (int c = 0; c < op.n; ++c) bias[c] -= static_cast<float>(eb.bias_error[c]);
  };
  if (!opt.search || fixed_w > 0 || fixed_x > 0) {
    if (correct) correct_bias();
  } else {
    double prev = s.Objective(e0);
    for (int round = 1; round <= opt.max_rounds; ++round) {
      dw = s.BestCandidate(true, dx, dw, dw0, bias);
      dx = s.BestCandidate(false, dx, dw, dx0, bias);
      if (correct) correct_bias();
      double obj = s.Objective(s.Evaluate(dx, dw, bias, s.use_ranking(), false, false));
      r.rounds = round;
      if (obj - prev < opt.tolerance) break;
      prev = obj;
    }
  }
  Evaluation fin = s.Evaluate(dx, dw, bias, s.use_ranking(), false, true);
  r.scale_w = dw;
  r.scale_x = dx;
  r.similarity_after = fin.similarity;
  r.ranking_after = fin.ranking;
  r.objective = s.Objective(fin);
  r.sqnr_db = fin.noise > 0 ? 10.0 * std::log10(fin.signal / fin.noise) : 200.0;
  if (!op.is_matmul) {
    double shift = 0;
    for (int c = 0; c < op.n; ++c) shift += std::fabs(bias[c] - op.bias[c]);
    r.bias_shift = op.n > 0 ? shift / op.n : 0.0;
    r.bias = std::move(bias);
  }
  r.evaluations = s.evaluations();
  return r;
}

}  // namespace vitq::search
