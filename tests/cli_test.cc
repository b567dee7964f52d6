// The vitq binary: subcommands work, --json is valid JSON, and bad input exits with code 3 and a
// message naming the culprit, never a crash.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vitq/dataset.h"
#include "vitq/qfile.h"
#include "vitq/safetensors.h"
#include "vitq/simulate.h"

namespace vitq {
namespace {
using testing::RepoPath;
using testing::TempDir;
using testing::WriteText;
namespace fs = std::filesystem;

struct CmdResult {
  int code;
  std::string out;  // stdout + stderr
};

CmdResult Vitq(const std::string& args, bool stderr_too = true, const std::string& env = "") {
  std::string cmd = (env.empty() ? "" : env + " ") + std::string(VITQ_BINARY) + " " + args +
                    (stderr_too ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

void ExpectBadInput(const std::string& args, const std::string& needle) {
  CmdResult r = Vitq(args);
  EXPECT_EQ(r.code, 3) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
}

TEST(Cli, InfoJson) {
  CmdResult r = Vitq("info " + RepoPath("models/deit-tiny") + " --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameters"], 5717416);
  EXPECT_EQ(j["architecture"], "deit_tiny_patch16_224");
}

TEST(Cli, PredictNamesTheClass) {
  std::string img = RepoPath("data/imagenet-samples/val/n01514859/n01514859_hen.JPEG");
  CmdResult r =
      Vitq("predict " + RepoPath("models/deit-tiny") + " " + img + " --topk 3 --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["predictions"][0]["class"], 8);
  EXPECT_EQ(j[0]["predictions"][0]["name"], "hen");
  EXPECT_EQ(j[0]["predictions"].size(), 3u);
}

TEST(Cli, PredictBatchesAndStreamsTheSameResults) {
  // Five images in batches of 2 (the last one short) give the same classes and probabilities as
  // one image per batch, in argument order, as one valid JSON array.
  std::vector<std::string> imgs;
  for (const auto& e : fs::recursive_directory_iterator(RepoPath("data/imagenet-samples/val")))
    if (e.path().extension() == ".JPEG") imgs.push_back(e.path().string());
  std::sort(imgs.begin(), imgs.end());
  imgs.resize(std::min<size_t>(imgs.size(), 5));
  ASSERT_GE(imgs.size(), 3u);
  std::string list;
  for (const auto& i : imgs) list += " " + i;
  const std::string base = "predict " + RepoPath("models/deit-tiny") + list + " --topk 2 --json";
  CmdResult a = Vitq(base + " --batch 2", false), b = Vitq(base + " --batch 1", false);
  ASSERT_EQ(a.code, 0) << a.out;
  ASSERT_EQ(b.code, 0) << b.out;
  auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  ASSERT_EQ(ja.size(), imgs.size());
  for (size_t i = 0; i < imgs.size(); ++i) {
    EXPECT_EQ(ja[i]["image"], imgs[i]);
    EXPECT_EQ(ja[i]["predictions"][0]["class"], jb[i]["predictions"][0]["class"]);
    EXPECT_NEAR(ja[i]["predictions"][0]["probability"].get<double>(),
                jb[i]["predictions"][0]["probability"].get<double>(), 1e-4);
  }
  // A bad image after a full batch: exit 3 naming it, and the results so far stay valid JSON.
  TempDir dir;
  WriteText(dir.path("bad.png"), "\x89PNG\r\n\x1a\nbroken");
  CmdResult bad = Vitq("predict " + RepoPath("models/deit-tiny") + " " + imgs[0] + " " + imgs[1] +
                           " " + dir.path("bad.png") + " --batch 2 --json",
                       false);
  EXPECT_EQ(bad.code, 3);
  EXPECT_EQ(nlohmann::json::parse(bad.out).size(), 2u) << bad.out;
  ExpectBadInput("predict " + RepoPath("models/deit-tiny") + " " + imgs[0] + " " +
                     dir.path("bad.png") + " --batch 2",
                 "bad.png");
}

TEST(Cli, InitThenBenchAndEvalWithLimit) {
  TempDir dir;
  CmdResult init = Vitq("init --arch deit_tiny_patch16_224 --out " + dir.path("m") + " --seed 3");
  ASSERT_EQ(init.code, 0) << init.out;
  CmdResult bench =
      Vitq("bench " + dir.path("m") + " --seconds 0.2 --warmup 0 --min-reps 2 --threads 2 --json",
           false);
  ASSERT_EQ(bench.code, 0) << bench.out;
  auto j = nlohmann::json::parse(bench.out);
  // The figures describe one timing: at least --min-reps calls, rate = 1000 / ms per image, and
  // the adaptive thread choice's share is a fraction.
  EXPECT_GE(j["reps"].get<int>(), 2);
  EXPECT_NEAR(j["images_per_second"].get<double>() * j["ms_per_image"].get<double>(), 1000.0,
              1e-6 * 1000.0);
  EXPECT_GE(j["one_thread_share"].get<double>(), 0.0);
  EXPECT_LE(j["one_thread_share"].get<double>(), 1.0);
  // VITQ_TRACE_THREADS=1: one stderr line per forward call with the threads it ran on.
  CmdResult traced = Vitq("bench " + dir.path("m") + " --seconds 0 --warmup 0 --min-reps 3 -q",
                          true, "VITQ_TRACE_THREADS=1 OMP_NUM_THREADS=2");
  ASSERT_EQ(traced.code, 0) << traced.out;
  EXPECT_NE(traced.out.find("vitq: thread choice: call 1: 2 threads, "), std::string::npos)
      << traced.out;
  EXPECT_NE(traced.out.find("vitq: thread choice: call 2: 1 thread, "), std::string::npos)
      << traced.out;
  CmdResult eval =
      Vitq("eval " + RepoPath("models/deit-tiny") + " --data " +
               RepoPath("data/imagenet-samples/val") + " --limit 16 --batch 8 --json -q",
           false);
  ASSERT_EQ(eval.code, 0) << eval.out;
  auto e = nlohmann::json::parse(eval.out);
  EXPECT_EQ(e["images"], 16);
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(Vitq("").code, 2);
  EXPECT_EQ(Vitq("eval").code, 2);
  EXPECT_EQ(Vitq("eval x --data y --batch 0").code, 2);
  EXPECT_EQ(Vitq("frobnicate").code, 2);
  EXPECT_EQ(Vitq("--help").code, 0);
  // Method options that cannot apply: exit 2 naming the option, before any work.
  const std::string q = "quantize " + RepoPath("models/deit-tiny") + " --calib " +
                        RepoPath("data/imagenet-samples/calib") + " --out /tmp/never.vitq ";
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--method liu2021 --no-gptq", "--no-gptq applies to --method vitq only"},
           {"--method minmax --attn-quantizer log-sqrt2", "--attn-quantizer applies"},
           {"--method vitq --no-ranking", "--no-ranking configures"},
           {"--method vitq --grid 50", "--grid configures"},
           {"--method vitq --attn-quantizer log2", "--attn-quantizer 'log2'"},
           {"--method minmax --fc2-input token", "--fc2-input applies to --method vitq only"},
           {"--method vitq --fc2-input channel", "--fc2-input 'channel'"},
           {"--method liu2021 --image-bits 8", "--image-bits applies to --method vitq only"},
           {"--method vitq --image-bits 9", "--image-bits 9"},
           {"--mixed-precision --target-bits 6", "does not support it yet"},
           {"--method liu2021 --reconstruct", "--reconstruct applies to --method vitq only"},
           {"--recon-iters 100", "--recon-iters configures --reconstruct"},
           {"--resume", "--resume configures --reconstruct"},
           {"--reconstruct --recon-iters 0", "--recon-iters 0"},
           {"--reconstruct --recon-drop 1.5", "--recon-drop 1.5"},
           {"--reconstruct --recon-batch 0", "--recon-batch 0"},
           {"--reconstruct --recon-augment 100", "--recon-augment 100"},
           {"--reconstruct --recon-augment 64 --calib-size 1000000", "more than 80%"}}) {
    CmdResult r = Vitq(q + args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << ": " << r.out;
  }
  EXPECT_FALSE(fs::exists("/tmp/never.vitq"));
}

class CliBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Vitq("init --arch deit_tiny_patch16_224 --out " + dir_.path("m")).code, 0);
    weights_ = testing::ReadText(dir_.path("m/model.safetensors"));
  }
  TempDir dir_;
  std::string weights_;
};

TEST_F(CliBadInput, MissingModel) { ExpectBadInput("info " + dir_.path("nope"), "does not exist"); }

TEST_F(CliBadInput, TruncatedCheckpoint) {
  WriteText(dir_.path("m/model.safetensors"), weights_.substr(0, weights_.size() / 2));
  ExpectBadInput("eval " + dir_.path("m") + " --data " + RepoPath("data/imagenet-samples/val"),
                 "outside");
}

TEST_F(CliBadInput, CorruptHeader) {
  std::string bad = weights_;
  bad[20] = '\x01';
  WriteText(dir_.path("m/model.safetensors"), bad);
  ExpectBadInput("info " + dir_.path("m"), "not valid JSON");
}

TEST_F(CliBadInput, EmptyCheckpoint) {
  WriteText(dir_.path("m/model.safetensors"), "");
  ExpectBadInput("info " + dir_.path("m"), "truncated");
}

TEST_F(CliBadInput, UnknownArchitecture) {
  WriteText(dir_.path("m/config.json"), R"({"architecture":"swin_tiny_patch4_window7_224"})");
  ExpectBadInput("info " + dir_.path("m"), "unknown architecture 'swin_tiny_patch4_window7_224'");
  ExpectBadInput("init --arch resnet50 --out " + dir_.path("r"), "unknown architecture 'resnet50'");
  EXPECT_FALSE(fs::exists(dir_.path("r")));
}

TEST_F(CliBadInput, ConfigDisagreesWithTensors) {
  WriteText(dir_.path("m/config.json"), R"({"architecture":"deit_small_patch16_224"})");
  ExpectBadInput("info " + dir_.path("m"), "expected [384, 3, 16, 16]");
}

TEST_F(CliBadInput, DatasetProblems) {
  std::string model = RepoPath("models/deit-tiny");
  fs::create_directories(dir_.path("empty"));
  ExpectBadInput("eval " + model + " --data " + dir_.path("empty"), "no class folders");
  ExpectBadInput("eval " + model + " --data " + dir_.path("missing"), "not a directory");
  fs::create_directories(dir_.path("ds/n01440764"));
  fs::copy_file(RepoPath("tests/data/color.jpg"), dir_.path("ds/n01440764/good.jpg"));
  WriteText(dir_.path("ds/n01440764/bad.jpg"), "this is text");
  WriteText(dir_.path("ds/classes.txt"), "n01440764 tench\n");
  ExpectBadInput("eval " + model + " --data " + dir_.path("ds") + " -q", "bad.jpg");
  CmdResult skip =
      Vitq("eval " + model + " --data " + dir_.path("ds") + " -q --skip-bad-images --json");
  EXPECT_EQ(skip.code, 0) << skip.out;
  EXPECT_NE(skip.out.find("warning: skipped"), std::string::npos);
  EXPECT_NE(skip.out.find("\"skipped\": 1"), std::string::npos) << skip.out;
  fs::create_directories(dir_.path("ds/n99999999"));
  ExpectBadInput("eval " + model + " --data " + dir_.path("ds"),
                 "folder 'n99999999' is not listed");
}

TEST_F(CliBadInput, UnreadableImageForPredict) {
  WriteText(dir_.path("x.png"), "\x89PNG\r\n\x1a\nbroken");
  ExpectBadInput("predict " + RepoPath("models/deit-tiny") + " " + dir_.path("x.png"), "x.png");
}

// A 6-bit .vitq file with a flipped weight bit, or a packed weight of the wrong size (checksum
// recomputed), is bad input: exit 3 naming the file (and the tensor).
TEST(Cli, TamperedPackedWeightsAndChecksumExitThree) {
  TempDir dir_;
  ViTModel m = RandomModel(testing::SmallConfig(), 21);
  QuantPlan plan;
  plan.method = "hand";
  for (const auto& name : QuantSiteNames(m.spec.config))
    plan.sites[name] = {SymmetricScheme(8), {{0.05f}, {0}}};
  for (const auto& [layer, w] : LinearLayers(m)) {
    QuantScheme s = SymmetricScheme(6);
    plan.sites[layer + ":w"] = {s, MinMaxParams(w->weight.f32(), w->weight.size(), s)};
  }
  const std::string good = dir_.path("w6.vitq");
  ASSERT_TRUE(SaveQuantizedFile(good, m, plan).ok());
  ASSERT_EQ(Vitq("info " + good).code, 0);
  auto f = SafetensorsFile::Open(good);
  ASSERT_TRUE(f.ok());
  const SafetensorsFile::Entry* w = f->Find("blocks.1.mlp.fc2.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (Shape{32, 64 * 6 / 8}));  // packed: four 6-bit values in three bytes
  const uint8_t* data_start = w->data;
  for (const auto& e : f->entries()) data_start = std::min(data_start, e.data);
  std::string bytes = testing::ReadText(good);
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  bytes[8 + header + static_cast<size_t>(w->data - data_start) + 7] ^= 0x10;
  WriteText(dir_.path("flipped.vitq"), bytes);
  ExpectBadInput("info " + dir_.path("flipped.vitq"), "flipped.vitq");
  ExpectBadInput("bench " + dir_.path("flipped.vitq") + " --seconds 0.1", "checksum mismatch");
  // The same tensor one byte short per row, the checksum resealed over the edited data.
  std::vector<Tensor> tensors;
  tensors.reserve(f->entries().size());
  std::vector<NamedTensor> list;
  std::vector<std::pair<const uint8_t*, size_t>> ranges;
  for (const auto& e : f->entries()) {
    Shape shape = e.shape;
    if (e.name == "blocks.1.mlp.fc2.weight") shape[1] -= 1;
    tensors.emplace_back(e.dtype, shape);
    std::memcpy(tensors.back().data<uint8_t>(), e.data, tensors.back().num_bytes());
    list.push_back({e.name, &tensors.back()});
    ranges.emplace_back(tensors.back().data<uint8_t>(), tensors.back().num_bytes());
  }
  auto meta = f->metadata();
  meta["vitq.checksum"] = TensorDataChecksum(ranges);
  ASSERT_TRUE(WriteSafetensors(dir_.path("short.vitq"), list, meta).ok());
  ExpectBadInput("info " + dir_.path("short.vitq"), "blocks.1.mlp.fc2.weight");
  ExpectBadInput("eval " + dir_.path("short.vitq") + " --data " +
                     RepoPath("data/imagenet-samples/val") + " --limit 1",
                 "short.vitq");
}

TEST(CliQuantize, MixedPrecisionWritesReportPlotAndRefusesImpossibleBudgets) {
  TempDir dir;
  std::string model = RepoPath("models/deit-tiny"), calib = RepoPath("data/imagenet-samples/calib");
  std::string base = "quantize " + model + " --calib " + calib + " --method minmax --calib-size 2 ";
  CmdResult q = Vitq(base + "--mixed-precision --target-bits 8 --candidates 7,8 --out " +
                         dir.path("mp.vitq") + " --report " + dir.path("mp.json") + " -q --json",
                     false);
  ASSERT_EQ(q.code, 0) << q.out;
  auto j = nlohmann::json::parse(q.out);
  const auto& mp = j["mixed_precision"];
  EXPECT_EQ(mp["modules"].size(), 24u);
  EXPECT_LE(mp["size_bytes"].get<int64_t>(), mp["budget_bytes"].get<int64_t>());
  EXPECT_TRUE(fs::exists(dir.path("mp.pareto.svg")));
  CmdResult info = Vitq("info " + dir.path("mp.vitq") + " --json", false);
  ASSERT_EQ(info.code, 0) << info.out;
  EXPECT_EQ(nlohmann::json::parse(info.out)["layers"][0]["wbits"], 8);  // patch_embed: top
  std::string out = " --out " + dir.path("bad.vitq") + " -q";
  ExpectBadInput(base + "--mixed-precision --target-size-mb 1 --candidates 4,6,8" + out,
                 "below the smallest model");
  ExpectBadInput(base + "--mixed-precision --target-bits 6 --candidates 4,9" + out,
                 "candidate bit-width 9 outside 2-8");
  ExpectBadInput(base + "--target-bits 6" + out, "need --mixed-precision");
  EXPECT_FALSE(fs::exists(dir.path("bad.vitq")));
  ExpectBadInput("compare " + model + " --calib " + calib + " --data " + calib +
                     " --methods minmax --bits 6xp",
                 "is not a bit-width");
}

TEST(CliQuantize, CompareWritesEveryReportAndTakesTheCoarseVariant) {
  TempDir dir;
  std::string model = RepoPath("models/deit-tiny"), calib = RepoPath("data/imagenet-samples/calib");
  std::string base = "compare " + model + " --calib " + calib + " --data " + calib +
                     " --calib-size 2 --limit 4 --bits 8 --methods minmax,easyquant+coarse";
  CmdResult r = Vitq(base + " --report-dir " + dir.path("reports") + " -q --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["rows"].size(), 3u);  // fp32 + two methods
  for (const char* f : {"minmax-W8.json", "easyquant+coarse-W8.json"}) {
    std::ifstream in(dir.path("reports/" + std::string(f)));
    ASSERT_TRUE(in.good()) << f;
    EXPECT_EQ(nlohmann::json::parse(in)["ops"].size(), 74u) << f;
  }
  WriteText(dir.path("file"), "x");
  ExpectBadInput(base + " --report-dir " + dir.path("file/sub") + " -q", "--report-dir");
}

// --reconstruct end to end on the CIFAR-10 ViT: a report row per block, the checkpoint removed
// once the output is written, and the engine equal to its simulation on the result.
TEST(CliQuantize, ReconstructWritesTheModelAndRemovesItsCheckpoint) {
  TempDir dir;
  const std::string model = RepoPath("models/vit-cifar10");
  CmdResult q = Vitq("quantize " + model + " --calib " + RepoPath("data/cifar10/calib") +
                         " --calib-size 8 --wbits 4 --abits 4 --reconstruct --recon-iters 3 "
                         "--recon-batch 4 --out " +
                         dir.path("m.vitq") + " -q --json",
                     false);
  ASSERT_EQ(q.code, 0) << q.out;
  auto j = nlohmann::json::parse(q.out);
  ASSERT_EQ(j["reconstruction"].size(), 6u);
  for (const auto& r : j["reconstruction"]) {
    EXPECT_LE(r["loss_final"].get<double>(), r["loss_init"].get<double>()) << r.dump();
  }
  EXPECT_TRUE(fs::exists(dir.path("m.vitq")));
  EXPECT_FALSE(fs::exists(dir.path("m.vitq.ckpt")));
  CmdResult e =
      Vitq("eval " + dir.path("m.vitq") + " --data " + RepoPath("data/cifar10/calib") +
               " --limit 16 --reference " + dir.path("m.vitq") + " --reference-simulate --json -q",
           false);
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_EQ(nlohmann::json::parse(e.out)["agreement"].get<double>(), 1.0);
}

TEST(CliQuantize, QuantizeEvalAndBadOptions) {
  TempDir dir;
  std::string model = RepoPath("models/deit-tiny"), calib = RepoPath("data/imagenet-samples/calib");
  CmdResult q =
      Vitq("quantize " + model + " --calib " + calib + " --method minmax --calib-size 4 --out " +
               dir.path("m.vitq") + " --report " + dir.path("r.json") + " -q --json",
           false);
  ASSERT_EQ(q.code, 0) << q.out;
  auto j = nlohmann::json::parse(q.out);
  EXPECT_EQ(j["ops"].size(), 74u);
  EXPECT_TRUE(fs::exists(dir.path("r.json")));
  CmdResult e =
      Vitq("eval " + dir.path("m.vitq") + " --data " + RepoPath("data/imagenet-samples/val") +
               " --limit 8 --reference " + model + " --json -q",
           false);
  ASSERT_EQ(e.code, 0) << e.out;
  auto ej = nlohmann::json::parse(e.out);
  EXPECT_EQ(ej["engine"], "int8");
  // The agreement is the share of the 8 images (the dataset's first 8) on which the quantized and
  // the float model predict the same class, as `vitq predict` of each shows.
  auto ds = OpenImageFolder(RepoPath("data/imagenet-samples/val"));
  ASSERT_TRUE(ds.ok());
  std::string list;
  for (int i = 0; i < 8; ++i) list += " " + ds->items[i].path;
  CmdResult pq = Vitq("predict " + dir.path("m.vitq") + list + " --topk 1 --json", false);
  CmdResult pf = Vitq("predict " + model + list + " --topk 1 --json", false);
  ASSERT_EQ(pq.code, 0) << pq.out;
  ASSERT_EQ(pf.code, 0) << pf.out;
  const auto jq = nlohmann::json::parse(pq.out), jf = nlohmann::json::parse(pf.out);
  int same = 0;
  for (int i = 0; i < 8; ++i)
    same += jq[i]["predictions"][0]["class"] == jf[i]["predictions"][0]["class"];
  EXPECT_DOUBLE_EQ(ej["agreement"].get<double>(), same / 8.0);
  CmdResult es = Vitq("eval " + dir.path("m.vitq") + " --data " +
                          RepoPath("data/imagenet-samples/val") + " --limit 8 --simulate --json -q",
                      false);
  ASSERT_EQ(es.code, 0) << es.out;
  EXPECT_EQ(nlohmann::json::parse(es.out)["engine"], "simulated");
  // The engine's float simulation gives the integer engine's logits exactly; the fake-quant path
  // is selectable too, and not together with --simulate.
  CmdResult ex =
      Vitq("eval " + dir.path("m.vitq") + " --data " + RepoPath("data/imagenet-samples/val") +
               " --limit 8 --reference " + dir.path("m.vitq") + " --reference-simulate --json -q",
           false);
  ASSERT_EQ(ex.code, 0) << ex.out;
  auto exj = nlohmann::json::parse(ex.out);
  EXPECT_EQ(exj["engine"], "int8");
  EXPECT_EQ(exj["agreement"], 1.0);
  EXPECT_EQ(exj["kl"], 0.0);
  CmdResult fq =
      Vitq("predict " + dir.path("m.vitq") + " " +
               RepoPath("data/imagenet-samples/val/n01484850/n01484850_great_white_shark.JPEG") +
               " --fake-quant --json -q",
           false);
  ASSERT_EQ(fq.code, 0) << fq.out;
  CmdResult fqb =
      Vitq("bench " + dir.path("m.vitq") + " --fake-quant --seconds 0.1 --warmup 0 --json", false);
  ASSERT_EQ(fqb.code, 0) << fqb.out;
  EXPECT_EQ(nlohmann::json::parse(fqb.out)["engine"], "fake-quant");
  CmdResult both = Vitq("eval " + dir.path("m.vitq") + " --data " +
                        RepoPath("data/imagenet-samples/val") + " --simulate --fake-quant");
  EXPECT_EQ(both.code, 2) << both.out;
  EXPECT_NE(both.out.find("excludes"), std::string::npos) << both.out;
  // --keep-float leaves activation sites float on the fake-quant path only, and names a pattern
  // that matches none.
  const std::string eval8 = "eval " + dir.path("m.vitq") + " --data " +
                            RepoPath("data/imagenet-samples/val") + " --limit 4 ";
  CmdResult kf =
      Vitq(eval8 + "--fake-quant --keep-float mlp.fc2:in,blocks.0.attn.pv:a --json -q", false);
  ASSERT_EQ(kf.code, 0) << kf.out;
  EXPECT_EQ(nlohmann::json::parse(kf.out)["float_activation_sites"], 13);
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--keep-float mlp.fc2:in", "add --fake-quant"},
           {"--simulate --keep-float mlp.fc2:in", "add --fake-quant"},
           {"--fake-quant --keep-float fc3:in", "'fc3:in' matches no activation site"},
           {"--fake-quant --keep-float attn.qkv:w", "cannot be left float"}}) {
    CmdResult r = Vitq(eval8 + args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << ": " << r.out;
  }
  // A plan the integer engine cannot run (an 8-bit grid with a zero point, which does not fit
  // s8): refused by default with the --simulate hint; --simulate then runs it on the fake-quant
  // path.
  {
    auto qf = LoadQuantizedFile(dir.path("m.vitq"));
    ASSERT_TRUE(qf.ok()) << qf.status().message();
    QuantPlan plan = qf->plan;
    SitePlan& pv = plan.sites.at("blocks.1.attn.pv:a");
    ASSERT_EQ(pv.scheme.bits, 8);
    pv.scheme.symmetric = pv.scheme.is_signed = false;
    pv.params.zero_point = {10};
    ASSERT_TRUE(SaveQuantizedFile(dir.path("asym.vitq"), DequantizedModel(*qf), plan).ok());
    const std::string eval_asym = "eval " + dir.path("asym.vitq") + " --data " +
                                  RepoPath("data/imagenet-samples/val") + " --limit 2 --json -q";
    CmdResult refused = Vitq(eval_asym);
    EXPECT_EQ(refused.code, 3) << refused.out;
    EXPECT_NE(refused.out.find("--simulate"), std::string::npos) << refused.out;
    CmdResult fallback = Vitq(eval_asym + " --simulate", false);
    ASSERT_EQ(fallback.code, 0) << fallback.out;
    EXPECT_EQ(nlohmann::json::parse(fallback.out)["engine"], "fake-quant");
  }
  CmdResult b = Vitq("bench " + dir.path("m.vitq") + " --seconds 0.2 --warmup 0 --json", false);
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_EQ(nlohmann::json::parse(b.out)["engine"], "int8");
  CmdResult info = Vitq("info " + dir.path("m.vitq") + " --json", false);
  ASSERT_EQ(info.code, 0) << info.out;
  auto ij = nlohmann::json::parse(info.out);
  EXPECT_EQ(ij["integer_engine"], true);
  EXPECT_EQ(ij["layers"].size(), 50u);
  EXPECT_EQ(ij["layers"][1]["wbits"], 8);
  // W8 file: about a quarter of the fp32 checkpoint.
  const double ratio = static_cast<double>(fs::file_size(dir.path("m.vitq"))) /
                       fs::file_size(RepoPath("models/deit-tiny/model.safetensors"));
  EXPECT_GT(ratio, 0.25);
  EXPECT_LT(ratio, 0.28);
  // An ISA the CPU lacks (or vitq does not know) is refused with the list of what it has, by
  // every command.
  CmdResult isa = Vitq("bench " + dir.path("m.vitq") + " --seconds 0.1", true, "VITQ_ISA=avx9");
  EXPECT_EQ(isa.code, 3) << isa.out;
  EXPECT_NE(isa.out.find("this CPU has"), std::string::npos) << isa.out;
  CmdResult isa_float = Vitq("info " + model, true, "VITQ_ISA=avx9");
  EXPECT_EQ(isa_float.code, 3) << isa_float.out;
  // Below VNNI (vitq's own AVX2 and portable kernels, the f32 softmax) the engine still equals
  // its float simulation on the same ISA.
  for (const std::string isa_name : {"avx2", "sse41"}) {
    const std::string env = "VITQ_ISA=" + isa_name;
    if (Vitq("info " + model, true, env).code != 0) continue;  // this CPU lacks it
    CmdResult low =
        Vitq("eval " + dir.path("m.vitq") + " --data " + RepoPath("data/imagenet-samples/val") +
                 " --limit 4 --reference " + dir.path("m.vitq") + " --reference-simulate --json -q",
             false, env);
    ASSERT_EQ(low.code, 0) << isa_name << ": " << low.out;
    auto lj = nlohmann::json::parse(low.out);
    EXPECT_EQ(lj["agreement"], 1.0) << isa_name;
    EXPECT_EQ(lj["kl"], 0.0) << isa_name;
    EXPECT_EQ(lj["logits_sqnr_db"], 200.0) << isa_name;
  }
  // Bad input: exit 3, nothing written.
  std::string out = " --out " + dir.path("bad.vitq") + " -q";
  ExpectBadInput("quantize " + model + " --calib " + calib + " --method magic" + out,
                 "unknown method 'magic'");
  ExpectBadInput("quantize " + model + " --calib " + calib + " --wbits 9" + out,
                 "--wbits 9: weight bits outside 2-8");
  ExpectBadInput("quantize " + model + " --calib " + calib + " --abits 1" + out,
                 "--abits 1: activation bits outside 2-8");
  ExpectBadInput("quantize " + model + " --calib " + calib + " --calib-size 101" + out,
                 "has 100 images, fewer than --calib-size 101");
  ExpectBadInput("quantize " + model + " --calib " + calib + " --out /nonexistent/dir/x.vitq -q",
                 "does not exist");
  EXPECT_FALSE(fs::exists(dir.path("bad.vitq")));
  // A plan that does not match the model: a DeiT-Tiny .vitq relabelled as 2 blocks.
  std::string bytes = testing::ReadText(dir.path("m.vitq"));
  size_t pos = bytes.find("\\\"depth\\\":12");
  ASSERT_NE(pos, std::string::npos);
  bytes.replace(pos, 12, "\\\"depth\\\": 2");
  WriteText(dir.path("tampered.vitq"), bytes);
  ExpectBadInput(
      "eval " + dir.path("tampered.vitq") + " --data " + RepoPath("data/imagenet-samples/val"),
      "blocks.");
  WriteText(dir.path("trunc.vitq"), bytes.substr(0, bytes.size() / 3));
  ExpectBadInput(
      "eval " + dir.path("trunc.vitq") + " --data " + RepoPath("data/imagenet-samples/val"),
      "trunc.vitq");
}

}  // namespace
}  // namespace vitq
