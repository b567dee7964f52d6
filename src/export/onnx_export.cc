// ONNX export (export stage): the graph of docs/ARCHITECTURE.md's integer engine, written as ONNX
// nodes with the ONNX protobuf library. Per block, batch N, T tokens:
//   x ─LayerNormalization─► Q/DQ(qkv:in) ─MatMul(DQ(W)) + b─► [N,T,3D] ─Reshape, Transpose─►
//   Gather q, k, v [N,H,T,hd] ─► Q/DQ(qk:a), Transpose(k) then Q/DQ(qk:b), Q/DQ(pv:b)
//   MatMul(q, kᵀ) · 1/√hd ─Softmax─► Q/DQ(pv:a) ─MatMul(·, v)─► Transpose, Reshape [N,T,D]
//   ─► Q/DQ(proj:in) ─MatMul(DQ(W)) + b─► + x
//   x ─LayerNormalization─► Q/DQ(fc1:in) ─MatMul(DQ(W)) + b─► GELU (erf) ─► Q/DQ(fc2:in)
//   ─MatMul(DQ(W)) + b─► + x
// Every Q/DQ pair sits where the integer engine quantizes (a transpose or a head split before a
// per-tensor quantizer commutes with it, so K is transposed first and DQ feeds MatMul directly).
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "vitq/export.h"
#include "vitq/safetensors.h"
#include "vitq/simulate.h"

namespace vitq {
namespace {

constexpr int kOpset = 17;  // LayerNormalization (17); per-axis DequantizeLinear (13)

// What a Q/DQ pair needs: the scale, the zero point, the ONNX integer type and, for grids
// narrower than that type, the float range a Clip keeps before QuantizeLinear.
struct ActGrid {
  float scale = 1.0f;
  int zero_point = 0;
  bool is_unsigned = false;
  int qmin = -128, qmax = 127;
  bool narrow() const {
    return is_unsigned ? (qmin > 0 || qmax < 255) : (qmin > -128 || qmax < 127);
  }
};

// The [in, out] layout MatMul takes of a [out, in] weight.
template <typename T>
std::vector<T> Transposed(const T* w, int64_t out, int64_t in) {
  std::vector<T> t(static_cast<size_t>(in * out));
  for (int64_t r = 0; r < out; ++r) {
    for (int64_t k = 0; k < in; ++k) t[k * out + r] = w[r * in + k];
  }
  return t;
}

// Declares a float graph input or output; a dimension of -1 is the batch ("batch").
void DeclareFloat(onnx::ValueInfoProto* v, const std::string& name,
                  const std::vector<int64_t>& dims) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) {
    if (d < 0) {
      t->mutable_shape()->add_dim()->set_dim_param("batch");
    } else {
      t->mutable_shape()->add_dim()->set_dim_value(d);
    }
  }
}

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* g) : g_(g) {}

  // A node with one output, named after the node (`name` when given: a graph output); returns
  // the output's name.
  std::string Op(const std::string& op, const std::vector<std::string>& inputs,
                 const std::vector<onnx::AttributeProto>& attrs = {},
                 const std::string& name = "") {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + std::to_string(g_->node_size()));
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(name.empty() ? n->name() : name);
    for (const onnx::AttributeProto& a : attrs) *n->add_attribute() = a;
    return n->output(0);
  }

  std::string F32(const std::string& name, const std::vector<int64_t>& dims, const float* data,
                  int64_t n) {
    return Raw(name, dims, onnx::TensorProto::FLOAT, data, n * sizeof(float));
  }
  std::string Scalar(const std::string& name, float v) { return F32(name, {}, &v, 1); }
  std::string I64(const std::string& name, const std::vector<int64_t>& v, bool scalar = false) {
    const std::vector<int64_t> dims =
        scalar ? std::vector<int64_t>{} : std::vector<int64_t>{static_cast<int64_t>(v.size())};
    return Raw(name, dims, onnx::TensorProto::INT64, v.data(), v.size() * sizeof(int64_t));
  }
  std::string Int8(const std::string& name, const std::vector<int64_t>& dims,
                   const std::vector<int8_t>& v, bool is_unsigned = false) {
    return Raw(name, dims, is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8,
               v.data(), v.size());
  }

  static onnx::AttributeProto Int(const std::string& name, int64_t v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(v);
    return a;
  }
  static onnx::AttributeProto Float(const std::string& name, float v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(v);
    return a;
  }
  static onnx::AttributeProto Ints(const std::string& name, const std::vector<int64_t>& v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a.add_ints(x);
    return a;
  }

 private:
  // An initializer holding `bytes` bytes of `data`; a name already given is not added again
  // (shared constants: the callers give one name one value). Returns the name.
  std::string Raw(const std::string& name, const std::vector<int64_t>& dims, int type,
                  const void* data, size_t bytes) {
    if (!names_.insert(name).second) return name;
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(static_cast<const char*>(data), bytes));
    return name;
  }
  onnx::GraphProto* g_;
  std::set<std::string> names_;
};

// Builds the ViT graph; a null `qm` gives the float model.
class VitGraph {
 public:
  VitGraph(const ViTModel& m, const QuantizedModel* qm, const OnnxExportOptions& opt,
           onnx::GraphProto* g, OnnxExportInfo* info)
      : m_(m), c_(m.spec.config), qm_(qm), opt_(opt), b_(g), info_(info) {}

  Status Build(const std::string& input, const std::string& output) {
    const int d = c_.embed_dim, p = c_.patch_size, gs = c_.grid(), ch = c_.in_chans;
    const ViTWeights& w = m_.weights;
    // Patches [N, np, C*p*p] in (c, ky, kx) order, as the patch conv kernel is flattened.
    std::string x = b_.Op("Reshape", {input, b_.I64("patch.shape6", {-1, ch, gs, p, gs, p})});
    x = b_.Op("Transpose", {x}, {GraphBuilder::Ints("perm", {0, 2, 4, 1, 3, 5})});
    x = b_.Op("Reshape", {x, b_.I64("patch.shape3", {-1, gs * gs, ch * p * p})});
    VITQ_ASSIGN_OR_RETURN(x, Linear("patch_embed.proj", w.patch_embed, x));
    // [cls, (dist,) patches] + pos_embed; the tokens expanded to the batch.
    const std::string shape = b_.Op("Shape", {input});
    const std::string n = b_.Op("Slice", {shape, b_.I64("c.0", {0}), b_.I64("c.1", {1})});
    const std::string tok_shape =
        b_.Op("Concat", {n, b_.I64("tok.shape_tail", {1, d})}, {GraphBuilder::Int("axis", 0)});
    std::vector<std::string> parts;
    parts.push_back(b_.Op("Expand", {Const("cls_token", {1, 1, d}, w.cls_token), tok_shape}));
    if (c_.dist_token) {
      parts.push_back(b_.Op("Expand", {Const("dist_token", {1, 1, d}, w.dist_token), tok_shape}));
    }
    parts.push_back(x);
    x = b_.Op("Concat", parts, {GraphBuilder::Int("axis", 1)});
    x = b_.Op("Add", {x, Const("pos_embed", {1, c_.num_tokens(), d}, w.pos_embed)});
    for (int i = 0; i < c_.depth; ++i) {
      VITQ_ASSIGN_OR_RETURN(x, Block(i, x));
    }
    // The final LayerNorm (per token), then the prefix tokens' rows.
    x = LayerNorm("norm", w.norm_weight, w.norm_bias, x);
    const std::string h0 =
        b_.Op("Gather", {x, b_.I64("c.idx0", {0}, true)}, {GraphBuilder::Int("axis", 1)});
    VITQ_ASSIGN_OR_RETURN(std::string logits, Linear("head", w.head, h0));
    if (c_.head_dist) {
      const std::string h1 =
          b_.Op("Gather", {x, b_.I64("c.idx1", {1}, true)}, {GraphBuilder::Int("axis", 1)});
      VITQ_ASSIGN_OR_RETURN(std::string l1, Linear("head_dist", w.head_dist, h1));
      logits = b_.Op("Mul", {b_.Op("Add", {logits, l1}), b_.Scalar("c.half", 0.5f)});
    }
    b_.Op("Identity", {logits}, {}, output);
    return Status::Ok();
  }

 private:
  std::string Const(const std::string& name, const std::vector<int64_t>& dims, const Tensor& t) {
    return b_.F32(name, dims, t.f32(), t.size());
  }

  std::string LayerNorm(const std::string& name, const Tensor& weight, const Tensor& bias,
                        const std::string& x) {
    const int64_t d = weight.size();
    return b_.Op("LayerNormalization",
                 {x, Const(name + ".weight", {d}, weight), Const(name + ".bias", {d}, bias)},
                 {GraphBuilder::Int("axis", -1), GraphBuilder::Float("epsilon", c_.ln_eps)});
  }

  // The activation site's grid, or an error naming what Q/DQ cannot express.
  Result<ActGrid> Grid(const std::string& site) {
    const SitePlan* sp = qm_->plan.Find(site);
    if (sp == nullptr) {
      return Status::InvalidInput("the plan has no site '" + site +
                                  "' (Q/DQ export needs every site quantized)");
    }
    const QuantScheme& s = sp->scheme;
    if (s.granularity == Granularity::kPerChannel || sp->params.scale.size() != 1) {
      return Status::InvalidInput("site '" + site +
                                  "' is quantized per channel; Q/DQ export takes activations "
                                  "per tensor");
    }
    ActGrid g;
    g.scale = sp->params.scale[0];
    g.zero_point = sp->params.zero_point.empty() ? 0 : sp->params.zero_point[0];
    g.is_unsigned = !s.is_signed;
    g.qmin = s.qmin();
    g.qmax = s.qmax();
    return g;
  }

  // QuantizeLinear then DequantizeLinear on `site`'s grid.
  Result<std::string> Qdq(const std::string& site, std::string x) {
    if (qm_ == nullptr) return x;
    if (const SitePlan* sp = qm_->plan.Find(site);
        sp != nullptr && sp->scheme.kind == QuantKind::kUniformRow) {
      if (!opt_.approximate) {
        return Status::InvalidInput(
            "site '" + site +
            "' is quantized per row (each token's or attention row's own grid, set at run "
            "time), which QuantizeLinear/DequantizeLinear cannot express; pass --approximate to "
            "write it as float operations (ReduceMin/ReduceMax, Round, Clip) computing the same "
            "grid" +
            (IsProbabilitySite(site) ? ", or quantize with --attn-quantizer uniform" : "") +
            (IsFc2InputSite(site) ? ", or quantize with --fc2-input tensor" : ""));
      }
      const bool p_site = IsProbabilitySite(site);
      bool& noted = p_site ? row_p_note_ : row_note_;
      if (!noted) {
        info_->approximations.push_back(
            p_site ? "the attention probabilities P, quantized per row, are computed with float "
                     "operations (ReduceMin, ReduceMax, Div, Round, Clip), not Q/DQ, and P·V runs "
                     "in float on their values; each row's step is the plan's up to float rounding"
                   : "fc2's input, quantized per token, is computed with float operations "
                     "(ReduceMin, ReduceMax, Div, Round, Clip), not Q/DQ, and fc2 runs in float on "
                     "its values; each row's step and zero point are the plan's up to float "
                     "rounding");
        noted = true;
      }
      return UniformRow(site, *sp, x);
    }
    VITQ_ASSIGN_OR_RETURN(ActGrid g, Grid(site));
    const std::string scale = b_.Scalar(site + ".scale", g.scale);
    const std::string zp =
        b_.Int8(site + ".zero_point", {}, {static_cast<int8_t>(static_cast<uint8_t>(g.zero_point))},
                g.is_unsigned);
    if (g.narrow()) {
      // The grid [qmin, qmax] in real values: (q - z) * scale, as DequantizeLinear computes it.
      const float lo = static_cast<float>(g.qmin - g.zero_point) * g.scale;
      const float hi = static_cast<float>(g.qmax - g.zero_point) * g.scale;
      x = b_.Op("Clip", {x, b_.Scalar(site + ".lo", lo), b_.Scalar(site + ".hi", hi)});
      ++info_->clipped_sites;
    }
    const std::string q = b_.Op("QuantizeLinear", {x, scale, zp});
    ++info_->qdq_sites;
    return b_.Op("DequantizeLinear", {q, scale, zp});
  }

  // P on a log-√2 grid as float operations: code = round(-2·log2(P/Δ)), P̂ = Δ·2^(-code/2) for
  // 0 <= code <= max (codes below 0 count as 0), 0 beyond and for P <= 0. Δ is the plan's scale,
  // times each row's maximum (ReduceMax over the last axis) for a per-row grid.
  std::string LogSqrt2(const std::string& site, const SitePlan& sp, const std::string& x) {
    const float scale = sp.params.scale[0];
    const int max_code = LogMaxCode(sp.scheme.bits);
    std::string delta = b_.Scalar(site + ".scale", scale);
    if (sp.scheme.kind == QuantKind::kLogSqrt2Row) {
      delta =
          b_.Op("Mul", {b_.Op("ReduceMax", {x},
                              {GraphBuilder::Ints("axes", {-1}), GraphBuilder::Int("keepdims", 1)}),
                        delta});
    }
    const std::string ratio = b_.Op("Div", {x, delta});
    std::string code =
        b_.Op("Round",
              {b_.Op("Mul", {b_.Op("Log", {ratio}),
                             b_.Scalar(site + ".k", static_cast<float>(-2.0 / std::log(2.0)))})});
    const std::string keep =
        b_.Op("And", {b_.Op("Greater", {x, b_.Scalar("c.zero", 0.0f)}),
                      b_.Op("LessOrEqual", {code, b_.Scalar(site + ".max_code", max_code)})});
    code = b_.Op("Max", {code, b_.Scalar("c.zero", 0.0f)});
    const std::string value =
        b_.Op("Mul", {b_.Op("Pow", {b_.Scalar("c.two", 2.0f),
                                    b_.Op("Mul", {code, b_.Scalar("c.minus_half", -0.5f)})}),
                      delta});
    return b_.Op("Where", {keep, value, b_.Scalar("c.zero", 0.0f)});
  }

  // x on kUniformRow grids as float operations: per row (last axis) lo = min(0, min x), hi =
  // max(0, max x), step = scale · (hi - lo) (1 where that is 0), zero = clip(round(-lo / step), 0,
  // qmax), x̂ = (clip(round(x / step) + zero, 0, qmax) - zero) · step; Round is half to even, as
  // the engine's.
  std::string UniformRow(const std::string& site, const SitePlan& sp, const std::string& x) {
    const std::vector<onnx::AttributeProto> last = {GraphBuilder::Ints("axes", {-1}),
                                                    GraphBuilder::Int("keepdims", 1)};
    const std::string zero_c = b_.Scalar("c.zero", 0.0f);
    const std::string qmax = b_.Scalar(site + ".qmax", static_cast<float>(sp.scheme.qmax()));
    const std::string lo = b_.Op("Min", {b_.Op("ReduceMin", {x}, last), zero_c});
    const std::string hi = b_.Op("Max", {b_.Op("ReduceMax", {x}, last), zero_c});
    std::string step =
        b_.Op("Mul", {b_.Op("Sub", {hi, lo}), b_.Scalar(site + ".scale", sp.params.scale[0])});
    step = b_.Op("Where", {b_.Op("Greater", {step, zero_c}), step, b_.Scalar("c.one", 1.0f)});
    const std::string zero =
        b_.Op("Clip", {b_.Op("Round", {b_.Op("Div", {b_.Op("Neg", {lo}), step})}), zero_c, qmax});
    const std::string q = b_.Op(
        "Clip", {b_.Op("Add", {b_.Op("Round", {b_.Op("Div", {x, step})}), zero}), zero_c, qmax});
    return b_.Op("Mul", {b_.Op("Sub", {q, zero}), step});
  }

  // x · Wᵀ + b: W as int8 [in, out] behind DequantizeLinear (per output channel: axis 1), or
  // float; the input through its Q/DQ pair.
  Result<std::string> Linear(const std::string& layer, const LinearWeights& lw,
                             const std::string& x_in) {
    VITQ_ASSIGN_OR_RETURN(std::string x, Qdq(layer + ":in", x_in));
    std::string weight;
    int64_t out = lw.bias.size(), in = 0;
    if (qm_ != nullptr) {
      const auto it = qm_->linear.find(layer);
      if (it == qm_->linear.end()) {
        return Status::InvalidInput("the file has no integer weights for '" + layer + "'");
      }
      const QuantizedLinear& ql = it->second;
      const QuantScheme& s = ql.scheme;
      if (!s.symmetric || !s.is_signed ||
          std::any_of(ql.params.zero_point.begin(), ql.params.zero_point.end(),
                      [](int32_t z) { return z != 0; })) {
        return Status::InvalidInput("site '" + layer +
                                    ":w' is not symmetric signed; Q/DQ export stores weights as "
                                    "int8 with zero point 0");
      }
      out = ql.rows;
      in = ql.cols;
      const std::string wq = b_.Int8(layer + ".weight_quantized", {in, out},
                                     Transposed(ql.Unpacked().data<int8_t>(), out, in));
      const bool per_channel = ql.params.scale.size() > 1;
      const std::vector<int64_t> sdims =
          per_channel ? std::vector<int64_t>{out} : std::vector<int64_t>{};
      const std::string ws = b_.F32(layer + ".weight_scale", sdims, ql.params.scale.data(),
                                    static_cast<int64_t>(ql.params.scale.size()));
      const std::string wz = b_.Int8(layer + ".weight_zero_point", sdims,
                                     std::vector<int8_t>(ql.params.scale.size(), 0));
      weight = per_channel ? b_.Op("DequantizeLinear", {wq, ws, wz}, {GraphBuilder::Int("axis", 1)})
                           : b_.Op("DequantizeLinear", {wq, ws, wz});
      ++info_->int8_weights;
    } else {
      in = lw.weight.shape()[1];
      const std::vector<float> t = Transposed(lw.weight.f32(), out, in);
      weight = b_.F32(layer + ".weight_t", {in, out}, t.data(), in * out);
    }
    const std::string y = b_.Op("MatMul", {x, weight});
    return b_.Op("Add", {y, Const(layer + ".bias", {out}, lw.bias)});
  }

  Result<std::string> Block(int i, const std::string& x) {
    const BlockWeights& bw = m_.weights.blocks[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    const int d = c_.embed_dim, h = c_.num_heads, hd = c_.head_dim();
    std::string y = LayerNorm(p + "norm1", bw.norm1_weight, bw.norm1_bias, x);
    VITQ_ASSIGN_OR_RETURN(y, Linear(p + "attn.qkv", bw.qkv, y));
    // [N, T, 3D] -> [3, N, H, T, hd]; q, k, v by index.
    y = b_.Op("Reshape", {y, b_.I64("qkv.shape", {0, 0, 3, h, hd})});
    y = b_.Op("Transpose", {y}, {GraphBuilder::Ints("perm", {2, 0, 3, 1, 4})});
    const std::vector<onnx::AttributeProto> axis0 = {GraphBuilder::Int("axis", 0)};
    std::string q = b_.Op("Gather", {y, b_.I64("c.idx0", {0}, true)}, axis0);
    std::string k = b_.Op("Gather", {y, b_.I64("c.idx1", {1}, true)}, axis0);
    std::string v = b_.Op("Gather", {y, b_.I64("c.idx2", {2}, true)}, axis0);
    k = b_.Op("Transpose", {k}, {GraphBuilder::Ints("perm", {0, 1, 3, 2})});
    VITQ_ASSIGN_OR_RETURN(q, Qdq(p + "attn.qk:a", q));
    VITQ_ASSIGN_OR_RETURN(k, Qdq(p + "attn.qk:b", k));
    VITQ_ASSIGN_OR_RETURN(v, Qdq(p + "attn.pv:b", v));
    std::string s = b_.Op("MatMul", {q, k});
    s = b_.Op("Mul", {s, b_.Scalar("attn.scale", 1.0f / std::sqrt(static_cast<float>(hd)))});
    std::string prob = b_.Op("Softmax", {s}, {GraphBuilder::Int("axis", -1)});
    const SitePlan* ps = qm_ != nullptr ? qm_->plan.Find(p + "attn.pv:a") : nullptr;
    if (ps != nullptr && IsLogSqrt2(ps->scheme.kind)) {
      if (!opt_.approximate) {
        return Status::InvalidInput(
            "site '" + p +
            "attn.pv:a' is on a log-√2 grid, which QuantizeLinear/DequantizeLinear cannot "
            "express; pass --approximate to write it as float operations (Log, Round, Pow) "
            "computing the same levels");
      }
      if (info_->approximations.empty()) {
        info_->approximations.push_back(
            "attention probabilities on a log-√2 grid are computed with float operations (Log, "
            "Round, Pow, Where), not Q/DQ, and their P·V product runs in float; the levels are "
            "the plan's up to float rounding (odd codes: 2^(-q/2) by Pow instead of 2^(-⌊q/2⌋)·"
            "float(1/√2))");
      }
      prob = LogSqrt2(p + "attn.pv:a", *ps, prob);
    } else {
      VITQ_ASSIGN_OR_RETURN(prob, Qdq(p + "attn.pv:a", prob));
    }
    std::string o = b_.Op("MatMul", {prob, v});
    o = b_.Op("Transpose", {o}, {GraphBuilder::Ints("perm", {0, 2, 1, 3})});
    o = b_.Op("Reshape", {o, b_.I64("merge.shape", {0, 0, d})});
    VITQ_ASSIGN_OR_RETURN(o, Linear(p + "attn.proj", bw.proj, o));
    const std::string x1 = b_.Op("Add", {x, o});
    y = LayerNorm(p + "norm2", bw.norm2_weight, bw.norm2_bias, x1);
    VITQ_ASSIGN_OR_RETURN(y, Linear(p + "mlp.fc1", bw.fc1, y));
    // GELU (erf): 0.5 · x · (1 + erf(x / √2)), the pattern ONNX Runtime fuses into Gelu.
    const std::string e =
        b_.Op("Erf", {b_.Op("Div", {y, b_.Scalar("c.sqrt2", static_cast<float>(std::sqrt(2.0)))})});
    y = b_.Op("Mul", {b_.Op("Mul", {y, b_.Op("Add", {e, b_.Scalar("c.one", 1.0f)})}),
                      b_.Scalar("c.half", 0.5f)});
    VITQ_ASSIGN_OR_RETURN(y, Linear(p + "mlp.fc2", bw.fc2, y));
    return b_.Op("Add", {x1, y});
  }

  const ViTModel& m_;
  const ViTConfig& c_;
  const QuantizedModel* qm_;
  OnnxExportOptions opt_;
  GraphBuilder b_;
  OnnxExportInfo* info_;
  bool row_note_ = false;    // the per-token approximation is noted once
  bool row_p_note_ = false;  // ... and the per-row one of P
};

Result<OnnxExportInfo> Export(const ViTModel& m, const QuantizedModel* qm, const std::string& path,
                              const OnnxExportOptions& opt) {
  const ViTConfig& c = m.spec.config;
  OnnxExportInfo info;
  info.opset = kOpset;
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("vitq");
  model.set_producer_version(VITQ_VERSION_STRING);
  model.set_model_version(1);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name(c.architecture.empty() ? "vit" : c.architecture);

  DeclareFloat(g->add_input(), info.input, {-1, c.in_chans, c.img_size, c.img_size});
  VitGraph graph(m, qm, opt, g, &info);
  VITQ_RETURN_IF_ERROR(graph.Build(info.input, info.output));
  DeclareFloat(g->add_output(), info.output, {-1, c.num_classes});

  auto meta = [&](const std::string& key, const std::string& value) {
    onnx::StringStringEntryProto* e = model.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  };
  meta("vitq.architecture", c.architecture);
  meta("vitq.preprocess", m.spec.preprocess.Describe());
  if (qm != nullptr) {
    meta("vitq.method", qm->plan.method);
    meta("vitq.calib_size", std::to_string(qm->plan.calib_size));
  }
  for (size_t i = 0; i < info.approximations.size(); ++i) {
    meta("vitq.approximation." + std::to_string(i), info.approximations[i]);
  }
  info.nodes = g->node_size();

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("the exported graph fails ONNX's checker: ") + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return Status::InvalidInput("the ONNX model is too large for one protobuf file (" +
                                std::to_string(model.ByteSizeLong()) + " bytes, limit 2 GiB)");
  }
  VITQ_RETURN_IF_ERROR(WriteFileAtomic(path, bytes));
  info.bytes = static_cast<int64_t>(bytes.size());
  return info;
}

}  // namespace

Result<OnnxExportInfo> ExportOnnx(const QuantizedModel& model, const std::string& path,
                                  const OnnxExportOptions& options) {
  return Export(model.model, &model, path, options);
}

Result<OnnxExportInfo> ExportOnnxFloat(const ViTModel& model, const std::string& path) {
  return Export(model, nullptr, path, {});
}

}  // namespace vitq
