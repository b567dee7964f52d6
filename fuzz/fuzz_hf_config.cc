// libFuzzer harness: a Hugging Face config.json and preprocessor_config.json (the input split at
// its first NUL byte) parsed into a ModelSpec through LoadModelSpec.
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "vitq/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = vitq::fuzz::ScratchDir() + "/hf";
    mkdir(d.c_str(), 0700);
    vitq::fuzz::WriteFile(d + "/model.safetensors", "");
    return d;
  }();
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t config_size = nul != nullptr ? static_cast<size_t>(nul - data) : size;
  vitq::fuzz::WriteFile(dir + "/config.json", data, config_size);
  const std::string pre = dir + "/preprocessor_config.json";
  if (nul != nullptr) {
    vitq::fuzz::WriteFile(pre, nul + 1, size - config_size - 1);
  } else {
    unlink(pre.c_str());
  }
  auto spec = vitq::LoadModelSpec(dir);
  if (spec.ok()) (void)vitq::ModelSpecToJson(spec.value());
  return 0;
}
