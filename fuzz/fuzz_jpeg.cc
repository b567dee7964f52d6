// libFuzzer harness: JPEG decoding (libjpeg-turbo through vitq's error handling, CMYK, pixel
// cap), then preprocessing. Inputs without the JPEG magic get it prepended.
#include <cstdint>
#include <vector>

#include "fuzz_image_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    vitq::fuzz::DecodeAndPreprocess(data, size);
    return 0;
  }
  std::vector<uint8_t> buf = {0xFF, 0xD8, 0xFF};
  buf.insert(buf.end(), data, data + size);
  vitq::fuzz::DecodeAndPreprocess(buf.data(), buf.size());
  return 0;
}
