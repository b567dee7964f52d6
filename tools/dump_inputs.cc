// Preprocesses an image folder as a model's config says and writes the float inputs for another
// runtime (tests/onnx_ort_test.sh and bench/onnx_roundtrip.sh feed them to ONNX Runtime):
//   dump_inputs MODEL DIR OUT [LIMIT]  ->  OUT.f32 ([N, C, H, W] float32, little-endian, the
//   dataset's order, the first LIMIT images when given) and OUT.json ([{"image": path,
//   "label": n}, ...] in the same order).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vitq/dataset.h"
#include "vitq/model.h"
#include "vitq/qfile.h"

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: dump_inputs MODEL DIR OUT [LIMIT]\n");
    return 2;
  }
  auto fail = [](const vitq::Status& s) {
    std::fprintf(stderr, "dump_inputs: %s\n", s.message().c_str());
    return 3;
  };
  vitq::PreprocessConfig pre;
  if (vitq::IsQuantizedFile(argv[1])) {
    auto q = vitq::LoadQuantizedFile(argv[1]);
    if (!q.ok()) return fail(q.status());
    pre = q->model.spec.preprocess;
  } else {
    auto spec = vitq::LoadModelSpec(argv[1]);
    if (!spec.ok()) return fail(spec.status());
    pre = spec->preprocess;
  }
  auto ds = vitq::OpenImageFolder(argv[2]);
  if (!ds.ok()) return fail(ds.status());
  if (argc == 5) {
    const size_t limit = std::strtoul(argv[4], nullptr, 10);
    if (limit < ds->items.size()) ds->items.resize(limit);
  }
  const int n = static_cast<int>(ds->items.size());
  const size_t per = static_cast<size_t>(3) * pre.crop_height * pre.crop_width;
  std::vector<float> x(per * n);
  std::vector<char> ok;
  std::vector<std::string> errors;
  if (vitq::LoadBatch(ds->items, 0, n, pre, x.data(), &ok, &errors) > 0) {
    for (int i = 0; i < n; ++i) {
      if (!ok[i]) std::fprintf(stderr, "dump_inputs: %s\n", errors[i].c_str());
    }
    return 3;
  }
  const std::string out = argv[3];
  std::ofstream f(out + ".f32", std::ios::binary);
  f.write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(x.size() * 4));
  nlohmann::json items = nlohmann::json::array();
  for (const vitq::DatasetItem& it : ds->items) {
    items.push_back({{"image", it.path}, {"label", it.label}});
  }
  std::ofstream(out + ".json") << items.dump(1) << "\n";
  if (!f) {
    std::fprintf(stderr, "dump_inputs: cannot write %s.f32\n", out.c_str());
    return 3;
  }
  std::fprintf(stderr, "dump_inputs: %d images, [%d, 3, %d, %d] -> %s.f32\n", n, n, pre.crop_height,
               pre.crop_width, out.c_str());
  return 0;
}
