// libFuzzer harness: a timm hub config.json (architecture, model_args, pretrained_cfg) parsed
// into a ModelSpec through LoadModelSpec, as `vitq info MODEL` does.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "vitq/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = vitq::fuzz::ScratchDir() + "/timm";
    mkdir(d.c_str(), 0700);
    vitq::fuzz::WriteFile(d + "/model.safetensors", "");
    return d;
  }();
  vitq::fuzz::WriteFile(dir + "/config.json", data, size);
  auto spec = vitq::LoadModelSpec(dir);
  if (spec.ok()) (void)vitq::ModelSpecToJson(spec.value());
  return 0;
}
