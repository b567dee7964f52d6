// ONNX export: the graph's structure, its Q/DQ parameters against the .vitq file, the checker,
// refusals, and the CLI's errors (the numerical round trip through ONNX Runtime is
// tests/onnx_ort_test.sh and bench/onnx_roundtrip.sh).
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "test_util.h"
#include "vitq/export.h"
#include "vitq/qfile.h"
#include "vitq/simulate.h"

namespace vitq {
namespace {
namespace fs = std::filesystem;

using testing::HandPlan;

onnx::ModelProto ReadModel(const std::string& path) {
  onnx::ModelProto m;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(m.ParseFromIstream(&in)) << path;
  return m;
}

std::map<std::string, int> OpCounts(const onnx::ModelProto& m) {
  std::map<std::string, int> n;
  for (const auto& node : m.graph().node()) ++n[node.op_type()];
  return n;
}

const onnx::TensorProto* Initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

struct Fixture {
  testing::TempDir dir;
  ViTModel model = RandomModel(testing::SmallConfig(true), 21);
  std::string Save(const QuantPlan& plan) {
    const std::string path = dir.path("m.vitq");
    EXPECT_TRUE(SaveQuantizedFile(path, model, plan).ok());
    return path;
  }
};

TEST(OnnxExport, QdqGraphHasEverySiteAndTheFilesIntegers) {
  Fixture f;
  auto q = LoadQuantizedFile(f.Save(HandPlan(f.model, 8, 8)));
  ASSERT_TRUE(q.ok()) << q.status().message();
  auto info = ExportOnnx(q.value(), f.dir.path("m.onnx"));
  ASSERT_TRUE(info.ok()) << info.status().message();
  const onnx::ModelProto m = ReadModel(f.dir.path("m.onnx"));
  EXPECT_NO_THROW(onnx::checker::check_model(m));
  EXPECT_EQ(m.opset_import(0).version(), 17);
  EXPECT_EQ(info->bytes, static_cast<int64_t>(fs::file_size(f.dir.path("m.onnx"))));
  // Activation sites: every "<layer>:in" and the four matmul operands of each block.
  const ViTConfig& c = f.model.spec.config;
  int activation_sites = 0;
  for (const std::string& s : QuantSiteNames(c))
    activation_sites += s.find(":w") == std::string::npos;
  const auto ops = OpCounts(m);
  EXPECT_EQ(ops.at("QuantizeLinear"), activation_sites);
  EXPECT_EQ(info->qdq_sites, activation_sites);
  EXPECT_EQ(ops.at("DequantizeLinear"), activation_sites + static_cast<int>(q->linear.size()));
  EXPECT_EQ(ops.at("LayerNormalization"), 2 * c.depth + 1);
  EXPECT_EQ(ops.at("Softmax"), c.depth);
  EXPECT_EQ(ops.at("Erf"), c.depth);
  EXPECT_EQ(ops.count("Clip"), 0u);  // 8-bit grids span int8
  EXPECT_EQ(m.graph().input(0).name(), "pixel_values");
  EXPECT_EQ(m.graph().output(0).name(), "logits");
  // Weights: the file's integers transposed to [in, out], its scales, zero points 0.
  for (const auto& [layer, ql] : q->linear) {
    const onnx::TensorProto* w = Initializer(m, layer + ".weight_quantized");
    ASSERT_NE(w, nullptr) << layer;
    EXPECT_EQ(w->data_type(), onnx::TensorProto::INT8);
    ASSERT_EQ(w->dims_size(), 2);
    EXPECT_EQ(w->dims(0), ql.cols);
    EXPECT_EQ(w->dims(1), ql.rows);
    const Tensor u = ql.Unpacked();
    const std::string& raw = w->raw_data();
    ASSERT_EQ(raw.size(), static_cast<size_t>(ql.rows * ql.cols));
    int mismatches = 0;
    for (int64_t r = 0; r < ql.rows; ++r)
      for (int64_t k = 0; k < ql.cols; ++k)
        mismatches +=
            static_cast<int8_t>(raw[k * ql.rows + r]) != u.data<int8_t>()[r * ql.cols + k];
    EXPECT_EQ(mismatches, 0) << layer;
    const onnx::TensorProto* s = Initializer(m, layer + ".weight_scale");
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(s->raw_data().size(), ql.params.scale.size() * 4) << layer;
    EXPECT_EQ(std::memcmp(s->raw_data().data(), ql.params.scale.data(), s->raw_data().size()), 0);
  }
  // An activation site's scale.
  const onnx::TensorProto* s = Initializer(m, "blocks.1.attn.pv:a.scale");
  ASSERT_NE(s, nullptr);
  float v = 0;
  std::memcpy(&v, s->raw_data().data(), 4);
  EXPECT_EQ(v, q->plan.Find("blocks.1.attn.pv:a")->params.scale[0]);
  // Distilled: two heads averaged.
  EXPECT_NE(Initializer(m, "head_dist.weight_quantized"), nullptr);
}

TEST(OnnxExport, SubEightBitGridsAreClippedBeforeQuantizeLinear) {
  Fixture f;
  auto q = LoadQuantizedFile(f.Save(HandPlan(f.model, 4, 4)));
  ASSERT_TRUE(q.ok());
  auto info = ExportOnnx(q.value(), f.dir.path("m.onnx"));
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->clipped_sites, info->qdq_sites);
  const onnx::ModelProto m = ReadModel(f.dir.path("m.onnx"));
  const onnx::TensorProto* hi = Initializer(m, "blocks.0.mlp.fc2:in.hi");
  ASSERT_NE(hi, nullptr);
  float v = 0;
  std::memcpy(&v, hi->raw_data().data(), 4);
  EXPECT_EQ(v, 7 * 0.05f);  // qmax 7 on the 4-bit signed grid
}

// Exports `plan` (whose `site` Q/DQ cannot express) without --approximate, which must be refused
// naming the site and the flag and leave nothing, then with it into f.dir/m.onnx: its info.
OnnxExportInfo ExportRefusedUnlessApproximate(Fixture& f, const QuantPlan& plan,
                                              const std::string& site) {
  fs::remove(f.dir.path("m.onnx"));  // from an earlier call
  auto q = LoadQuantizedFile(f.Save(plan));
  EXPECT_TRUE(q.ok()) << q.status().message();
  if (!q.ok()) return {};
  auto refused = ExportOnnx(q.value(), f.dir.path("m.onnx"));
  EXPECT_FALSE(refused.ok());
  if (refused.ok()) return {};
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(refused.status().message().find(site), std::string::npos);
  EXPECT_NE(refused.status().message().find("--approximate"), std::string::npos);
  EXPECT_FALSE(fs::exists(f.dir.path("m.onnx")));
  OnnxExportOptions opt;
  opt.approximate = true;
  auto info = ExportOnnx(q.value(), f.dir.path("m.onnx"), opt);
  EXPECT_TRUE(info.ok()) << info.status().message();
  if (!info.ok()) return {};
  EXPECT_EQ(info->approximations.size(), 1u);
  EXPECT_NO_THROW(onnx::checker::check_model(ReadModel(f.dir.path("m.onnx"))));
  return info.value();
}

TEST(OnnxExport, LogSqrt2AttentionIsRefusedUnlessApproximationIsAsked) {
  Fixture f;
  QuantPlan plan = HandPlan(f.model, 8, 4);
  SitePlan& p = plan.sites.at("blocks.1.attn.pv:a");
  p.scheme.kind = QuantKind::kLogSqrt2;
  p.scheme.is_signed = false;
  p.params = {{1.0f}, {0}};
  const OnnxExportInfo info = ExportRefusedUnlessApproximate(f, plan, "blocks.1.attn.pv:a");
  const auto ops = OpCounts(ReadModel(f.dir.path("m.onnx")));
  EXPECT_EQ(ops.at("Log"), 1);
  EXPECT_EQ(ops.at("QuantizeLinear"), info.qdq_sites);
  EXPECT_EQ(ops.count("ReduceMax"), 0u);
  // Per row: the scale is each row's maximum (ReduceMax over the last axis) times the plan's.
  p.scheme.kind = QuantKind::kLogSqrt2Row;
  ExportRefusedUnlessApproximate(f, plan, "blocks.1.attn.pv:a");
  EXPECT_EQ(OpCounts(ReadModel(f.dir.path("m.onnx"))).at("ReduceMax"), 1);
}

// `site` of `plan` on a per-row (uniform_row) grid with the plan's `scale`.
void MakeRowGrid(QuantPlan* plan, const std::string& site, float scale) {
  SitePlan& s = plan->sites.at(site);
  s.scheme.symmetric = s.scheme.is_signed = false;
  s.scheme.kind = QuantKind::kUniformRow;
  s.params = {{scale}, {0}};
}

TEST(OnnxExport, PerTokenFc2InputIsRefusedUnlessApproximationIsAsked) {
  Fixture f;
  QuantPlan plan = HandPlan(f.model, 8, 4);
  MakeRowGrid(&plan, "blocks.0.mlp.fc2:in", 0.05f);
  const OnnxExportInfo info = ExportRefusedUnlessApproximate(f, plan, "blocks.0.mlp.fc2:in");
  const auto ops = OpCounts(ReadModel(f.dir.path("m.onnx")));
  EXPECT_EQ(ops.at("ReduceMin"), 1);  // one per-token site: its row's range
  EXPECT_EQ(ops.at("ReduceMax"), 1);
  EXPECT_EQ(ops.at("QuantizeLinear"), info.qdq_sites);
}

// P per row (the vitq method's default at 8 bits) is a per-row grid too: refused as Q/DQ, written
// with ReduceMin/ReduceMax under --approximate.
TEST(OnnxExport, PerRowAttentionProbabilitiesAreRefusedUnlessApproximationIsAsked) {
  Fixture f;
  QuantPlan plan = HandPlan(f.model, 8, 8);
  MakeRowGrid(&plan, "blocks.1.attn.pv:a", 1.0f / 255);
  const OnnxExportInfo info = ExportRefusedUnlessApproximate(f, plan, "blocks.1.attn.pv:a");
  const auto ops = OpCounts(ReadModel(f.dir.path("m.onnx")));
  EXPECT_EQ(ops.at("ReduceMax"), 1);
  EXPECT_EQ(ops.at("QuantizeLinear"), info.qdq_sites);
}

TEST(OnnxExport, FloatModelHasNoQuantizers) {
  Fixture f;
  auto info = ExportOnnxFloat(f.model, f.dir.path("f.onnx"));
  ASSERT_TRUE(info.ok()) << info.status().message();
  const onnx::ModelProto m = ReadModel(f.dir.path("f.onnx"));
  EXPECT_NO_THROW(onnx::checker::check_model(m));
  const auto ops = OpCounts(m);
  EXPECT_EQ(ops.count("QuantizeLinear"), 0u);
  EXPECT_EQ(ops.count("DequantizeLinear"), 0u);
  EXPECT_EQ(ops.at("MatMul"),
            static_cast<int>(LinearLayers(f.model).size()) + 2 * f.model.spec.config.depth);
  EXPECT_EQ(info->qdq_sites, 0);
}

TEST(OnnxExport, UnwritableOutputLeavesNothing) {
  Fixture f;
  auto q = LoadQuantizedFile(f.Save(HandPlan(f.model, 8, 8)));
  ASSERT_TRUE(q.ok());
  auto info = ExportOnnx(q.value(), f.dir.path("missing/m.onnx"));
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("missing/m.onnx"), std::string::npos)
      << info.status().message();
  EXPECT_FALSE(fs::exists(f.dir.path("missing")));
}

int RunCli(const std::string& args, std::string* out) {
  const std::string tmp =
      fs::temp_directory_path() / ("vitq_export_cli_" + std::to_string(getpid()));
  const int rc =
      std::system((std::string(VITQ_BINARY) + " " + args + " >" + tmp + " 2>&1").c_str());
  *out = testing::ReadText(tmp);
  fs::remove(tmp);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(OnnxExportCli, BadInputsExitThreeAndWriteNothing) {
  Fixture f;
  const std::string vitq = f.Save(HandPlan(f.model, 8, 8));
  std::string out;
  // A corrupt .vitq: bytes flipped in the tensor data (checksum) and a truncated copy.
  {
    std::string bytes = testing::ReadText(vitq);
    bytes[bytes.size() - 10] ^= 0x5a;
    testing::WriteText(f.dir.path("bad.vitq"), bytes);
    testing::WriteText(f.dir.path("cut.vitq"), testing::ReadText(vitq).substr(0, 1000));
  }
  EXPECT_EQ(RunCli("export " + f.dir.path("bad.vitq") + " --out " + f.dir.path("a.onnx"), &out), 3)
      << out;
  EXPECT_NE(out.find("bad.vitq"), std::string::npos) << out;
  EXPECT_EQ(RunCli("export " + f.dir.path("cut.vitq") + " --out " + f.dir.path("a.onnx"), &out), 3)
      << out;
  EXPECT_FALSE(fs::exists(f.dir.path("a.onnx")));
  // Unwritable --out: a directory that does not exist, a directory, the input itself.
  EXPECT_EQ(RunCli("export " + vitq + " --out " + f.dir.path("no/a.onnx"), &out), 3) << out;
  EXPECT_NE(out.find("--out"), std::string::npos) << out;
  EXPECT_EQ(RunCli("export " + vitq + " --out " + f.dir.path(""), &out), 3) << out;
  EXPECT_EQ(RunCli("export " + vitq + " --out " + vitq, &out), 3) << out;
  // A float checkpoint with --format onnx.
  const std::string model = testing::RepoPath("models/vit-cifar10");
  EXPECT_EQ(RunCli("export " + model + " --out " + f.dir.path("a.onnx"), &out), 3) << out;
  EXPECT_NE(out.find("onnx-float"), std::string::npos) << out;
  // An existing output survives a refused export.
  testing::WriteText(f.dir.path("keep.onnx"), "keep");
  EXPECT_EQ(RunCli("export " + f.dir.path("bad.vitq") + " --out " + f.dir.path("keep.onnx"), &out),
            3);
  EXPECT_EQ(testing::ReadText(f.dir.path("keep.onnx")), "keep");
  // The good file, both formats, with --json.
  EXPECT_EQ(RunCli("export " + vitq + " --out " + f.dir.path("a.onnx") + " --json", &out), 0)
      << out;
  EXPECT_NE(out.find("\"qdq_sites\""), std::string::npos) << out;
  EXPECT_EQ(RunCli("export " + model + " --format onnx-float --out " + f.dir.path("f.onnx"), &out),
            0)
      << out;
  EXPECT_TRUE(fs::exists(f.dir.path("f.onnx")));
}

}  // namespace
}  // namespace vitq
