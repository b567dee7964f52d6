// libFuzzer harness: classes.txt parsing (first word per line, display names, duplicates).
#include <cstdint>
#include <string>

#include "vitq/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  (void)vitq::ParseClassNames(text, "classes.txt", (data[0] & 1) != 0);
  return 0;
}
