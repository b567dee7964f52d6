// libFuzzer harness: PNG decoding (libpng through vitq's error handling, palette, 16-bit, alpha,
// interlace, pixel cap), then preprocessing. Inputs without the PNG signature get it prepended.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_image_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uint8_t kMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 8 && std::memcmp(data, kMagic, 8) == 0) {
    vitq::fuzz::DecodeAndPreprocess(data, size);
    return 0;
  }
  std::vector<uint8_t> buf(kMagic, kMagic + 8);
  buf.insert(buf.end(), data, data + size);
  vitq::fuzz::DecodeAndPreprocess(buf.data(), buf.size());
  return 0;
}
