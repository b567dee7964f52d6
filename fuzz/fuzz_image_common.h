// Shared body of the JPEG and PNG harnesses: decode, then the eval preprocessing (io stage).
#pragma once

#include <cstdint>
#include <vector>

#include "vitq/image.h"

namespace vitq::fuzz {

inline void DecodeAndPreprocess(const uint8_t* data, size_t size) {
  auto img = DecodeImage(data, size, "fuzz");
  if (!img.ok()) return;
  PreprocessConfig p;
  p.resize_shorter = 36;
  p.crop_height = p.crop_width = 32;
  std::vector<float> out(3 * 32 * 32);
  (void)PreprocessImage(img.value(), p, out.data());
}

}  // namespace vitq::fuzz
