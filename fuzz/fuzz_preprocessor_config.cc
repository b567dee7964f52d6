// libFuzzer harness: preprocessor_config.json beside a fixed, valid Hugging Face ViT config, then
// the resulting preprocessing applied to a small image (resize, crop, normalize).
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "vitq/image.h"
#include "vitq/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = vitq::fuzz::ScratchDir() + "/pre";
    mkdir(d.c_str(), 0700);
    vitq::fuzz::WriteFile(d + "/model.safetensors", "");
    vitq::fuzz::WriteFile(d + "/config.json",
                          R"({"model_type": "vit", "architectures": ["ViTForImageClassification"],
                              "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                              "intermediate_size": 64, "image_size": 32, "patch_size": 8,
                              "num_channels": 3, "num_labels": 3})");
    return d;
  }();
  vitq::fuzz::WriteFile(dir + "/preprocessor_config.json", data, size);
  auto spec = vitq::LoadModelSpec(dir);
  if (!spec.ok()) return 0;
  vitq::Image img;
  img.width = 40;
  img.height = 24;
  img.rgb.assign(static_cast<size_t>(img.width) * img.height * 3, 0);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>(i * 7);
  const auto& p = spec->preprocess;
  std::vector<float> out(static_cast<size_t>(3) * p.crop_height * p.crop_width);
  (void)vitq::PreprocessImage(img, p, out.data());
  return 0;
}
