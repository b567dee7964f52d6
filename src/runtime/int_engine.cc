// The integer engine (runtime stage). Data flow of one block, batch B, T tokens, D channels:
//   x (f32 residual) -LN+quantize-> s8 -qkv GEMM-> f32 -split+quantize-> Q, K, V s8 [B,H,T,hd]
//   Q·Kᵀ (s8 GEMM, scale fused) -> f32 scores -softmax-> quantize -> P s8, or u8 when P's grid is
//   unsigned 8-bit (vitq's method: all 256 levels for P >= 0)
//   P·V (s8 or u8 x s8 GEMM, requantized to proj's input grid in the epilogue) -> s8 -merge
//   heads-> [B,T,D]
//   With P per row (kUniformRow, vitq's method at 8 bits): softmax in f32, u8 codes of each row
//   up to its maximum, u8 x s8 P·V written as f32, each row requantized with its own step (RowPv);
//   with P on a log-√2 grid: s8 planes of the codes, one GEMM per plane (LogPv).
//   proj (s8 GEMM, bias, dequantize, += x in the epilogue) -> x
//   x -LN+quantize-> s8 -fc1 (s8 GEMM, bias, GELU, requantize in the epilogue)-> s8, or u8 codes
//   when fc2's input grid is 8 bits with a zero point (vitq's method at 8 bits)
//   fc2 (s8 or u8 x s8 GEMM, bias with the zero point's term, dequantize, += x) -> x
//   With a per-token fc2 input (kUniformRow): fc1's epilogue writes GELU's output as f32, one pass
//   quantizes each token's row on its own grid (u8 codes, step and zero point per row), fc2's GEMM
//   writes acc · s_w (f32), and one pass adds step_r · (that - zero_r · s_w · Σw) + bias into x.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "../graph/vit_stages.h"
#include "../kernels/dnnl_ops.h"
#include "../kernels/int8_matmul.h"
#include "../kernels/isa.h"
#include "vitq/runtime.h"
#include "vitq/simulate.h"

namespace vitq {

Status ConfigureIsa() { return kernels::ConfigureIsaFromEnv(); }
std::vector<std::string> SupportedIsas() { return kernels::SupportedIsas(); }
std::string EffectiveIsa() { return kernels::EffectiveIsa(); }

Status CheckIntegerPlan(const QuantPlan& plan, const ViTConfig& config) {
  const std::string hint = "; run it with --simulate";
  for (const std::string& name : QuantSiteNames(config)) {
    const SitePlan* sp = plan.Find(name);
    if (sp == nullptr) {
      return Status::InvalidInput(
          "the integer engine needs every site quantized; the plan has no '" + name + "'" + hint);
    }
    const QuantScheme& s = sp->scheme;
    const bool weight = IsWeightSite(name);
    if (weight && (!s.symmetric || !s.is_signed)) {
      return Status::InvalidInput("the integer engine runs symmetric signed weight grids; site '" +
                                  name + "' is " + (s.symmetric ? "" : "asymmetric ") +
                                  (s.is_signed ? "signed" : "unsigned") + hint);
    }
    if (s.granularity == Granularity::kPerChannel && (!weight || s.axis != 0)) {
      return Status::InvalidInput(
          "the integer engine takes per-channel scales only on weight "
          "output channels; site '" +
          name + "' is per channel on axis " + std::to_string(s.axis) + hint);
    }
    // An activation grid q in [qmin, qmax] with zero point z is stored as q - z, a signed range
    // [qmin - z, qmax - z] with zero point 0 (the same values); it must fit int8, or be held as
    // uint8: the attention probabilities P (the left operand of P·V) with z = 0, and fc2's input
    // as its codes q with any zero point.
    if (IsLogSqrt2(s.kind)) continue;  // held in s8 planes (LogPv), checked there
    // Per-row grids (fc2's input only, ValidatePlan): u8 codes with a zero point per row.
    if (s.kind == QuantKind::kUniformRow) continue;
    if (!weight) {
      const int z = sp->params.zero_point[0];
      const int lo = s.qmin() - z, hi = s.qmax() - z;
      const bool fits_s8 = lo >= -128 && hi <= 127;
      const bool fits_u8 = (IsProbabilitySite(name) && lo >= 0 && hi <= 255) ||
                           (IsFc2InputSite(name) && s.qmin() >= 0 && s.qmax() <= 255 &&
                            z >= s.qmin() && z <= s.qmax());
      if (!fits_s8 && !fits_u8) {
        return Status::InvalidInput(
            "the integer engine stores activations as int8 (uint8 for the attention "
            "probabilities P and fc2's input); site '" +
            name + "' spans [" + std::to_string(lo) + ", " + std::to_string(hi) +
            "] around its zero point" + hint);
      }
    }
  }
  return Status::Ok();
}

namespace {
constexpr int kLogPlanes = 4;  // LogMaxCode <= 27: octaves 0..13, two groups of 7, two parities
struct Grid {
  float scale = 1.0f;
  int qmin = -128, qmax = 127;
  bool u8 = false;  // held as uint8 (P and fc2's input, CheckIntegerPlan)
  int zero = 0;     // u8 only: the codes' zero point (the value is scale · (q - zero))
  bool narrow() const { return u8 ? (qmin > 0 || qmax < 255) : (qmin > -128 || qmax < 127); }
};

// An activation site's grid as the engine stores it (see CheckIntegerPlan): q - zero_point as
// int8 where that fits; else as uint8, q - zero_point when that is >= 0 (P), else the codes q
// with their zero point (fc2's input).
Grid GridOf(const QuantPlan& plan, const std::string& site) {
  const SitePlan* sp = plan.Find(site);
  const int z = sp->params.zero_point[0];
  const int lo = sp->scheme.qmin() - z, hi = sp->scheme.qmax() - z;
  if (lo >= -128 && hi <= 127) return {sp->params.scale[0], lo, hi, false, 0};
  if (lo >= 0) return {sp->params.scale[0], lo, hi, true, 0};
  return {sp->params.scale[0], sp->scheme.qmin(), sp->scheme.qmax(), true, z};
}
}  // namespace

struct IntegerEngine::Impl {
  const QuantizedModel& qm;
  const ViTConfig& c;
  kernels::DnnlContext ctx;
  kernels::GemmExec exec;
  kernels::DnnlOps ops{&ctx};
  kernels::S8BatchedMatmul bmm{&ctx, exec};

  struct Linear {
    std::unique_ptr<kernels::S8GemmLayer> gemm;
    Grid in;
    // A per-row input grid (kUniformRow): the GEMM writes acc · s_w; RowEpilogue adds
    // step_r · (that - zero_r · s_w · Σw) + bias. Per output column: s_w · Σ_k w, the bias.
    bool row_input = false;
    float row_scale = 0.0f;  // the plan's scale (the step's share of each row's range)
    std::vector<float> col_wsum, col_bias;
  };
  struct BlockOps {
    Linear qkv, proj, fc1, fc2;
    Grid q, k, v, p;
    bool p_log = false;  // P on a log-√2 grid (LogPv)
    bool p_row = false;  // ... relative to each row's maximum (kLogSqrt2Row)
    // P per row on a uniform grid 0 .. the row's maximum (kUniformRow; u8 codes, RowPv)
    bool p_urow = false;
    float p_row_scale = 0.0f;  // the plan's scale: the step's share of the row's maximum
    int p_row_qmax = 255;
    int p_max_code = 0;
    LogSqrt2Coder p_coder;  // P's codes (LogSqrt2Code) by table
    kernels::S8Epilogue qk_ep, pv_ep;
    kernels::S8Epilogue pv_row_ep;  // RowPv: P·V's int32 times s_v, f32
  };
  Linear patch, head, head_dist;
  std::vector<BlockOps> blocks;

  int capacity = 0;
  Tensor patches, tokens, x, qkv, scores, cls, h0, h1, head_out, head_dist_out;
  Tensor in8, q8, k8, v8, p8, o8, attn8, hidden8;
  Tensor log_planes, log_acc;  // LogPv: s8 planes of P, their int32 products
  Tensor log_row_max;          // LogPv with kLogSqrt2Row: each row's maximum of P
  Tensor hidden_f, fc2_out;    // a per-row fc2 input: GELU's output, fc2's GEMM output
  Tensor row_step, row_zero;   // ... each token's step and zero point
  Tensor p_step, pv_f;         // RowPv: each row of P's step, P·V · s_v

  // The GEMM of `layer` reading its input on grid `in` (s8, or u8 codes with a zero point z, whose
  // term -z · Σ_k w[n, k] joins the bias); the epilogue writes f32 (out == nullptr) or the codes
  // of grid `out` (s8, or u8 with its zero point), with GELU first when `gelu`, and adds into dst
  // when `accumulate`.
  Linear MakeLinear(const std::string& layer, const Tensor& bias, const Grid* out, bool gelu,
                    bool accumulate) {
    const QuantizedLinear& ql = qm.linear.at(layer);
    Linear l;
    const SitePlan* in_site = qm.plan.Find(layer + ":in");
    l.row_input = in_site->scheme.kind == QuantKind::kUniformRow;
    if (l.row_input) {  // u8 codes, unit scale here: the rows' steps and zero points come after
      l.in = {1.0f, 0, in_site->scheme.qmax(), true, 0};
      l.row_scale = in_site->params.scale[0];
      out = nullptr;
      accumulate = false;
    } else {
      l.in = GridOf(qm.plan, layer + ":in");
    }
    const int n = static_cast<int>(ql.rows), k = static_cast<int>(ql.cols);
    // The layer's weights unpacked for the GEMM, which copies them into its own layout; the
    // unpacked tensor lives only for this call.
    const Tensor q = ql.Unpacked();
    const int8_t* wq = q.data<int8_t>();
    kernels::S8Epilogue ep;
    ep.scale.assign(n, 0.0f);
    ep.bias.assign(n, 0.0f);
    for (int i = 0; i < n; ++i) {
      const float sw = ql.params.scale.size() > 1 ? ql.params.scale[i] : ql.params.scale[0];
      const float acc_scale = l.in.scale * sw;
      ep.scale[i] = (out != nullptr && !gelu) ? acc_scale / out->scale : acc_scale;
      ep.bias[i] = bias.f32()[i] / acc_scale;
      if (!l.row_input && l.in.zero == 0) continue;
      int64_t row_sum = 0;  // Σ_k w[i, k]: the zero point's term
      for (int j = 0; j < k; ++j) row_sum += wq[static_cast<int64_t>(i) * k + j];
      if (l.row_input) {  // per row, after the GEMM (RowEpilogue), with the bias
        l.col_wsum.push_back(sw * static_cast<float>(row_sum));
        l.col_bias.push_back(bias.f32()[i]);
        ep.bias[i] = 0.0f;
      } else {  // Σ_k (q_k - z) w_k = Σ_k q_k w_k - z Σ_k w_k
        ep.bias[i] -= static_cast<float>(static_cast<int64_t>(l.in.zero) * row_sum);
      }
    }
    ep.gelu = gelu;
    if (gelu && out != nullptr) ep.gelu_scale = 1.0f / out->scale;
    ep.s8_dst = out != nullptr && !out->u8;
    ep.u8_dst = out != nullptr && out->u8;
    if (ep.u8_dst) ep.dst_zero = static_cast<float>(out->zero);
    ep.accumulate = accumulate;
    if (out != nullptr && out->narrow()) {
      ep.clip = true;
      ep.lo = static_cast<float>(out->qmin - out->zero);
      ep.hi = static_cast<float>(out->qmax - out->zero);
    }
    l.gemm = std::make_unique<kernels::S8GemmLayer>(&ctx, wq, n, k, std::move(ep), exec, l.in.u8);
    return l;
  }

  Impl(const QuantizedModel& q, kernels::GemmExec e) : qm(q), c(q.model.spec.config), exec(e) {
    const ViTWeights& w = q.model.weights;
    const QuantPlan& plan = q.plan;
    patch = MakeLinear("patch_embed.proj", w.patch_embed.bias, nullptr, false, false);
    head = MakeLinear("head", w.head.bias, nullptr, false, false);
    if (c.head_dist) head_dist = MakeLinear("head_dist", w.head_dist.bias, nullptr, false, false);
    const float attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim()));
    for (int i = 0; i < c.depth; ++i) {
      const BlockWeights& bw = w.blocks[i];
      const std::string p = "blocks." + std::to_string(i) + ".";
      BlockOps b;
      b.qkv = MakeLinear(p + "attn.qkv", bw.qkv.bias, nullptr, false, false);
      b.proj = MakeLinear(p + "attn.proj", bw.proj.bias, nullptr, false, true);
      b.fc2 = MakeLinear(p + "mlp.fc2", bw.fc2.bias, nullptr, false, true);
      // fc1's epilogue writes fc2's input codes, or GELU's f32 output for a per-row grid.
      Grid fc2_in = b.fc2.in;
      b.fc1 =
          MakeLinear(p + "mlp.fc1", bw.fc1.bias, b.fc2.row_input ? nullptr : &fc2_in, true, false);
      b.q = GridOf(plan, p + "attn.qk:a");
      b.k = GridOf(plan, p + "attn.qk:b");
      b.p = GridOf(plan, p + "attn.pv:a");
      if (const SitePlan* ps = plan.Find(p + "attn.pv:a"); IsLogSqrt2(ps->scheme.kind)) {
        b.p_log = true;
        b.p_row = ps->scheme.kind == QuantKind::kLogSqrt2Row;
        b.p_max_code = LogMaxCode(ps->scheme.bits);
        b.p_coder = LogSqrt2Coder(ps->params.scale[0], b.p_max_code);
      } else if (ps->scheme.kind == QuantKind::kUniformRow) {
        b.p_urow = true;
        b.p_row_scale = ps->params.scale[0];
        b.p_row_qmax = ps->scheme.qmax();
      }
      b.v = GridOf(plan, p + "attn.pv:b");
      b.pv_row_ep.scale = {b.v.scale};
      b.qk_ep.scale = {b.q.scale * b.k.scale * attn_scale};
      const Grid proj_in = b.proj.in;
      b.pv_ep.scale = {b.p.scale * b.v.scale / proj_in.scale};
      b.pv_ep.s8_dst = true;
      if (proj_in.narrow()) {
        b.pv_ep.clip = true;
        b.pv_ep.lo = static_cast<float>(proj_in.qmin);
        b.pv_ep.hi = static_cast<float>(proj_in.qmax);
      }
      blocks.push_back(std::move(b));
    }
  }

  void Reserve(int batch) {
    if (batch <= capacity) return;
    const int64_t b = batch, t = c.num_tokens(), d = c.embed_dim, h = c.num_heads;
    const int64_t np = c.num_patches(), pd = c.patch_dim();
    patches = Tensor::F32({b * np, pd});
    tokens = Tensor::F32({b * np, d});
    x = Tensor::F32({b, t, d});
    qkv = Tensor::F32({b, t, 3 * d});
    scores = Tensor::F32({b, h, t, t});
    cls = Tensor::F32({b, c.num_prefix_tokens(), d});
    h0 = Tensor::F32({b, d});
    h1 = Tensor::F32({b, d});
    head_out = Tensor::F32({b, c.num_classes});
    head_dist_out = Tensor::F32({b, c.num_classes});
    in8 = Tensor(DType::kI8, {b * std::max(t, np) * std::max(d, pd)});
    q8 = Tensor(DType::kI8, {b, t, d});
    k8 = Tensor(DType::kI8, {b, t, d});
    v8 = Tensor(DType::kI8, {b, t, d});
    p8 = Tensor(DType::kI8, {b, h, t, t});
    o8 = Tensor(DType::kI8, {b, t, d});
    attn8 = Tensor(DType::kI8, {b, t, d});
    hidden8 = Tensor(DType::kI8, {b, t, c.mlp_hidden});
    bool any_row = false;
    for (const BlockOps& bo : blocks) any_row |= bo.fc2.row_input;
    if (any_row) {
      hidden_f = Tensor::F32({b, t, c.mlp_hidden});
      fc2_out = Tensor::F32({b, t, d});
      row_step = Tensor::F32({b * t});
      row_zero = Tensor::F32({b * t});
    }
    bool any_urow = false;
    for (const BlockOps& bo : blocks) any_urow |= bo.p_urow;
    if (any_urow) {
      p_step = Tensor::F32({b * h * t});
      pv_f = Tensor::F32({b, h, t, c.head_dim()});
    }
    bool any_log = false;
    for (const BlockOps& bo : blocks) any_log |= bo.p_log;
    if (any_log) {
      log_planes = Tensor(DType::kI8, {kLogPlanes, b, h, t, t});
      log_acc = Tensor(DType::kI32, {kLogPlanes, b, h, t, c.head_dim()});
      log_row_max = Tensor::F32({b, h, t});
    }
    capacity = batch;
  }

  void Embed(const float* images, int b) {
    const int np = c.num_patches(), pd = c.patch_dim();
    float* pt = patches.f32();
    stages::ExtractPatches(c, images, b, pt);
    int8_t* xq = in8.data<int8_t>();
    kernels::QuantizeS8(pt, static_cast<int64_t>(b) * np * pd, patch.in.scale, patch.in.qmin,
                        patch.in.qmax, xq);
    patch.gemm->Run(xq, b * np, tokens.f32());
    stages::AssembleTokens(c, qm.model.weights, tokens.f32(), b, x.f32());
  }

  void Block(int li, int b) {
    const BlockWeights& bw = qm.model.weights.blocks[li];
    BlockOps& bo = blocks[li];
    const int t = c.num_tokens(), d = c.embed_dim, nh = c.num_heads, hd = c.head_dim();
    const int m = b * t;
    float* xp = x.f32();
    int8_t* xq = in8.data<int8_t>();
    ops.LayerNormQuantize(xp, m, d, bw.norm1_weight.f32(), bw.norm1_bias.f32(), c.ln_eps,
                          bo.qkv.in.scale, bo.qkv.in.qmin, bo.qkv.in.qmax, xq);
    bo.qkv.gemm->Run(xq, m, qkv.f32());
    // Split [B, T, 3, H, hd] into Q, K, V [B, H, T, hd], each quantized on its own grid.
    const float* qkvp = qkv.f32();
    int8_t *q = q8.data<int8_t>(), *k = k8.data<int8_t>(), *v = v8.data<int8_t>();
#pragma omp parallel for collapse(2)
    for (int bi = 0; bi < b; ++bi) {
      for (int ti = 0; ti < t; ++ti) {
        const float* row = qkvp + (static_cast<int64_t>(bi) * t + ti) * 3 * d;
        for (int hi = 0; hi < nh; ++hi) {
          const int64_t off = ((static_cast<int64_t>(bi) * nh + hi) * t + ti) * hd;
          kernels::QuantizeS8Serial(row + hi * hd, hd, bo.q.scale, bo.q.qmin, bo.q.qmax, q + off);
          kernels::QuantizeS8Serial(row + d + hi * hd, hd, bo.k.scale, bo.k.qmin, bo.k.qmax,
                                    k + off);
          kernels::QuantizeS8Serial(row + 2 * d + hi * hd, hd, bo.v.scale, bo.v.qmin, bo.v.qmax,
                                    v + off);
        }
      }
    }
    const int bh = b * nh;
    bmm.Run(q, k, /*b_rows_are_k=*/false, bh, t, hd, t, bo.qk_ep, scores.f32());
    int8_t* o = o8.data<int8_t>();
    if (bo.p_log) {
      ops.Softmax(scores.f32(), bh * t, t);
      LogPv(bo, bh, t, hd, v, o);
    } else if (bo.p_urow) {
      RowPv(bo, bh, t, hd, v);
    } else if (bo.p.u8) {  // P on the unsigned 8-bit grid: u8 x s8
      auto* pu = reinterpret_cast<uint8_t*>(p8.data<int8_t>());
      SoftmaxToP(bo.p, bh * t, t, pu);
      bmm.RunU8(pu, v, /*b_rows_are_k=*/true, bh, t, t, hd, bo.pv_ep, o);
    } else {
      SoftmaxToP(bo.p, bh * t, t, p8.data<int8_t>());
      bmm.Run(p8.data<int8_t>(), v, /*b_rows_are_k=*/true, bh, t, t, hd, bo.pv_ep, o);
    }
    // Merge heads: [B, H, T, hd] -> [B, T, H*hd] (RowPv: each row of P·V · s_v times its step,
    // requantized onto proj's input grid on the way).
    int8_t* a = attn8.data<int8_t>();
    const float* y = bo.p_urow ? pv_f.f32() : nullptr;
    const float* step = bo.p_urow ? p_step.f32() : nullptr;
    const Grid& in = bo.proj.in;
#pragma omp parallel for collapse(2)
    for (int bi = 0; bi < b; ++bi) {
      for (int ti = 0; ti < t; ++ti) {
        for (int h = 0; h < nh; ++h) {
          const int64_t r = (static_cast<int64_t>(bi) * nh + h) * t + ti;
          int8_t* dst = a + (static_cast<int64_t>(bi) * t + ti) * d + h * hd;
          if (y != nullptr) {
            kernels::QuantizeS8Serial(y + r * hd, hd, in.scale / step[r], in.qmin, in.qmax, dst);
          } else {
            std::memcpy(dst, o + r * hd, hd);
          }
        }
      }
    }
    bo.proj.gemm->Run(a, m, xp);
    ops.LayerNormQuantize(xp, m, d, bw.norm2_weight.f32(), bw.norm2_bias.f32(), c.ln_eps,
                          bo.fc1.in.scale, bo.fc1.in.qmin, bo.fc1.in.qmax, xq);
    if (bo.fc2.row_input) {
      bo.fc1.gemm->Run(xq, m, hidden_f.f32());
      auto* h = reinterpret_cast<uint8_t*>(hidden8.data<int8_t>());
      kernels::QuantizeRowsU8(hidden_f.f32(), m, c.mlp_hidden, bo.fc2.row_scale, bo.fc2.in.qmax, h,
                              row_step.f32(), row_zero.f32());
      bo.fc2.gemm->Run(hidden8.data<int8_t>(), m, fc2_out.f32());
      RowEpilogue(bo.fc2, fc2_out.f32(), m, d, xp);
      return;
    }
    bo.fc1.gemm->Run(xq, m, hidden8.data<int8_t>());
    bo.fc2.gemm->Run(hidden8.data<int8_t>(), m, xp);
  }

  // dst [m, n] += step_r · (y - zero_r · s_w · Σw) + bias, y [m, n] = acc · s_w from the GEMM.
  void RowEpilogue(const Linear& l, const float* y, int m, int n, float* dst) {
    const float* step = row_step.f32();
    const float* zero = row_zero.f32();
    const float* wsum = l.col_wsum.data();
    const float* bias = l.col_bias.data();
#pragma omp parallel for schedule(static)
    for (int r = 0; r < m; ++r) {
      const float s = step[r], z = zero[r];
      const float* yr = y + static_cast<int64_t>(r) * n;
      float* o = dst + static_cast<int64_t>(r) * n;
      for (int j = 0; j < n; ++j) o[j] += s * (yr[j] - z * wsum[j]) + bias[j];
    }
  }

  // P [rows, t] = the codes of softmax(scores) on grid g, as s8 or u8 (Code): one fused oneDNN
  // pass at 8 bits (saturation is the clamp, P >= 0) where it has a JIT kernel; else (a narrow
  // grid, or no JIT kernel) softmax, then quantize.
  template <typename Code>
  void SoftmaxToP(const Grid& g, int rows, int t, Code* p) {
    constexpr bool kU8 = std::is_same_v<Code, uint8_t>;
    if (!g.narrow() && ops.SoftmaxQuantizeIsJit(rows, t, 1.0f / g.scale, kU8)) {
      ops.SoftmaxQuantize(scores.f32(), rows, t, 1.0f / g.scale, p);
      return;
    }
    ops.Softmax(scores.f32(), rows, t);
    const int64_t n = static_cast<int64_t>(rows) * t;
    if constexpr (kU8) {
      kernels::QuantizeU8(scores.f32(), n, g.scale, g.qmin, g.qmax, p);
    } else {
      kernels::QuantizeS8(scores.f32(), n, g.scale, g.qmin, g.qmax, p);
    }
  }

  // P·V with P on a log-√2 grid, in integers: the code q of each probability lands in one of
  // kLogPlanes s8 planes, plane 2g + (q & 1) holding 2^(6 - (⌊q/2⌋ - 7g)) ∈ {1, ..., 64} for the
  // octaves 7g .. 7g + 6, so that P̂ = Σ_plane plane_scale · plane with plane_scale =
  // Δp · 2^-(7g+6) · (1 or 1/√2 by parity). Each plane times V is an exact s8 GEMM (int32); the
  // sums are combined in float in plane order and requantized to proj's input grid. The codes come
  // from LogSqrt2Coder (a table lookup, no log2 per value), equal to LogSqrt2Code's. With a
  // per-row grid (kLogSqrt2Row) the codes are those of P / r, r the row's maximum, and the
  // combining pass multiplies each output row by its r: P̂ = r · Σ_plane plane_scale · plane.
  void LogPv(const BlockOps& bo, int bh, int t, int hd, const int8_t* v, int8_t* o) {
    const int64_t plane_size = static_cast<int64_t>(bh) * t * t;
    int8_t* planes = log_planes.data<int8_t>();
    const float* pf = scores.f32();
    const int max_code = bo.p_max_code;
    const float sp = bo.p.scale;
    // By code + 1 (0: the zero level): what each plane holds (its value or 0). Planes no code
    // reaches (plane 3 at 4 bits) are left out.
    const LogSqrt2Coder& coder = bo.p_coder;
    std::array<std::array<int8_t, 32>, kLogPlanes> value_in{};
    int planes_used = 0;
    for (int n = 0; n <= max_code; ++n) {
      const int octave = n >> 1, g = octave / 7, pl = 2 * g + (n & 1);
      value_in[pl][n + 1] = static_cast<int8_t>(1 << (6 - (octave - 7 * g)));
      planes_used = std::max(planes_used, pl + 1);
    }
    constexpr int kChunk = 64;
    // Codes of x[0, len) divided by `div` (1 for the per-tensor grid) into the planes at i0.
    auto put_codes = [&](const float* x, int64_t i0, int len, float div) {
      uint8_t n[kChunk];
      if (div == 1.0f) {
        for (int e = 0; e < len; ++e) n[e] = static_cast<uint8_t>(coder.Code(x[e]) + 1);
      } else {
        for (int e = 0; e < len; ++e) n[e] = static_cast<uint8_t>(coder.Code(x[e] / div) + 1);
      }
      for (int pl = 0; pl < planes_used; ++pl) {
        int8_t* dst = planes + pl * plane_size + i0;
        const int8_t* value = value_in[pl].data();
        for (int e = 0; e < len; ++e) dst[e] = value[n[e]];
      }
    };
    float* row_max = bo.p_row ? log_row_max.f32() : nullptr;
    if (bo.p_row) {
      const int64_t rows = static_cast<int64_t>(bh) * t;
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const float* x = pf + r * t;
        float m = 0.0f;
        for (int j = 0; j < t; ++j) m = x[j] > m ? x[j] : m;
        row_max[r] = m;
        // A row without a positive value (not from a softmax) codes as the zero level.
        const float div = m > 0.0f ? m : INFINITY;
        for (int j0 = 0; j0 < t; j0 += kChunk)
          put_codes(x + j0, r * t + j0, std::min(kChunk, t - j0), div);
      }
    } else {
      const int64_t chunks = (plane_size + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t i0 = ch * kChunk;
        put_codes(pf + i0, i0, static_cast<int>(std::min<int64_t>(kChunk, plane_size - i0)), 1.0f);
      }
    }
    // The planes' products, then one pass that sums them in plane order and requantizes (few
    // parallel regions: at batch 1 each one's thread wake-up costs more than its work).
    const int64_t out_size = static_cast<int64_t>(bh) * t * hd;
    int32_t* acc = log_acc.data<int32_t>();
    std::array<float, kLogPlanes> plane_scale{};
    for (int pl = 0; pl < planes_used; ++pl) {
      const int g = pl / 2;
      plane_scale[pl] =
          sp * std::ldexp(1.0f, -(7 * g + 6)) * ((pl & 1) ? 0.70710678118654752f : 1.0f);
      bmm.Run(planes + pl * plane_size, v, /*b_rows_are_k=*/true, bh, t, t, hd,
              acc + pl * out_size);
    }
    const Grid& out = bo.proj.in;
    const float k = bo.v.scale / out.scale;
    const float lo = static_cast<float>(out.qmin), hi = static_cast<float>(out.qmax);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < out_size; ++i) {
      float sum = 0.0f;
      for (int pl = 0; pl < planes_used; ++pl)
        sum += plane_scale[pl] * static_cast<float>(acc[pl * out_size + i]);
      if (row_max != nullptr) sum *= row_max[i / hd];
      o[i] = static_cast<int8_t>(QuantizeToGrid(sum * k, lo, hi));
    }
  }

  // P·V with each row of P on its own uniform grid (kUniformRow): softmax and the u8 codes of
  // P / (r · scale), r the row's maximum, in one vectorized pass per 16 rows (SoftmaxRowsU8; lo =
  // 0, so the zero point is 0), one u8 x s8 GEMM written as acc · s_v (f32), and one pass that
  // multiplies each output row by its step and requantizes it onto proj's input grid (merged with
  // the heads' merge in Block).
  void RowPv(const BlockOps& bo, int bh, int t, int hd, const int8_t* v) {
    const int rows = bh * t;
    auto* pu = reinterpret_cast<uint8_t*>(p8.data<int8_t>());
    float* step = p_step.f32();
    kernels::SoftmaxRowsU8(scores.f32(), rows, t, bo.p_row_scale, bo.p_row_qmax, pu, step);
    bmm.RunU8(pu, v, /*b_rows_are_k=*/true, bh, t, t, hd, bo.pv_row_ep, pv_f.f32());
  }

  void Head(int b, float* logits) {
    const int d = c.embed_dim;
    stages::HeadInputs(c, qm.model.weights, ops, x.f32(), b, cls.f32(), h0.f32(), h1.f32());
    int8_t* xq = in8.data<int8_t>();
    stages::RunHeads(
        c, b, h0.f32(), h1.f32(), head_out.f32(), head_dist_out.f32(),
        [&](int which, float* in, float* out) {
          Linear& l = which == 0 ? head : head_dist;
          kernels::QuantizeS8(in, static_cast<int64_t>(b) * d, l.in.scale, l.in.qmin, l.in.qmax,
                              xq);
          l.gemm->Run(xq, b, out);
        },
        logits);
  }

  void Forward(const float* images, int batch, float* logits) {
    Reserve(batch);
    stages::RunLayers(
        c, [&] { Embed(images, batch); }, [&](int li) { Block(li, batch); },
        [&] { Head(batch, logits); });
  }
};

Result<std::unique_ptr<IntegerEngine>> IntegerEngine::Create(const QuantizedModel& model) {
  return Create(model, false);
}

Result<std::unique_ptr<IntegerEngine>> IntegerEngine::CreateSimulation(
    const QuantizedModel& model) {
  return Create(model, true);
}

Result<std::unique_ptr<IntegerEngine>> IntegerEngine::Create(const QuantizedModel& model,
                                                             bool simulate) {
  VITQ_RETURN_IF_ERROR(CheckIntegerPlan(model.plan, model.model.spec.config));
  for (const auto& [layer, shape] : LinearShapes(model.model.spec.config)) {
    if (!model.linear.count(layer)) {
      return Status::InvalidInput("the integer engine needs integer weights for '" + layer + "'");
    }
  }
  return std::unique_ptr<IntegerEngine>(new IntegerEngine(std::make_unique<Impl>(
      model, simulate ? kernels::GemmExec::kFloatSimulation : kernels::GemmExec::kInteger)));
}

IntegerEngine::IntegerEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IntegerEngine::~IntegerEngine() = default;
void IntegerEngine::Forward(const float* images, int batch, float* logits) {
  impl_->Forward(images, batch, logits);
}

}  // namespace vitq
