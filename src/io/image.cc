// JPEG/PNG decoding and PIL-exact eval preprocessing (io stage).
// The resampling follows Pillow's libImaging/Resample.c (precompute_coeffs, 22-bit fixed-point
// coefficients, horizontal pass then vertical pass through an 8-bit image), so that vitq's
// inputs equal those of timm/torchvision and transformers, which both resize with PIL.
#include "vitq/image.h"

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "vitq/files.h"

namespace vitq {
namespace {

// ---- JPEG ----------------------------------------------------------------------------------

struct JpegErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated = false;
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  // PIL refuses truncated JPEGs ("image file is truncated"); libjpeg only warns and pads.
  if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = true;
}

Result<Image> DecodeJpeg(const uint8_t* data, size_t size, const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = JpegErrorExit;
  err.pub.emit_message = JpegEmitMessage;
  // Every C++ object lives above setjmp: a longjmp back to it must not skip a destructor (found
  // by the fuzz_jpeg harness as a leak of the row buffer).
  Image img;
  std::vector<uint8_t> row;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return Status::InvalidInput("image '" + name + "': corrupt JPEG (" + err.message + ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  // The pixel cap, from the header, before the decoder allocates anything for the image.
  if (cinfo.image_width == 0 || cinfo.image_height == 0 ||
      static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height >
          static_cast<uint64_t>(kMaxImagePixels)) {
    const std::string dims =
        std::to_string(cinfo.image_width) + "x" + std::to_string(cinfo.image_height);
    jpeg_destroy_decompress(&cinfo);
    return Status::InvalidInput("image '" + name + "': JPEG of " + dims +
                                " pixels exceeds the limit of " + std::to_string(kMaxImagePixels) +
                                " pixels");
  }
  bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  img.width = static_cast<int>(cinfo.output_width);
  img.height = static_cast<int>(cinfo.output_height);
  int comps = cinfo.output_components;
  row.resize(static_cast<size_t>(img.width) * comps);
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  bool adobe_inverted = cinfo.saw_Adobe_marker;
  while (cinfo.output_scanline < cinfo.output_height) {
    int y = static_cast<int>(cinfo.output_scanline);
    JSAMPROW rows[1] = {row.data()};
    jpeg_read_scanlines(&cinfo, rows, 1);
    if (err.truncated) break;  // the rest would be padding; refused below
    uint8_t* dst = &img.rgb[static_cast<size_t>(y) * img.width * 3];
    if (!cmyk) {
      std::memcpy(dst, row.data(), static_cast<size_t>(img.width) * 3);
      continue;
    }
    for (int x = 0; x < img.width; ++x) {  // Pillow's cmyk2rgb on (possibly inverted) CMYK
      int v[4];
      for (int c = 0; c < 4; ++c) {
        v[c] = row[x * 4 + c];
        if (adobe_inverted) v[c] = 255 - v[c];
      }
      int nk = 255 - v[3];
      for (int c = 0; c < 3; ++c) {
        int t = v[c] * nk + 128;
        int mul = ((t >> 8) + t) >> 8;
        dst[x * 3 + c] = static_cast<uint8_t>(std::clamp(nk - mul, 0, 255));
      }
    }
  }
  if (!err.truncated) jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (err.truncated) {
    return Status::InvalidInput("image '" + name +
                                "': truncated JPEG (data ends before the image)");
  }
  return img;
}

// ---- PNG -----------------------------------------------------------------------------------

struct PngReader {
  const uint8_t* data;
  size_t size, pos;
};

void PngRead(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (r->pos + n > r->size) png_error(png, "unexpected end of file (truncated)");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

void PngError(png_structp png, png_const_charp msg) {
  auto* buf = static_cast<std::string*>(png_get_error_ptr(png));
  *buf = msg;
  png_longjmp(png, 1);
}

void PngWarning(png_structp, png_const_charp) {}

Result<Image> DecodePng(const uint8_t* data, size_t size, const std::string& name) {
  std::string error;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, PngError, PngWarning);
  if (png == nullptr) return Status::Internal("png_create_read_struct failed");
  png_infop info = png_create_info_struct(png);
  PngReader reader{data, size, 0};
  Image img;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return Status::InvalidInput("image '" + name + "': corrupt PNG (" + error + ")");
  }
  png_set_read_fn(png, &reader, PngRead);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (w == 0 || h == 0 || static_cast<uint64_t>(w) * h > static_cast<uint64_t>(kMaxImagePixels)) {
    error = "PNG of " + std::to_string(w) + "x" + std::to_string(h) +
            " pixels exceeds the limit of " + std::to_string(kMaxImagePixels) + " pixels";
    png_destroy_read_struct(&png, &info, nullptr);
    return Status::InvalidInput("image '" + name + "': " + error);
  }
  png_set_expand(png);  // palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != static_cast<size_t>(w) * 3)
    png_error(png, "unexpected row layout");
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = &img.rgb[static_cast<size_t>(y) * w * 3];
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return img;
}

// ---- Pillow resampling -----------------------------------------------------------------------

constexpr int kPrecisionBits = 32 - 8 - 2;

double BicubicFilter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double BilinearFilter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Coefficients of one pass, as Pillow's precompute_coeffs + normalize_coeffs_8bpc.
struct Coeffs {
  int ksize;
  std::vector<int> bounds;  // per output pixel: xmin, count
  std::vector<int32_t> k;   // per output pixel: ksize fixed-point weights
};

Coeffs PrecomputeCoeffs(int in_size, int out_size, Interpolation interp) {
  double support0 = interp == Interpolation::kBicubic ? 2.0 : 1.0;
  double (*filter)(double) = interp == Interpolation::kBicubic ? BicubicFilter : BilinearFilter;
  double scale = static_cast<double>(in_size) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = support0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(out_size * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      w[x] = filter((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<size_t>(xx) * c.ksize + x] = static_cast<int32_t>(
          v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

inline uint8_t Clip8(int32_t in) {
  int32_t v = in >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

Image ResizeNearest(const Image& src, int width, int height) {
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    int sy = std::min(src.height - 1, static_cast<int>((y + 0.5) * src.height / height));
    for (int x = 0; x < width; ++x) {
      int sx = std::min(src.width - 1, static_cast<int>((x + 0.5) * src.width / width));
      std::memcpy(&out.rgb[(static_cast<size_t>(y) * width + x) * 3],
                  &src.rgb[(static_cast<size_t>(sy) * src.width + sx) * 3], 3);
    }
  }
  return out;
}

}  // namespace

Result<Image> DecodeImage(const uint8_t* data, size_t size, const std::string& name) {
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    return DecodeJpeg(data, size, name);
  }
  static const uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 8 && std::memcmp(data, kPngMagic, 8) == 0) return DecodePng(data, size, name);
  char magic[32] = "";
  for (size_t i = 0; i < std::min<size_t>(size, 4); ++i) {
    std::snprintf(magic + 3 * i, 4, "%02x ", data[i]);
  }
  return Status::InvalidInput("image '" + name + "': not a JPEG or PNG file (" +
                              std::to_string(size) + " bytes, starting with " +
                              (size ? std::string(magic) : std::string("nothing")) + ")");
}

Result<Image> DecodeImageFile(const std::string& path) {
  VITQ_ASSIGN_OR_RETURN(std::string bytes, ReadRegularFile(path, "image", kMaxImageFileBytes));
  return DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

Image ResizeLikePil(const Image& src, int width, int height, Interpolation interp) {
  if (width == src.width && height == src.height) return src;
  if (interp == Interpolation::kNearest) return ResizeNearest(src, width, height);
  Coeffs horiz = PrecomputeCoeffs(src.width, width, interp);
  Coeffs vert = PrecomputeCoeffs(src.height, height, interp);
  // Horizontal pass over only the source rows the vertical pass reads (as Pillow does).
  const Image* cur = &src;
  Image tmp;
  int ybox_first = 0;
  if (width != src.width) {
    ybox_first = vert.bounds[0];
    int ybox_last = vert.bounds[height * 2 - 2] + vert.bounds[height * 2 - 1];
    if (height == src.height) {
      ybox_first = 0;
      ybox_last = src.height;
    }
    tmp.width = width;
    tmp.height = ybox_last - ybox_first;
    tmp.rgb.resize(static_cast<size_t>(tmp.width) * tmp.height * 3);
    for (int y = 0; y < tmp.height; ++y) {
      const uint8_t* in_row = &src.rgb[static_cast<size_t>(y + ybox_first) * src.width * 3];
      uint8_t* out_row = &tmp.rgb[static_cast<size_t>(y) * width * 3];
      for (int xx = 0; xx < width; ++xx) {
        int xmin = horiz.bounds[xx * 2], xmax = horiz.bounds[xx * 2 + 1];
        const int32_t* k = &horiz.k[static_cast<size_t>(xx) * horiz.ksize];
        int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < xmax; ++x) {
          const uint8_t* p = in_row + (x + xmin) * 3;
          s0 += p[0] * k[x];
          s1 += p[1] * k[x];
          s2 += p[2] * k[x];
        }
        out_row[xx * 3] = Clip8(s0);
        out_row[xx * 3 + 1] = Clip8(s1);
        out_row[xx * 3 + 2] = Clip8(s2);
      }
    }
    cur = &tmp;
  }
  if (height == src.height) return cur == &tmp ? tmp : src;
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (int yy = 0; yy < height; ++yy) {
    int ymin = vert.bounds[yy * 2] - ybox_first, ymax = vert.bounds[yy * 2 + 1];
    const int32_t* k = &vert.k[static_cast<size_t>(yy) * vert.ksize];
    uint8_t* out_row = &out.rgb[static_cast<size_t>(yy) * width * 3];
    for (int x = 0; x < width * 3; ++x) {
      int32_t s = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) {
        s += cur->rgb[(static_cast<size_t>(y + ymin) * width) * 3 + x] * k[y];
      }
      out_row[x] = Clip8(s);
    }
  }
  return out;
}

Status PreprocessImage(const Image& image, const PreprocessConfig& config, float* out,
                       const std::string& name) {
  if (image.width <= 0 || image.height <= 0) {
    return Status::InvalidInput("image '" + name + "' is empty");
  }
  int64_t rw, rh;
  if (config.resize_shorter > 0) {
    const int64_t s = config.resize_shorter;
    if (image.width <= image.height) {
      rw = s;
      rh = s * image.height / image.width;
    } else {
      rh = s;
      rw = s * image.width / image.height;
    }
  } else {
    rw = config.resize_width;
    rh = config.resize_height;
  }
  // A very elongated image (200000x1) would be resized to billions of pixels.
  if (rw <= 0 || rh <= 0 || rw * rh > kMaxImagePixels) {
    return Status::InvalidInput("image '" + name + "' (" + std::to_string(image.width) + "x" +
                                std::to_string(image.height) + ") would be resized to " +
                                std::to_string(rw) + "x" + std::to_string(rh) +
                                " pixels, outside the limit of " + std::to_string(kMaxImagePixels) +
                                " pixels");
  }
  Image resized =
      ResizeLikePil(image, static_cast<int>(rw), static_cast<int>(rh), config.interpolation);
  int ch = config.crop_height, cw = config.crop_width;
  int top, left;
  if (config.crop_offset_round) {  // torchvision: int(round((h - ch) / 2.0)), half to even
    top = static_cast<int>(std::nearbyint((rh - ch) / 2.0));
    left = static_cast<int>(std::nearbyint((rw - cw) / 2.0));
  } else {  // transformers: (h - ch) // 2
    top = static_cast<int>(std::floor((rh - ch) / 2.0));
    left = static_cast<int>(std::floor((rw - cw) / 2.0));
  }
  // Where the crop exceeds the image, torchvision pads with zeros (black).
  for (int c = 0; c < 3; ++c) {
    const float mean = config.mean[c], std = config.std[c];
    float* plane = out + static_cast<size_t>(c) * ch * cw;
    for (int y = 0; y < ch; ++y) {
      int sy = y + top;
      for (int x = 0; x < cw; ++x) {
        int sx = x + left;
        uint8_t v = 0;
        if (sy >= 0 && sy < rh && sx >= 0 && sx < rw) {
          v = resized.rgb[(static_cast<size_t>(sy) * rw + sx) * 3 + c];
        }
        float f = static_cast<float>(v) / 255.0f;
        plane[y * cw + x] = (f - mean) / std;
      }
    }
  }
  return Status::Ok();
}

}  // namespace vitq
