// The integer engine against the two simulated paths of the same .vitq file, on the bundled
// models and images:
// - its float simulation (IntegerEngine::CreateSimulation, `--simulate`): float GEMMs of the
//   dequantized operands, same rounding points; its logits must equal the engine's bit for bit;
// - the quantization methods' fake-quant path (SimulatedModel, `--fake-quant`): the same grids,
//   but float rounding of its own (float GEMMs over dequantized values, the float engine's GELU),
//   so an activation within float error of a rounding boundary lands on a neighbouring grid
//   point; in DeiT-Tiny such single-LSB differences multiply from block to block
//   (docs/ARCHITECTURE.md, "Integer engine vs simulation"). The bound: the two quantized paths
//   share every grid, so they must agree with each other at least as well as the fake-quant model
//   agrees with the float model (top-1 agreement and logits SQNR on the same images); a wrong
//   grid, scale or kernel in the engine breaks that at once.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"
#include "vitq/evaluate.h"
#include "vitq/qfile.h"
#include "vitq/quant.h"
#include "vitq/quantize.h"
#include "vitq/runtime.h"
#include "vitq/simulate.h"

namespace vitq {
namespace {

struct Agreement {
  double top1_identical = 0, sqnr_db = 0;    // engine against the fake-quant path
  double float_top1 = 0, float_sqnr_db = 0;  // the fake-quant path against the float model
  int64_t images = 0;
  int64_t logits_differing = -1;  // engine against its float simulation, bit for bit
  int unsigned8_p_sites = 0;      // attention probabilities P on the unsigned 8-bit grid (u8)
  int zero_point8_fc2_sites = 0;  // fc2's input on an 8-bit grid with a zero point z > 0 (u8)
  int log_row_p_sites = 0;        // P on the log-sqrt2 grid relative to each row's maximum
  int row_fc2_sites = 0;          // fc2's input on per-token grids (kUniformRow)
  int uniform_row_p_sites = 0;    // P on a uniform grid up to each row's maximum (kUniformRow)
};

// Quantizes `model_dir` with `method` on `calib_count` images of `calib_dir`, writes and reloads
// the .vitq file, and evaluates both paths on `data_dir`.
Agreement Compare(const std::string& model_dir, const std::string& calib_dir, int calib_count,
                  const std::string& data_dir, int bits, const std::string& method = "minmax",
                  int abits = 0, int limit = 0, const std::string& attn_quantizer = "auto") {
  Agreement a;
  auto model = LoadModel(testing::RepoPath(model_dir));
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return a;
  auto calib = LoadCalibrationSet(model->spec, testing::RepoPath(calib_dir), calib_count, 0, true);
  EXPECT_TRUE(calib.ok());
  QuantizeOptions opts;
  opts.method = method;
  opts.wbits = bits;
  opts.abits = abits > 0 ? abits : bits;
  opts.calib_size = calib_count;
  opts.attn_quantizer = attn_quantizer;
  opts.quiet = true;
  QuantizeReport report;
  auto plan = QuantizeModel(model.value(), calib.value(), opts, &report);
  EXPECT_TRUE(plan.ok());
  if (!plan.ok()) return a;
  for (const auto& [name, sp] : plan->sites) {
    a.unsigned8_p_sites += name.find("attn.pv:a") != std::string::npos && sp.scheme.bits == 8 &&
                           !sp.scheme.is_signed && sp.scheme.kind == QuantKind::kUniform;
    a.zero_point8_fc2_sites += name.find("mlp.fc2:in") != std::string::npos &&
                               sp.scheme.bits == 8 && !sp.scheme.is_signed &&
                               sp.params.zero_point[0] > 0;
    a.log_row_p_sites += sp.scheme.kind == QuantKind::kLogSqrt2Row;
    const bool p_site = name.find("attn.pv:a") != std::string::npos;
    a.row_fc2_sites += !p_site && sp.scheme.kind == QuantKind::kUniformRow;
    a.uniform_row_p_sites += p_site && sp.scheme.kind == QuantKind::kUniformRow;
  }
  testing::TempDir dir;
  EXPECT_TRUE(SaveQuantizedFile(dir.path("m.vitq"), model.value(), plan.value()).ok());
  auto q = LoadQuantizedFile(dir.path("m.vitq"));
  EXPECT_TRUE(q.ok()) << q.status().message();
  EXPECT_TRUE(ConfigureIsa().ok());
  auto engine = IntegerEngine::Create(q.value());
  EXPECT_TRUE(engine.ok()) << engine.status().message();
  auto sim = SimulatedModel::Create(DequantizedModel(q.value()), q->plan);
  EXPECT_TRUE(sim.ok());
  auto exact = IntegerEngine::CreateSimulation(q.value());
  EXPECT_TRUE(exact.ok()) << exact.status().message();
  if (!engine.ok() || !sim.ok() || !exact.ok()) return a;
  auto data = OpenImageFolder(testing::RepoPath(data_dir));
  EXPECT_TRUE(data.ok());
  EvalOptions eo;
  eo.quiet = true;
  eo.limit = limit;
  eo.keep_logits = true;
  IntegerEngine* e = engine->get();
  SimulatedModel* s = sim->get();
  auto ri = EvaluateDataset([e](const float* x, int b, float* y) { e->Forward(x, b, y); },
                            q->model.spec, data.value(), eo);
  eo.reference_logits = nullptr;
  auto rs = EvaluateDataset([s](const float* x, int b, float* y) { s->Forward(x, b, y); },
                            q->model.spec, data.value(), eo);
  IntegerEngine* x = exact->get();
  auto rx = EvaluateDataset([x](const float* in, int b, float* y) { x->Forward(in, b, y); },
                            q->model.spec, data.value(), eo);
  EXPECT_TRUE(ri.ok() && rs.ok() && rx.ok());
  if (!ri.ok() || !rs.ok() || !rx.ok()) return a;
  a.logits_differing = 0;
  for (size_t i = 0; i < ri->logits.size(); ++i) {
    a.logits_differing += std::memcmp(&ri->logits[i], &rx->logits[i], sizeof(float)) != 0;
  }
  const int nc = q->model.spec.config.num_classes;
  a.images = ri->images;
  int64_t same = 0;
  for (int64_t i = 0; i < ri->images; ++i) {
    same +=
        TopK(ri->logits.data() + i * nc, nc, 1)[0] == TopK(rs->logits.data() + i * nc, nc, 1)[0];
  }
  a.top1_identical = static_cast<double>(same) / ri->images;
  a.sqnr_db = Sqnr(rs->logits.data(), ri->logits.data(), static_cast<int64_t>(rs->logits.size()));
  Engine float_engine(model.value());
  auto rf = EvaluateDataset(
      [&float_engine](const float* x, int b, float* y) { float_engine.Forward(x, b, y); },
      model->spec, data.value(), eo);
  EXPECT_TRUE(rf.ok());
  if (!rf.ok()) return a;
  int64_t same_float = 0;
  for (int64_t i = 0; i < rf->images; ++i) {
    same_float +=
        TopK(rf->logits.data() + i * nc, nc, 1)[0] == TopK(rs->logits.data() + i * nc, nc, 1)[0];
  }
  a.float_top1 = static_cast<double>(same_float) / rf->images;
  a.float_sqnr_db =
      Sqnr(rf->logits.data(), rs->logits.data(), static_cast<int64_t>(rf->logits.size()));
  return a;
}

// The engine against the fake-quant path: at least as close as fake-quant is to the float model
// (top-1 give or take one image: where fake-quant agrees with the float model on every image, one
// image whose logits sit at a tie can still flip between the two quantized paths; seen at W8A8 on
// the CIFAR-10 ViT under the sanitizers' build, with the logits 49 dB apart).
void ExpectPathsAgree(const Agreement& a, const char* what) {
  std::printf(
      "%s over %lld images: engine vs fake-quant top-1 identical %.4f, SQNR %.1f dB; fake-quant "
      "vs float %.4f, %.1f dB\n",
      what, static_cast<long long>(a.images), a.top1_identical, a.sqnr_db, a.float_top1,
      a.float_sqnr_db);
  ASSERT_GT(a.images, 0) << what;
  EXPECT_GE(a.top1_identical + 1.0 / static_cast<double>(a.images) + 1e-9, a.float_top1) << what;
  EXPECT_GE(a.sqnr_db, a.float_sqnr_db) << what;
}

TEST(IntegerEngine, DeitTinyW8A8EqualsItsSimulation) {
  Agreement a =
      Compare("models/deit-tiny", "data/imagenet-samples/calib", 8, "data/imagenet-samples/val", 8);
  EXPECT_EQ(a.images, 400);
  EXPECT_EQ(a.logits_differing, 0);
  ExpectPathsAgree(a, "deit-tiny W8A8");
}

TEST(IntegerEngine, CifarVitW8A8EqualsItsSimulation) {
  // The bundled CIFAR-10 images are the calibration split; the 10,000 test images are checked by
  // bench/int8_accuracy.sh.
  Agreement a = Compare("models/vit-cifar10", "data/cifar10/calib", 16, "data/cifar10/calib", 8);
  EXPECT_EQ(a.images, 500);
  EXPECT_EQ(a.logits_differing, 0);
  ExpectPathsAgree(a, "vit-cifar10 W8A8");
}

// The vitq method's plans: per-channel weights, shifted (zero-point) activation ranges, at 8 bits
// the attention probabilities P as u8 codes up to each row's maximum (softmax and codes in one
// pass, u8 x s8 P·V, each row rescaled by its step; with --attn-quantizer uniform one u8 grid for
// the tensor) and fc2's post-GELU input as the u8 codes of a grid with a zero point (fc1 writes
// them, fc2 reads u8), and below 8 bits log-sqrt2 P (relative to each row's maximum) in s8 planes
// (LogPv) and fc2's input per token (each row's u8 codes, step and zero point; fc2's output
// rescaled per row). The engine must equal its simulation bit for bit; against the fake-quant path
// only top-1 agreement is bounded loosely (at 4 bits every float difference at a rounding boundary
// is a whole grid step).
TEST(IntegerEngine, VitqPlansEqualTheirSimulation) {
  for (const auto& [bits, attn] : std::vector<std::pair<int, std::string>>{
           {8, "auto"}, {8, "uniform"}, {4, "auto"}, {6, "auto"}}) {
    const std::string what = std::to_string(bits) + " bits, --attn-quantizer " + attn;
    Agreement a = Compare("models/vit-cifar10", "data/cifar10/calib", 16, "data/cifar10/calib",
                          bits, "vitq", bits, 200, attn);
    EXPECT_EQ(a.images, 200);
    const bool row_p = bits == 8 && attn == "auto";
    EXPECT_EQ(a.uniform_row_p_sites, row_p ? 6 : 0) << what;  // 6 blocks
    EXPECT_EQ(a.unsigned8_p_sites, bits == 8 && !row_p ? 6 : 0) << what;
    EXPECT_EQ(a.zero_point8_fc2_sites, bits == 8 ? 6 : 0) << what;
    EXPECT_EQ(a.log_row_p_sites, bits == 8 ? 0 : 6) << what;
    EXPECT_EQ(a.row_fc2_sites, bits == 8 ? 0 : 6) << what;
    EXPECT_EQ(a.logits_differing, 0) << what;
    ExpectPathsAgree(a, ("vit-cifar10 vitq W" + std::to_string(bits) + " " + attn).c_str());
  }
}

}  // namespace
}  // namespace vitq
