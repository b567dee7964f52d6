// The per-operation alternating scale search (search stage). Liu et al., "Post-Training
// Quantization for Vision Transformer", NeurIPS 2021, §3.2-3.4; method.md §1.3-1.6.
#include "op_search.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "../kernels/gemm_backend.h"
#include "../kernels/int8_matmul.h"
#include "../kernels/simd.h"
#include "ranking_loss.h"
#include "vitq/dist.h"
#include "vitq/quant.h"

namespace vitq::search {

float InitialScale(const float* x, int64_t n, int bits) {
  return MinMaxParams(x, n, SymmetricScheme(bits)).scale[0];
}

float GlobalInitialScale(const float* x, int64_t n, int bits) {
  if (dist::Size() == 1) return InitialScale(x, n, bits);
  float lo = 0.f, hi = 0.f;
#pragma omp parallel for reduction(min : lo) reduction(max : hi) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float m = static_cast<float>(dist::Max(std::max(-lo, hi)));  // exact: a float's max
  const float pair[2] = {-m, m};
  return InitialScale(pair, 2, bits);
}

namespace {

// Candidate evaluation only: x · (1/Δ) may differ from x / Δ in the last bit at exact ties, which
// cannot change which candidate wins measurably; plans and simulation use QuantizeValue.
// Hot loops are compiled per SIMD level and run at the process's (kernels/simd.h).
VITQ_SIMD_BODY void QuantizeRangeBody(const float* x, int64_t n, float inv, float qmin, float qmax,
                                      int8_t* q) {
  for (int64_t i = 0; i < n; ++i)
    q[i] = static_cast<int8_t>(QuantizeToGrid(x[i] * inv, qmin, qmax));
}
VITQ_SIMD_FUNCTION(, void, QuantizeRange,
                   (const float* x, int64_t n, float inv, float qmin, float qmax, int8_t* q),
                   (x, n, inv, qmin, qmax, q))

// Ô = scale · acc + bias for `rows` rows of `nch` channels (bias may be null).
VITQ_SIMD_BODY void ConvertRowsBody(const int32_t* acc, int64_t rows, int nch, float scale,
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
VITQ_SIMD_FUNCTION(, void, ConvertRows,
                   (const int32_t* acc, int64_t rows, int nch, float scale, const float* bias,
                    float* out),
                   (acc, rows, nch, scale, bias, out))

// Sums of q, q², o·q over n values: float partial sums over blocks of 1024, double across blocks.
VITQ_SIMD_BODY void SimilaritySumsBody(const float* o, const float* q, int64_t n, double* s1,
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
VITQ_SIMD_FUNCTION(, void, SimilaritySums,
                   (const float* o, const float* q, int64_t n, double* s1, double* s2, double* s12),
                   (o, q, n, s1, s2, s12))

// The same sums with q = scale · acc + bias[c] computed on the fly from `rows` rows of `nch`
// integer accumulators (bias may be null): no candidate output is written.
VITQ_SIMD_BODY void SimilaritySumsAccBody(const int32_t* acc, const float* o, int64_t rows, int nch,
                                          float scale, const float* bias, double* s1, double* s2,
                                          double* s12) {
  double d1 = 0, d2 = 0, d12 = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * nch;
    const float* orow = o + r * nch;
    float f1 = 0, f2 = 0, f12 = 0;
    if (bias != nullptr) {
#pragma omp simd reduction(+ : f1, f2, f12)
      for (int c = 0; c < nch; ++c) {
        const float q = static_cast<float>(a[c]) * scale + bias[c];
        f1 += q;
        f2 += q * q;
        f12 += orow[c] * q;
      }
    } else {
#pragma omp simd reduction(+ : f1, f2, f12)
      for (int c = 0; c < nch; ++c) {
        const float q = static_cast<float>(a[c]) * scale;
        f1 += q;
        f2 += q * q;
        f12 += orow[c] * q;
      }
    }
    d1 += f1;
    d2 += f2;
    d12 += f12;
  }
  *s1 = d1;
  *s2 = d2;
  *s12 = d12;
}
VITQ_SIMD_FUNCTION(, void, SimilaritySumsAcc,
                   (const int32_t* acc, const float* o, int64_t rows, int nch, float scale,
                    const float* bias, double* s1, double* s2, double* s12),
                   (acc, o, rows, nch, scale, bias, s1, s2, s12))

void QuantizeParallel(const float* x, int64_t n, float scale, int bits, int8_t* q) {
  const QuantScheme scheme = SymmetricScheme(bits);
  const float qmin = static_cast<float>(scheme.qmin()), qmax = static_cast<float>(scheme.qmax());
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
      for (size_t i = 0; i < group_end_.size(); ++i) rank_pairs_ += w - group_end_[i];
      rank_pairs_ = dist::Sum(rank_pairs_);  // over the job's images
    }
    // Chunks of images small enough for a chunk's accumulators and float outputs to stay in the
    // cores' L2 caches (1 MB each here) while every candidate of a step passes over them.
    chunk_ = static_cast<int>(
        std::max<int64_t>(1, std::min<int64_t>(n_img, (1 << 20) / out_per_image_)));
    // The chunks a 1-process run would use over all the job's images: the ranking loss's early
    // stop checks its partial sum at their ends, so every process count stops at the same point.
    total_chunk_ = static_cast<int>(
        std::max<int64_t>(1, std::min<int64_t>(op.TotalImages(), (1 << 20) / out_per_image_)));
    row_block_ = std::max<int64_t>(1, 8192 / op.n);
    row_blocks_ = (out_per_image_ / op.n + row_block_ - 1) / row_block_;
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
  // outputs are read from memory once per call rather than once per candidate. Similarity only
  // (the search's hot path) works straight from the integer accumulators; the ranking loss, the
  // bias error and the SQNR go through the float candidate output.
  // Every figure is first computed per image (each image's own sums in a fixed order); the
  // per-image records of all processes are gathered (dist::AllGatherDoubles) and reduced over
  // the job's images in order, so the result does not depend on the number of processes.
  std::vector<Evaluation> EvaluateMany(const std::vector<Candidate>& cands,
                                       const std::vector<float>& bias, bool ranking,
                                       bool bias_error, bool sqnr) {
    const int n_img = op_.images;
    const int nc = static_cast<int>(cands.size());
    evaluations_ += nc;
    std::vector<int> packed_index = PackWeights(cands);
    // One record per image: for each candidate its similarity, then (ranking) the hinge sum,
    // then (sqnr) signal and noise energy, then (bias_error) Σ (Ô - O) per output channel.
    const int64_t per_cand =
        1 + (ranking ? 1 : 0) + (sqnr ? 2 : 0) + (bias_error ? out_channels_ : 0);
    const int64_t width = per_cand * nc;
    std::vector<double> rec(static_cast<size_t>(n_img) * width, 0.0);
    std::vector<double> sims(n_img), ranks(n_img), signal(n_img), noise(n_img);
    std::vector<double> be;
    if (bias_error) be.resize(static_cast<size_t>(n_img) * out_channels_);
    const bool need_output = bias_error || sqnr;
    for (int c0 = 0; c0 < n_img; c0 += chunk_) {
      const int cn = std::min(chunk_, n_img - c0);
      const float* oc = o_.data() + c0 * out_per_image_;
      for (int ci = 0; ci < nc; ++ci) {
        const float scale = cands[ci].dx * cands[ci].dw;
        ComputeAccumulators(cands[ci], packed_index[ci], c0, cn);
        const float* bp = op_.is_matmul ? nullptr : bias.data();
        if (need_output) {
          CandidateOutput(scale, bp, cn);
        } else {
          BlockSimilaritySums(scale, bp, oc, cn);
        }
        ImageSimilarities(c0, cn, need_output, sqnr, &sims, &signal, &noise);
        if (bias_error) AddBiasError(oc, c0, cn, &be);
        if (ranking) RankingChunk(scale, c0, cn, &ranks);
        for (int i = c0; i < c0 + cn; ++i) {
          double* r = &rec[i * width + ci * per_cand];
          *r++ = sims[i];
          if (ranking) *r++ = ranks[i];
          if (sqnr) {
            *r++ = signal[i];
            *r++ = noise[i];
          }
          if (bias_error)
            std::copy_n(&be[static_cast<size_t>(i) * out_channels_], out_channels_, r);
        }
      }
    }
    const std::vector<double> all = dist::AllGatherDoubles(rec);
    const int total = op_.TotalImages();
    std::vector<Evaluation> ev(nc);
    for (int ci = 0; ci < nc; ++ci) {
      Evaluation& e = ev[ci];
      double sim = 0, rank = 0;
      if (bias_error) e.bias_error.assign(out_channels_, 0.0);
      for (int i = 0; i < total; ++i) {
        const double* r = &all[i * width + ci * per_cand];
        sim += *r++;
        if (ranking) rank += *r++;
        if (sqnr) {
          e.signal += *r++;
          e.noise += *r++;
        }
        if (bias_error) {
          for (int c = 0; c < out_channels_; ++c) e.bias_error[c] += r[c];
        }
      }
      e.similarity = sim / total;
      e.ranking = rank_pairs_ > 0 ? rank / rank_pairs_ : 0.0;
      if (bias_error) {
        const double rows = static_cast<double>(total) * op_.rows;
        for (auto& b : e.bias_error) b /= rows;
      }
    }
    return ev;
  }

  // Ô = scale · accumulator (+ bias per output channel for linear layers) for a chunk of cn
  // images, into out_.
  void CandidateOutput(float scale, const float* bp, int cn) {
    const int64_t rows = cn * out_per_image_ / op_.n;
    const int64_t block = std::max<int64_t>(1, 4096 / op_.n);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < (rows + block - 1) / block; ++b) {
      const int64_t r0 = b * block;
      ConvertRows(acc_.data() + r0 * op_.n, std::min(block, rows - r0), op_.n, scale, bp,
                  out_.data() + r0 * op_.n);
    }
  }

  // Pearson's three sums straight from the accumulators, per block of rows (both threads busy
  // even on a one-image chunk), into block_sums_; ImageSimilarities combines them per image in a
  // fixed order.
  void BlockSimilaritySums(float scale, const float* bp, const float* oc, int cn) {
    const int64_t rows_per_image = out_per_image_ / op_.n;
    const int64_t tasks = static_cast<int64_t>(cn) * row_blocks_;
    block_sums_.resize(static_cast<size_t>(tasks) * 3);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t i = t / row_blocks_, r0 = (t % row_blocks_) * row_block_;
      const int64_t off = i * out_per_image_ + r0 * op_.n;
      SimilaritySumsAcc(acc_.data() + off, oc + off,
                        std::min<int64_t>(row_block_, rows_per_image - r0), op_.n, scale, bp,
                        &block_sums_[3 * t], &block_sums_[3 * t + 1], &block_sums_[3 * t + 2]);
    }
  }

  // The similarity of each image of the chunk [c0, c0 + cn) (into (*sims)[image]) from the
  // candidate output (need_output) or the block sums, and with sqnr each image's signal and
  // noise energy (into (*signal)[image], (*noise)[image]).
  void ImageSimilarities(int c0, int cn, bool need_output, bool sqnr, std::vector<double>* sims,
                         std::vector<double>* signal, std::vector<double>* noise_out) {
    const float* oc = o_.data() + c0 * out_per_image_;
#pragma omp parallel for
    for (int i = 0; i < cn; ++i) {
      const float* o = oc + i * out_per_image_;
      double s1 = 0, s2 = 0, s12 = 0, sig = 0, noise = 0;
      if (need_output) {
        const float* q = out_.data() + i * out_per_image_;
        SimilaritySums(o, q, out_per_image_, &s1, &s2, &s12);
        if (sqnr) {
          for (int64_t j = 0; j < out_per_image_; ++j) {
            double d = static_cast<double>(o[j]) - q[j];
            sig += static_cast<double>(o[j]) * o[j];
            noise += d * d;
          }
        }
      } else {
        for (int64_t t = i * row_blocks_; t < (i + 1) * row_blocks_; ++t) {
          s1 += block_sums_[3 * t];
          s2 += block_sums_[3 * t + 1];
          s12 += block_sums_[3 * t + 2];
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
      (*sims)[img] = sim;
      (*signal)[img] = sig;
      (*noise_out)[img] = noise;
    }
  }

  // Σ (Ô - O) per output channel over each image's rows, in row order, into
  // (*be)[image * channels + c] for the images [c0, c0 + cn) (threads split the channels).
  void AddBiasError(const float* oc, int c0, int cn, std::vector<double>* be) {
    const int64_t rows = op_.rows;
    constexpr int kBlock = 16;
    const int nch = op_.n, blocks = (nch + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < cn * blocks; ++t) {
      const int i = t / blocks, cb = (t % blocks) * kBlock, ce = std::min(nch, cb + kBlock);
      double acc[kBlock] = {0};
      for (int64_t r = 0; r < rows; ++r) {
        const float* o = oc + (i * rows + r) * nch;
        const float* q = out_.data() + (i * rows + r) * nch;
        for (int c = cb; c < ce; ++c) acc[c - cb] += q[c] - o[c];
      }
      double* dst = be->data() + static_cast<size_t>(c0 + i) * nch;
      for (int c = cb; c < ce; ++c) dst[c] = acc[c - cb];
    }
  }

  // Linear layers: packs each distinct weight interval of `cands` once; returns each candidate's
  // index into packed_.
  std::vector<int> PackWeights(const std::vector<Candidate>& cands) {
    std::vector<int> index(cands.size(), -1);
    if (op_.is_matmul) return index;
    packed_.clear();
    std::vector<float> seen;
    for (size_t i = 0; i < cands.size(); ++i) {
      auto it = std::find(seen.begin(), seen.end(), cands[i].dw);
      if (it != seen.end()) {
        index[i] = static_cast<int>(it - seen.begin());
        continue;
      }
      QuantizeParallel(op_.weight, static_cast<int64_t>(op_.n) * op_.k, cands[i].dw, opt_.bits_w,
                       qw_.data());
      packed_.push_back(lin_.Pack(qw_.data()));
      index[i] = static_cast<int>(seen.size());
      seen.push_back(cands[i].dw);
    }
    return index;
  }

  // acc_ = the integer accumulators of images [c0, c0 + cn) for candidate c (packed_[packed]
  // holds its weights for linear layers).
  void ComputeAccumulators(const Candidate& c, int packed, int c0, int cn) {
    const int8_t* qx = QuantizedX(c.dx, c0, cn);
    if (!op_.is_matmul) {
      lin_.Run(qx, static_cast<int>(cn * op_.rows), *packed_[packed], acc_.data());
      return;
    }
    bmm_.Run(qx, QuantizedW(c.dw, c0, cn), op_.b_rows_are_k, cn * op_.heads, op_.m, op_.k, op_.n,
             acc_.data());
  }

  // The hinge sum of the ranking loss of each image of [c0, c0 + cn) from acc_ (scores
  // scale · acc), into (*per_image)[image]. An image's rows are summed in order, so the result
  // does not depend on threads.
  void RankingChunk(float scale, int c0, int cn, std::vector<double>* per_image) {
    const int64_t rows = static_cast<int64_t>(cn) * op_.heads * op_.m;
    const int64_t row0 = static_cast<int64_t>(c0) * op_.heads * op_.m;
    const int w = op_.n;
    row_sums_.resize(static_cast<size_t>(rows));
#pragma omp parallel
    {
      std::vector<float> scratch(RankingScratchSize(w));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t g = (row0 + r) * w;
        row_sums_[r] =
            RankingRowWindowedAcc(order_.data() + g, group_end_.data() + g, a_sorted_.data() + g,
                                  acc_.data() + r * w, scale, w, opt_.theta, scratch.data())
                .sum;
      }
    }
    const int64_t rows_per_image = static_cast<int64_t>(op_.heads) * op_.m;
    for (int i = 0; i < cn; ++i) {
      (*per_image)[c0 + i] = std::accumulate(row_sums_.begin() + i * rows_per_image,
                                             row_sums_.begin() + (i + 1) * rows_per_image, 0.0);
    }
  }

  // The ranking loss of candidate c, image chunk by image chunk, stopping as soon as its
  // objective similarity − γ·loss is certain to fall below `best` (the loss only grows with
  // more rows). Returns false when stopped early; exact otherwise, equal to EvaluateMany's.
  // In an MPI job every process computes its images' sums, and the gathered sums are replayed
  // over the job's chunks (total_chunk_), so the stop happens where a 1-process run's does.
  bool RankingLossUnless(const Candidate& c, double similarity, double best, double* loss) {
    ++evaluations_;
    const float scale = c.dx * c.dw;
    const int n_img = op_.images;
    std::vector<double> per_image(n_img);
    const bool alone = dist::Size() == 1;
    double sum = 0;
    for (int c0 = 0; c0 < n_img; c0 += chunk_) {  // Q·Kᵀ only: no packed weights
      const int cn = std::min(chunk_, n_img - c0);
      ComputeAccumulators(c, /*packed=*/-1, c0, cn);
      RankingChunk(scale, c0, cn, &per_image);
      if (!alone) continue;
      for (int i = c0; i < c0 + cn; ++i) sum += per_image[i];
      if (rank_pairs_ > 0 && similarity - opt_.gamma * (sum / rank_pairs_) < best) return false;
    }
    if (!alone) {
      const std::vector<double> all = dist::AllGatherDoubles(per_image);
      const int total = static_cast<int>(all.size());
      for (int c0 = 0; c0 < total; c0 += total_chunk_) {
        for (int i = c0; i < std::min(total, c0 + total_chunk_); ++i) sum += all[i];
        if (rank_pairs_ > 0 && similarity - opt_.gamma * (sum / rank_pairs_) < best) return false;
      }
    }
    *loss = rank_pairs_ > 0 ? sum / rank_pairs_ : 0.0;
    return true;
  }

  // The operand a step holds fixed is quantized once, whole, when it fits in 256 MB: every
  // candidate and image chunk of the step then reads it. The other operand is quantized per
  // (candidate, chunk), for the chunk only.
  void HoldFixed(bool x, float d) {
    const float* src = x ? (op_.is_matmul ? op_.a : op_.x) : op_.b;
    const int64_t total = static_cast<int64_t>(op_.images) * (x ? x_per_image_ : w_per_image_);
    if (total > (int64_t{256} << 20) || (!x && !op_.is_matmul)) return;
    std::vector<int8_t>& buf = x ? qx_all_ : qw_all_;
    float& held = x ? held_dx_ : held_dw_;
    if (held == d) return;
    buf.resize(static_cast<size_t>(total));
    QuantizeParallel(src, total, d, x ? opt_.bits_x : opt_.bits_w, buf.data());
    held = d;
  }

  // The quantized first operand of images [c0, c0 + cn).
  const int8_t* QuantizedX(float dx, int c0, int cn) {
    if (dx == held_dx_) return qx_all_.data() + c0 * x_per_image_;
    if (chunk_dx_ != dx || chunk_c0_ != c0) {
      const float* xs = op_.is_matmul ? op_.a : op_.x;
      QuantizeParallel(xs + c0 * x_per_image_, cn * x_per_image_, dx, opt_.bits_x, qx_.data());
      chunk_dx_ = dx;
      chunk_c0_ = c0;
    }
    return qx_.data();
  }

  // The quantized second operand of a matmul for images [c0, c0 + cn).
  const int8_t* QuantizedW(float dw, int c0, int cn) {
    if (dw == held_dw_) return qw_all_.data() + c0 * w_per_image_;
    if (dw != chunk_dw_ || c0 != chunk_w_c0_) {
      QuantizeParallel(op_.b + c0 * w_per_image_, cn * w_per_image_, dw, opt_.bits_w, qw_.data());
      chunk_dw_ = dw;
      chunk_w_c0_ = c0;
    }
    return qw_.data();
  }

  bool use_ranking() const { return op_.is_matmul && op_.is_attention_scores && opt_.ranking; }
  double Objective(const Evaluation& e) const {
    return e.similarity - (use_ranking() ? opt_.gamma * e.ranking : 0.0);
  }

  // Best candidate for one operand with the other fixed. With the ranking loss, candidates are
  // visited by decreasing similarity and the loss computed only while a candidate could still
  // win (objective <= similarity since the loss is >= 0): exact, and far fewer loss evaluations.
  // With opt_.coarse_step > 1 the grid is visited coarse to fine (two stages sharing the best).
  // score[i]: candidate i's objective, or its similarity (an upper bound) where the ranking loss
  // was pruned; it ranks the coarse points.
  float BestCandidate(bool search_w, float dx, float dw, float d0, const std::vector<float>& bias) {
    const int n = opt_.candidates;
    std::vector<Candidate> cand(n);
    for (int i = 0; i < n; ++i) {
      float d = n == 1 ? d0 : d0 * (opt_.alpha + (opt_.beta - opt_.alpha) * i / (n - 1));
      cand[i] = search_w ? Candidate{dx, d} : Candidate{d, dw};
    }
    HoldFixed(!search_w, search_w ? dx : dw);
    std::vector<char> seen(n, 0);
    std::vector<double> score(n, -1e300);
    double best = -1e300;
    int best_i = -1;
    // Evaluates the grid points `idx` not seen yet and updates best / best_i (ties: lowest index).
    auto stage = [&](const std::vector<int>& idx) {
      std::vector<int> todo;
      for (int i : idx) {
        if (!seen[i]) todo.push_back(i);
        seen[i] = 1;
      }
      if (todo.empty()) return;
      std::vector<Candidate> sub(todo.size());
      for (size_t k = 0; k < todo.size(); ++k) sub[k] = cand[todo[k]];
      std::vector<Evaluation> evs = EvaluateMany(sub, bias, false, false, false);
      for (size_t k = 0; k < todo.size(); ++k) score[todo[k]] = evs[k].similarity;
      if (!use_ranking()) {
        for (size_t k = 0; k < todo.size(); ++k) {
          const double s = evs[k].similarity;
          if (best_i < 0 || s > best || (s == best && todo[k] < best_i)) {
            best = s;
            best_i = todo[k];
          }
        }
        return;
      }
      std::vector<int> order(todo.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return evs[a].similarity > evs[b].similarity; });
      if (best_i < 0) best_i = todo[order[0]];
      for (int k : order) {
        const double s = evs[k].similarity;
        const int i = todo[k];
        if (s <= best) break;  // the loss is >= 0: neither this nor any later one can win
        double loss = 0;
        if (!RankingLossUnless(cand[i], s, best, &loss)) continue;
        const double obj = s - opt_.gamma * loss;
        score[i] = obj;
        if (obj > best || (obj == best && i < best_i)) {
          best = obj;
          best_i = i;
        }
      }
    };
    const int step = opt_.coarse_step;
    std::vector<int> idx;
    if (step <= 1 || n <= 2 * step) {
      for (int i = 0; i < n; ++i) idx.push_back(i);
      stage(idx);
    } else {
      for (int i = 0; i < n; i += step) idx.push_back(i);
      if (idx.back() != n - 1) idx.push_back(n - 1);
      const std::vector<int> coarse = idx;
      stage(idx);
      // Refine around the best coarse point and around the best one outside its neighbourhood
      // (another basin: flat, two-peaked objectives such as P·V's V interval; with one centre 3
      // of DeiT-Tiny's 74 W8A8 intervals differed from the full grid's, with two none did).
      std::vector<int> centers = {best_i};
      int second = -1;  // the first of equals, in coarse order
      for (int i : coarse) {
        if (std::abs(i - best_i) > step && (second < 0 || score[i] > score[second])) second = i;
      }
      if (second >= 0) centers.push_back(second);
      idx.clear();
      for (int c : centers) {
        for (int i = std::max(0, c - step + 1); i <= std::min(n - 1, c + step - 1); ++i)
          idx.push_back(i);
      }
      stage(idx);
    }
    return search_w ? cand[best_i].dw : cand[best_i].dx;
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
  int64_t rank_pairs_ = 0;  // pairs with distinct float scores over all rows (ranking loss)
  std::vector<double> row_sums_, block_sums_;
  int64_t row_block_ = 1, row_blocks_ = 1;  // similarity sums: rows per block, blocks per image
  std::vector<std::unique_ptr<kernels::PackedWeights>> packed_;
  std::vector<int8_t> qx_, qw_, qx_all_, qw_all_;
  float held_dx_ = -1.0f, held_dw_ = -1.0f, chunk_dx_ = -1.0f, chunk_dw_ = -1.0f;
  int chunk_c0_ = -1, chunk_w_c0_ = -1;
  int chunk_ = 1, total_chunk_ = 1;
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
  // X and a matmul's second operand are activations, split over the processes of an MPI job.
  const float dx0 = GlobalInitialScale(xs, x_size, opt.bits_x),
              dw0 = op.is_matmul ? GlobalInitialScale(ws, w_size, opt.bits_w)
                                 : InitialScale(ws, w_size, opt.bits_w);
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
    // Without bias correction a step's result depends only on the other operand's interval, so
    // a step whose input did not change since the previous round returns the same interval
    // without being searched again (typically the second round's X step of Q·Kᵀ and P·V).
    float w_step_input = -1.0f, w_step_result = 0.0f, x_step_input = -1.0f, x_step_result = 0.0f;
    for (int round = 1; round <= opt.max_rounds; ++round) {
      if (correct || dx != w_step_input) {
        w_step_input = dx;
        w_step_result = s.BestCandidate(true, dx, dw, dw0, bias);
      }
      dw = w_step_result;
      if (correct || dw != x_step_input) {
        x_step_input = dw;
        x_step_result = s.BestCandidate(false, dx, dw, dx0, bias);
      }
      dx = x_step_result;
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
