// Image decoding (JPEG via libjpeg-turbo, PNG via libpng) and the eval preprocessing of timm and
// Hugging Face, reproducing PIL's resampling bit for bit (io stage).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vitq/model_config.h"
#include "vitq/status.h"

namespace vitq {

// The largest image vitq decodes or resizes to, in pixels (Pillow's MAX_IMAGE_PIXELS); checked
// from the header before decoding.
constexpr int64_t kMaxImagePixels = 89478485;

// 8-bit RGB, interleaved, row-major: pixel (x, y) channel c at rgb[(y * width + x) * 3 + c].
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Decodes a JPEG or PNG file to RGB the way PIL's Image.convert("RGB") does: grayscale is
// replicated, alpha is dropped, palettes are expanded, 16-bit samples keep their high byte.
// Truncated, corrupt or non-image files give an error naming the file.
Result<Image> DecodeImageFile(const std::string& path);
Result<Image> DecodeImage(const uint8_t* data, size_t num_bytes, const std::string& name);

// PIL's Image.resize with an antialiasing filter (Pillow's two-pass fixed-point convolution:
// horizontal first, 8-bit intermediate), or nearest neighbour.
Image ResizeLikePil(const Image& src, int width, int height, Interpolation interp);

// The full eval transform: resize, center crop, /255, (x - mean) / std, written as float32
// CHW [3, crop_height, crop_width] to `out`. An image whose resized size would exceed
// kMaxImagePixels (an extreme aspect ratio) is an error naming `name`.
Status PreprocessImage(const Image& image, const PreprocessConfig& config, float* out,
                       const std::string& name = "input");

}  // namespace vitq
