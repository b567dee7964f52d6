// libFuzzer harness: the safetensors reader (header JSON, dtypes, shapes, offsets) and reading
// every tensor it accepts as float32 and exactly.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "vitq/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = vitq::fuzz::ScratchDir() + "/model.safetensors";
  vitq::fuzz::WriteFile(path, data, size);
  auto file = vitq::SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  for (const auto& e : file->entries()) {
    (void)file->ReadF32(e.name);
    (void)file->ReadExact(e.name, e.dtype, e.shape);
  }
  return 0;
}
