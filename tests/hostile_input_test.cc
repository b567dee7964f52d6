// Hostile input (issue 12): crafted files, written into a temp dir by the generators below, for
// every failure class: bounds on sizes read from files, strict JSON types, non-finite values,
// safetensors overlaps and overflows, non-regular files, the pixel cap, duplicate classes, safe
// outputs, interrupted writes, and the timings kept out of the embedded plan.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <png.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vitq/dataset.h"
#include "vitq/files.h"
#include "vitq/image.h"
#include "vitq/model.h"
#include "vitq/model_config.h"
#include "vitq/plan.h"
#include "vitq/safetensors.h"

namespace vitq {
namespace {
using nlohmann::json;
using testing::ReadText;
using testing::RepoPath;
using testing::TempDir;
using testing::WriteText;
namespace fs = std::filesystem;

void ExpectError(const Status& s, const std::string& needle) {
  EXPECT_FALSE(s.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput) << s.message();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

// ---- generators ------------------------------------------------------------------------------

// A small timm config (the fields vitq reads), to be altered by each case.
json TimmConfig() {
  return {{"architecture", "vit_test"},
          {"num_classes", 10},
          {"model_args",
           {{"img_size", 32},
            {"patch_size", 8},
            {"embed_dim", 32},
            {"depth", 2},
            {"num_heads", 2},
            {"mlp_ratio", 2.0}}},
          {"pretrained_cfg",
           {{"input_size", {3, 32, 32}}, {"crop_pct", 0.875}, {"interpolation", "bicubic"}}}};
}

json HfConfig() {
  return {{"model_type", "vit"},      {"architectures", {"ViTForImageClassification"}},
          {"hidden_size", 32},        {"num_hidden_layers", 1},
          {"num_attention_heads", 2}, {"intermediate_size", 64},
          {"image_size", 32},         {"patch_size", 8},
          {"num_channels", 3},        {"num_labels", 3}};
}

// A model directory holding config.json (and optionally preprocessor_config.json) beside an
// empty model.safetensors: enough for LoadModelSpec.
std::string ModelDir(const TempDir& dir, const json& config, const json* pre = nullptr) {
  static int n = 0;
  std::string d = dir.path("m" + std::to_string(n++));
  fs::create_directories(d);
  WriteText(d + "/config.json", config.dump());
  WriteText(d + "/model.safetensors", "");
  if (pre != nullptr) WriteText(d + "/preprocessor_config.json", pre->dump());
  return d;
}

// A safetensors file from a raw header and data section.
std::string Safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// The bundled color.jpg with its SOF0 dimensions replaced (a decompression bomb header).
std::string JpegWithSize(int width, int height) {
  std::string jpg = ReadText(RepoPath("tests/data/color.jpg"));
  size_t sof = jpg.find("\xff\xc0");
  EXPECT_NE(sof, std::string::npos);
  jpg[sof + 5] = static_cast<char>(height >> 8);
  jpg[sof + 6] = static_cast<char>(height & 0xff);
  jpg[sof + 7] = static_cast<char>(width >> 8);
  jpg[sof + 8] = static_cast<char>(width & 0xff);
  return jpg;
}

// A valid gray PNG of width x height (all pixels 128), written with libpng.
void WritePng(const std::string& path, int width, int height) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  std::vector<uint8_t> row(width, 128);
  for (int y = 0; y < height; ++y) png_write_row(png, row.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

// ---- configs: bounds before allocation -----------------------------------------------------

TEST(HostileConfig, AbsurdSizesAreRefusedBeforeAllocation) {
  TempDir dir;
  struct Case {
    const char* key;
    json value;
    const char* needle;
  };
  for (const Case& c :
       {Case{"depth", 2147483647, "depth 2147483647 exceeds the limit"},
        Case{"embed_dim", 1 << 20, "embed_dim 1048576 exceeds"},
        Case{"img_size", 1 << 20, "img_size 1048576 exceeds"},
        Case{"in_chans", 4, "in_chans 4 is not supported"}, Case{"depth", 0, "must be positive"},
        Case{"mlp_ratio", 1e9, "mlp_ratio"}}) {
    json cfg = TimmConfig();
    cfg["model_args"][c.key] = c.value;
    if (std::string(c.key) == "in_chans") cfg["pretrained_cfg"]["input_size"] = {4, 32, 32};
    ExpectError(LoadModelSpec(ModelDir(dir, cfg)).status(), c.needle);
  }
  // Parameters: each size within its bound, the product not.
  json cfg = TimmConfig();
  cfg["model_args"]["embed_dim"] = 16384;
  cfg["model_args"]["num_heads"] = 16;
  cfg["model_args"]["depth"] = 256;
  ExpectError(LoadModelSpec(ModelDir(dir, cfg)).status(), "parameters exceed the limit");
}

TEST(HostileConfig, ZeroAndHugeResizeTargetsAreRefused) {
  TempDir dir;
  json cfg = TimmConfig();
  cfg["pretrained_cfg"]["crop_pct"] = 1e-12;  // 32 / 1e-12 overflows an int
  ExpectError(LoadModelSpec(ModelDir(dir, cfg)).status(), "crop_pct");
  for (const json& size : {json{{"height", 0}, {"width", 0}}, json{{"shortest_edge", 1000000000}},
                           json{{"shortest_edge", 0}}}) {
    json pre = {{"size", size}, {"do_center_crop", true}, {"crop_size", 32}};
    ExpectError(LoadModelSpec(ModelDir(dir, HfConfig(), &pre)).status(), "size");
  }
}

TEST(HostileConfig, WrongJsonTypesNameTheKeyAndAreNeverCoerced) {
  TempDir dir;
  struct Case {
    json config;
    const char* needle;
  };
  json depth_float = TimmConfig(), depth_bool = TimmConfig(), args_string = TimmConfig(),
       interp = TimmConfig(), pre_string = TimmConfig();
  depth_float["model_args"]["embed_dim"] = 192.5;
  depth_bool["model_args"]["depth"] = true;
  args_string["model_args"] = "big";
  interp["pretrained_cfg"]["interpolation"] = "lanczos";
  pre_string["pretrained_cfg"] = "x";
  for (const Case& c :
       {Case{depth_float, "key 'model_args.embed_dim' is 192.5, expected an integer"},
        Case{depth_bool, "key 'model_args.depth' is true, expected an integer"},
        Case{args_string, "model_args is not an object"},
        Case{interp, "unsupported interpolation 'lanczos'"},
        Case{pre_string, "key 'pretrained_cfg' is \"x\", expected an object"}}) {
    ExpectError(LoadModelSpec(ModelDir(dir, c.config)).status(), c.needle);
  }
  json hf = HfConfig();
  hf["num_hidden_layers"] = "12";
  ExpectError(LoadModelSpec(ModelDir(dir, hf)).status(), "key 'num_hidden_layers' is \"12\"");
  json pre = {{"size", {{"shortest_edge", "224"}}}};
  ExpectError(LoadModelSpec(ModelDir(dir, HfConfig(), &pre)).status(),
              "key 'size.shortest_edge' is \"224\", expected an integer");
  pre = {{"size", "large"}};
  ExpectError(LoadModelSpec(ModelDir(dir, HfConfig(), &pre)).status(), "is not understood");
  pre = {{"image_std", {0.5, 0, 0.5}}};
  ExpectError(LoadModelSpec(ModelDir(dir, HfConfig(), &pre)).status(), "std[1]");
  json labels = HfConfig();
  labels["id2label"] = {{"0", "a"}, {"1", 7}, {"2", "c"}};
  ExpectError(LoadModelSpec(ModelDir(dir, labels)).status(), "key 'id2label.1' is 7");
}

TEST(HostileConfig, DeeplyNestedJsonIsRefusedAtParse) {
  // dump() in an error message, or a recursive walk, would overflow the stack on 100000 levels.
  TempDir dir;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  json cfg = TimmConfig();
  std::string text = cfg.dump();
  text.insert(text.size() - 1, ", \"deep\": " + deep);
  std::string d = ModelDir(dir, cfg);
  WriteText(d + "/config.json", text);
  ExpectError(LoadModelSpec(d).status(), "nested deeper than 64 levels");
  ExpectError(ModelSpecFromJson(deep, "m.vitq").status(), "nested deeper");
  ExpectError(PlanFromJson("{\"report\": " + deep + "}", "p").status(), "nested deeper");
  WriteText(dir.path("deep.safetensors"), Safetensors("{\"a\": " + deep + "}", ""));
  ExpectError(SafetensorsFile::Open(dir.path("deep.safetensors")).status(), "nested deeper");
}

// ---- .vitq metadata ------------------------------------------------------------------------

json VitqModel() {
  ModelSpec spec;
  spec.config = testing::SmallConfig();
  spec.preprocess.crop_height = spec.preprocess.crop_width = 32;
  spec.preprocess.resize_shorter = 36;
  spec.layout = "timm";
  return json::parse(ModelSpecToJson(spec));
}

TEST(HostileVitq, ModelDescriptionIsCheckedAgainstTheModel) {
  ASSERT_TRUE(ModelSpecFromJson(VitqModel().dump(), "m.vitq").ok());
  struct Case {
    std::function<void(json*)> edit;
    const char* needle;
  };
  for (const Case& c : std::vector<Case>{
           {[](json* j) { (*j)["preprocess"]["crop_height"] = 16; }, "center crop 16x32 differs"},
           {[](json* j) {
              (*j)["class_names"] = {"a", "b"};
            },
            "2 class names for 10 classes"},
           {[](json* j) { (*j)["preprocess"]["resize_shorter"] = 0; }, "resize target 0x0"},
           {[](json* j) { (*j)["preprocess"]["interpolation"] = "lanczos"; },
            "unsupported interpolation 'lanczos'"},
           {[](json* j) { (*j)["img_size"] = 32.5; }, "'vitq.model.img_size' is 32.5"},
           {[](json* j) { (*j)["qkv_bias"] = 1; }, "'vitq.model.qkv_bias' is 1, expected true"},
           {[](json* j) {
              (*j)["preprocess"]["std"] = {1, 0, 1};
            },
            "std[1]"},
           {[](json* j) { (*j)["depth"] = 1 << 30; }, "depth 1073741824 exceeds"}}) {
    json j = VitqModel();
    c.edit(&j);
    ExpectError(ModelSpecFromJson(j.dump(), "m.vitq").status(), c.needle);
  }
}

json Plan() {
  json site = {{"bits", 8}, {"symmetric", true}, {"signed", true},   {"granularity", "per_tensor"},
               {"axis", 0}, {"scale", {0.01}},   {"zero_point", {0}}};
  return {{"format", "vitq.plan"},
          {"version", QuantPlan::kVersion},
          {"method", "minmax"},
          {"provenance", {{"seed", 0}}},
          {"sites", {{"head:w", site}}}};
}

TEST(HostileVitq, PlanTypesAreStrict) {
  ASSERT_TRUE(PlanFromJson(Plan().dump(), "p").ok());
  json bits = Plan(), zp = Plan(), sym = Plan(), big = Plan();
  bits["sites"]["head:w"]["bits"] = 8.5;
  zp["sites"]["head:w"]["zero_point"] = {0.5};
  sym["sites"]["head:w"]["symmetric"] = 1;
  big["sites"]["head:w"]["scale"] = {1e300};  // not finite as float
  ExpectError(PlanFromJson(bits.dump(), "p").status(), "key 'sites.head:w.bits' is 8.5");
  ExpectError(PlanFromJson(zp.dump(), "p").status(), "sites.head:w.zero_point[0]");
  ExpectError(PlanFromJson(sym.dump(), "p").status(), "sites.head:w.symmetric");
  ExpectError(PlanFromJson(big.dump(), "p").status(), "sites.head:w.scale[0]");
}

TEST(HostileVitq, EmbeddedPlanCarriesNoTimings) {
  QuantPlan plan = PlanFromJson(Plan().dump(), "p").value();
  plan.report_json = R"({"seconds": {"total": 3.5}, "ops": [{"name": "x", "seconds": 1.5,
                         "similarity": 0.9}], "table_seconds": 2, "calib_images": 4})";
  json j = json::parse(PlanToJson(plan));
  EXPECT_FALSE(j["report"].contains("seconds"));
  EXPECT_FALSE(j["report"].contains("table_seconds"));
  EXPECT_FALSE(j["report"]["ops"][0].contains("seconds"));
  EXPECT_EQ(j["report"]["ops"][0]["similarity"], 0.9);
  EXPECT_EQ(j["report"]["calib_images"], 4);
}

// ---- safetensors ---------------------------------------------------------------------------

TEST(HostileSafetensors, OverlapsOverflowsAndNonFiniteValuesAreRefused) {
  TempDir dir;
  const std::string eight(8, '\0');
  WriteText(dir.path("overlap.safetensors"),
            Safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        eight));
  ExpectError(SafetensorsFile::Open(dir.path("overlap.safetensors")).status(), "overlap");
  WriteText(dir.path("overflow.safetensors"),
            Safetensors(R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],)"
                        R"("data_offsets":[0,0]}})",
                        ""));
  ExpectError(SafetensorsFile::Open(dir.path("overflow.safetensors")).status(),
              "more elements than any file can hold");
  float nan = std::nanf(""), values[2] = {1.0f, nan};
  WriteText(dir.path("nan.safetensors"),
            Safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                        std::string(reinterpret_cast<char*>(values), 8)));
  auto f = SafetensorsFile::Open(dir.path("nan.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  ExpectError(f->ReadF32("w").status(), "tensor 'w' has a non-finite value");
  const char inf16[2] = {0x00, 0x7c};  // F16 +inf
  WriteText(dir.path("inf.safetensors"),
            Safetensors(R"({"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})",
                        std::string(inf16, 2)));
  f = SafetensorsFile::Open(dir.path("inf.safetensors"));
  ASSERT_TRUE(f.ok());
  ExpectError(f->ReadF32("w").status(), "non-finite");
}

// ---- only regular files --------------------------------------------------------------------

TEST(HostileFiles, FifosDevicesAndDirectoriesAreRefusedWithoutHanging) {
  TempDir dir;
  ASSERT_EQ(mkfifo(dir.path("fifo").c_str(), 0600), 0);
  ExpectError(SafetensorsFile::Open(dir.path("fifo")).status(), "is a FIFO");
  ExpectError(DecodeImageFile(dir.path("fifo")).status(), "is a FIFO");
  ExpectError(ReadClassNames(dir.path("fifo"), false).status(), "is a FIFO");
  ExpectError(DecodeImageFile("/dev/zero").status(), "is a character device");
  ExpectError(SafetensorsFile::Open("/dev/zero").status(), "is a character device");
  ExpectError(DecodeImageFile(dir.path()).status(), "is a directory");
  fs::create_directories(dir.path("m"));
  WriteText(dir.path("m/model.safetensors"), "");
  ASSERT_EQ(mkfifo(dir.path("m/config.json").c_str(), 0600), 0);
  ExpectError(LoadModelSpec(dir.path("m")).status(), "is a FIFO");
}

TEST(HostileFiles, DuplicateClassIsNamed) {
  TempDir dir;
  WriteText(dir.path("classes.txt"), "cat\ndog\nbird\ndog\n");
  ExpectError(ReadClassNames(dir.path("classes.txt"), false).status(),
              "class 'dog' on line 4 is listed twice");
  fs::create_directories(dir.path("ds/cat"));
  WriteText(dir.path("ds/classes.txt"), "cat\ncat extra\n");
  ExpectError(OpenImageFolder(dir.path("ds")).status(), "class 'cat' on line 2");
}

// ---- images: pixel cap, errors (not aborts) inside the parallel loader -----------------------

TEST(HostileImages, DecompressionBombsAreRefusedFromTheHeader) {
  TempDir dir;
  const std::string bomb = JpegWithSize(65500, 65500);
  EXPECT_LT(bomb.size(), 8000u);
  WriteText(dir.path("bomb.jpg"), bomb);
  ExpectError(DecodeImageFile(dir.path("bomb.jpg")).status(), "65500x65500 pixels exceeds");
  // A 200000x1 PNG decodes (small) but its resize to a 256-pixel shorter side would not fit.
  WritePng(dir.path("wide.png"), 200000, 1);
  auto wide = DecodeImageFile(dir.path("wide.png"));
  ASSERT_TRUE(wide.ok()) << wide.status().message();
  PreprocessConfig p;
  std::vector<float> out(3 * 224 * 224);
  ExpectError(PreprocessImage(wide.value(), p, out.data(), "wide.png"), "would be resized");
  // The fuzz_jpeg finding: a corrupt JPEG must be an error (and, under the sanitizers, not leak).
  EXPECT_FALSE(DecodeImageFile(RepoPath("tests/data/fuzz/jpeg-longjmp-leak.jpg")).ok());
}

TEST(HostileImages, ParallelLoaderReportsEveryBadFileAsAnError) {
  TempDir dir;
  fs::create_directories(dir.path("ds/a"));
  WriteText(dir.path("ds/a/bomb.jpg"), JpegWithSize(65500, 65500));
  WritePng(dir.path("ds/a/wide.png"), 200000, 1);
  ASSERT_EQ(mkfifo(dir.path("ds/a/fifo.jpg").c_str(), 0600), 0);
  fs::copy_file(RepoPath("tests/data/color.jpg"), dir.path("ds/a/good.jpg"));
  auto ds = OpenImageFolder(dir.path("ds"));
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  ASSERT_EQ(ds->items.size(), 4u);
  PreprocessConfig p;
  std::vector<float> out(4 * 3 * 224 * 224);
  std::vector<char> ok;
  std::vector<std::string> errors;
  EXPECT_EQ(LoadBatch(ds->items, 0, 4, p, out.data(), &ok, &errors), 3);
  for (size_t i = 0; i < 4; ++i) {
    const bool good = ds->items[i].relative == "a/good.jpg";
    EXPECT_EQ(ok[i] != 0, good) << ds->items[i].relative << ": " << errors[i];
  }
}

// ---- outputs -------------------------------------------------------------------------------

TEST(HostileOutputs, AtomicWriterRefusesDevicesAndCleansUpOnSigterm) {
  ExpectError(WriteFileAtomic("/dev/null", "x"), "not a regular file");
  TempDir dir;
  const std::string out = dir.path("out.bin");
  int sync[2];
  ASSERT_EQ(pipe(sync), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    if (read(sync[0], &c, 1) != 1) _exit(2);
    // The temporary file is a FIFO made by the parent: the write blocks there until SIGTERM.
    Status s = WriteFileAtomic(out, std::string(1 << 20, 'x'));
    _exit(s.ok() ? 0 : 3);
  }
  const std::string tmp = out + ".tmp." + std::to_string(child);
  ASSERT_EQ(mkfifo(tmp.c_str(), 0600), 0);
  int reader = open(tmp.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  ASSERT_EQ(write(sync[1], "g", 1), 1);
  pollfd pfd = {reader, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 20000), 1);  // data arrives: the child is inside the write
  kill(child, SIGTERM);
  int status = 0;
  waitpid(child, &status, 0);
  close(reader);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
  EXPECT_FALSE(fs::exists(tmp)) << "temporary file left behind";
  EXPECT_FALSE(fs::exists(out));
}

// ---- the vitq binary: exit codes, outputs, --json ------------------------------------------

struct CmdResult {
  int code;
  std::string out;
};

CmdResult Vitq(const std::string& args, bool stderr_too = true) {
  std::string cmd = std::string("timeout 120 ") + VITQ_BINARY + " " + args +
                    (stderr_too ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

void ExpectExit3(const std::string& args, const std::string& needle) {
  CmdResult r = Vitq(args);
  EXPECT_EQ(r.code, 3) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
}

class CliHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.path("model");
    ASSERT_TRUE(SaveTimmCheckpoint(RandomModel(testing::SmallConfig(), 3), model_).ok());
  }
  std::string Quantize(const std::string& extra) {
    return "quantize " + model_ + " --calib " + RepoPath("data/cifar10/calib") +
           " --method minmax --calib-size 8 -q " + extra;
  }
  TempDir dir_;
  std::string model_;
};

TEST_F(CliHostile, OutputsThatAreInputsOrDevicesAreRefusedBeforeWork) {
  const std::string weights = model_ + "/model.safetensors";
  const std::string before = ReadText(weights);
  ExpectExit3(Quantize("--out " + weights), "is the input file");
  ExpectExit3(Quantize("--out " + model_ + "/config.json"), "is the input file");
  EXPECT_EQ(ReadText(weights), before);
  ExpectExit3(Quantize("--out " + dir_.path("q.vitq") + " --report " + dir_.path("q.vitq")),
              "is the same file as --out");
  ExpectExit3(Quantize("--out /dev/null"), "is not a regular file");
  ExpectExit3(Quantize("--out " + dir_.path("q.vitq") + " --report " + dir_.path("no/r.json")),
              "--report");
  EXPECT_FALSE(fs::exists(dir_.path("q.vitq")));  // refused before the work, nothing written
}

TEST_F(CliHostile, QuantizedFileIsTheSameBytesWhateverTheThreadCount) {
  const std::string a = dir_.path("a.vitq"), b = dir_.path("b.vitq");
  CmdResult r1 = Vitq(Quantize("--threads 1 --out " + a + " --report " + dir_.path("a.json")));
  ASSERT_EQ(r1.code, 0) << r1.out;
  CmdResult r2 = Vitq(Quantize("--threads 2 --out " + b));
  ASSERT_EQ(r2.code, 0) << r2.out;
  EXPECT_TRUE(ReadText(a) == ReadText(b)) << "the .vitq bytes depend on the thread count";
  // The timings stay in the report file.
  EXPECT_TRUE(json::parse(ReadText(dir_.path("a.json"))).contains("seconds"));
}

TEST_F(CliHostile, BadInputExitsThreeWithAMessage) {
  const std::string deit = RepoPath("models/deit-tiny");
  ASSERT_EQ(mkfifo(dir_.path("fifo.jpg").c_str(), 0600), 0);
  ExpectExit3("predict " + deit + " " + dir_.path("fifo.jpg"), "is a FIFO");
  ExpectExit3("predict " + deit + " " + dir_.path(), "is a directory");
  ExpectExit3("predict " + deit + " /dev/zero", "is a character device");
  ExpectExit3("info " + dir_.path("fifo.jpg"), "neither a directory nor a regular file");
  fs::create_symlink(dir_.path("loop_b"), dir_.path("loop_a"));
  fs::create_symlink(dir_.path("loop_a"), dir_.path("loop_b"));
  ExpectExit3("info " + dir_.path("loop_a"), "symbolic links");
  ExpectExit3("init --arch vit_base_patch16_99999999999 --out " + dir_.path("i"), "exceeds");
  ExpectExit3("init --arch vit_huge_patch1_2048 --out " + dir_.path("i"), "exceed the limit");
  ExpectExit3("init --arch vit_tiny_patch16_224 --out /dev/null", "not a directory");
  fs::create_directories(dir_.path("hf"));
  WriteText(dir_.path("hf/config.json"), HfConfig().dump());
  WriteText(dir_.path("hf/preprocessor_config.json"), R"({"size": {"shortest_edge": "224"}})");
  WriteText(dir_.path("hf/model.safetensors"), "");
  ExpectExit3("info " + dir_.path("hf"), "size.shortest_edge");
}

TEST_F(CliHostile, SkipBadImagesSkipsBombsAndFifos) {
  fs::create_directories(dir_.path("ds/n01440764"));
  const std::string cls = dir_.path("ds/n01440764/");
  WriteText(cls + "bomb.jpg", JpegWithSize(65500, 65500));
  WritePng(cls + "wide.png", 200000, 1);
  ASSERT_EQ(mkfifo((cls + "fifo.jpg").c_str(), 0600), 0);
  fs::copy_file(RepoPath("data/imagenet-samples/val/n01514859/n01514859_hen.JPEG"),
                cls + "good.jpg");
  const std::string eval = "eval " + RepoPath("models/deit-tiny") + " --data " + dir_.path("ds") +
                           " --classes " + RepoPath("models/deit-tiny/classes.txt") + " -q";
  ExpectExit3(eval, "bomb.jpg");
  CmdResult r = Vitq(eval + " --skip-bad-images --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["skipped"], 3);
}

TEST_F(CliHostile, JsonStaysValidWithNonUtf8Names) {
  const std::string name = dir_.path("caf\xe9\xff.jpg");  // Latin-1, not UTF-8
  fs::copy_file(RepoPath("tests/data/color.jpg"), name);
  CmdResult r = Vitq("predict " + RepoPath("models/deit-tiny") + " '" + name + "' --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  json j;
  ASSERT_NO_THROW(j = json::parse(r.out)) << r.out;
  EXPECT_EQ(j.size(), 1u);
}

}  // namespace
}  // namespace vitq
