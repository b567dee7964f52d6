// One pre-norm ViT block with fake quantizers, forward and backward, for block reconstruction
// (search stage, docs/METHOD.md "Reconstruction"). Exactly what a ViT block needs and no more:
// LayerNorm, linear layers with AdaRound weights (a learned rounding offset per weight, Nagel et
// al. 2020), multi-head softmax attention, GELU (erf), residuals, and activation quantizers with
// straight-through gradients and LSQ step gradients (Esser et al. 2020), each optionally dropped
// element-wise at random (QDrop, Wei et al. 2022). Templated on the scalar so the tests can check
// every backward pass in float64 against finite differences; float runs its GEMMs in oneDNN.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace vitq::search {

// SplitMix64's finalizer of z as a uniform double in [0, 1): QDrop's masks draw element e of a
// stream with seed s as SplitMixUniform(s + e · kGoldenGamma), so any thread draws the same value.
constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;
inline double SplitMixUniform(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
}

// AdaRound's rectified sigmoid: h(v) = clamp(sigmoid(v) (ζ - γ) + γ, 0, 1), ζ = 1.1, γ = -0.1.
double RectifiedSigmoid(double v);
double RectifiedSigmoidGrad(double v);  // dh/dv (0 where the clamp is active)
// v with h(v) = frac (frac in [0, 1)).
double RectifiedSigmoidInverse(double frac);

// C[M,N] = alpha · op(A) op(B) + beta · C, row-major (float: oneDNN's sgemm; double: plain loops).
template <typename T>
void Gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
          int ldb, T beta, T* c, int ldc);

// One per-tensor activation quantizer of the block.
template <typename T>
struct TrainActQuant {
  bool active = false;   // false: identity
  bool log = false;      // log-√2 grid (fixed scale, straight-through gradient only)
  bool log_row = false;  // ... relative to each row's maximum (kLogSqrt2Row; rows of `row_len`)
  // kUniformRow (fc2's input): each row of `row_len` on its own grid from the row's range (fixed
  // scale, straight-through gradient inside the grid, 0 where the row's top is clipped)
  bool uniform_row = false;
  bool learn = false;  // the step (scale) receives an LSQ gradient
  int bits = 8, zero_point = 0, qmin = -127, qmax = 127;
  T scale = 1;
  double grad = 0;  // d loss / d scale, set by Backward
};

// A linear layer y = x Wᵀ + b. quantize = false uses w as is; else the weights are
// scale_r · clamp(floor(w / scale_r) + h(v), qmin, qmax) (soft, while learning) or with h(v)
// replaced by [h(v) >= 0.5] (hard: every weight on the grid).
template <typename T>
struct TrainLinear {
  int n = 0, k = 0;
  std::vector<T> w, bias;  // [n, k], [n]
  bool quantize = false, hard = false;
  int qmin = -127, qmax = 127;
  std::vector<T> scale;        // one per output row
  std::vector<T> floor_w, v;   // AdaRound state, [n, k]
  std::vector<T> wq;           // the weights of the last Forward
  std::vector<double> grad_v;  // d loss / d v (without the rounding regularizer)
  std::vector<T> grad_w;       // d loss / d wq
  // Starts AdaRound at the float weights (h(v) = fractional part of w / scale), or at given
  // integer codes `init_codes` (then h(v) is 0.25 or 0.75 towards the code's side of floor).
  void InitRounding(const std::vector<float>* init_codes = nullptr);
  void Materialize();                      // wq from v (and hard)
  std::vector<float> HardWeights() const;  // hard-rounded weights, as float
  double RoundingRegularizer(double beta, std::vector<double>* grad, double weight) const;
};

template <typename T>
class TrainBlock {
 public:
  // Sites, in the order of the forward pass (names as in the plan).
  enum Site { kQkvIn, kQkA, kQkB, kPvA, kPvB, kProjIn, kFc1In, kFc2In, kNumSites };
  static const char* SiteName(int site);

  int tokens = 0, dim = 0, heads = 0, hidden = 0;
  double eps = 1e-6;
  std::vector<T> norm1_w, norm1_b, norm2_w, norm2_b;
  TrainLinear<T> qkv, proj, fc1, fc2;
  std::array<TrainActQuant<T>, kNumSites> act;
  double drop_prob =
      0;  // QDrop: each quantized element keeps its float value with this probability

  // out [batch, tokens, dim] from x [batch, tokens, dim]; keeps what Backward needs. drop_seed
  // draws QDrop's masks (deterministic in the seed, independent of the thread count).
  void Forward(const T* x, int batch, T* out, uint64_t drop_seed);
  // From d loss / d out: grad_v of the quantized linear layers, grad of the learned steps, and
  // d loss / d x when dx != nullptr.
  void Backward(const T* dout, T* dx);

 private:
  // row_len: the length of x's rows, for a kLogSqrt2Row site (P: the tokens) or a kUniformRow
  // one (fc2's input: the hidden channels).
  void Quantize(int site, const T* x, int64_t n, T* out, uint64_t seed, std::vector<uint8_t>* kept,
                int64_t row_len = 1);
  void QuantizeBackward(int site, const T* x, const std::vector<uint8_t>& kept, int64_t n, T* grad);
  void LinearForward(TrainLinear<T>& l, const T* x, int m, T* y);
  void LinearBackward(TrainLinear<T>& l, const T* x, const T* dy, int m, T* dx);

  int batch_ = 0;
  // Cache of the last Forward ([rows = batch · tokens] first).
  std::vector<T> x_, xhat1_, rstd1_, ln1_, a1_, qkv_, q_, k_, v_, qa_, kb_, p_, pq_, vq_, o_, a2_,
      y1_, xhat2_, rstd2_, ln2_, a3_, h_, g_, a4_;
  std::array<std::vector<uint8_t>, kNumSites> kept_;
  // A kUniformRow site's rows' steps and zero points (of the last Forward), for the backward pass.
  std::array<std::vector<float>, kNumSites> row_step_, row_zero_;
  // Work buffers of Forward and Backward, kept between calls (every element is written before
  // it is read), so a training step allocates nothing.
  std::vector<T>& Work(int i, int64_t n) {
    work_[i].resize(n);
    return work_[i];
  }
  std::array<std::vector<T>, 12> work_;
};

}  // namespace vitq::search
