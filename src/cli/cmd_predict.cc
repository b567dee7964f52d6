// `vitq predict MODEL IMAGE...`: top-k classes with probabilities per image (cli).
#include <cmath>
#include <cstdio>

#include "common.h"
#include "load.h"
#include "vitq/image.h"

namespace vitq::cli {

void RegisterPredict(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("predict", "classify images");
  struct Args {
    std::string model;
    std::vector<std::string> images;
    bool simulate = false;
    int topk = 5;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model,
                  "model directory, .safetensors file, or quantized .vitq file")
      ->required();
  cmd->add_flag("--simulate", args->simulate,
                "for a .vitq file: run the fake-quant simulation instead of the integer engine");
  cmd->add_option("IMAGE", args->images, "JPEG or PNG files")->required();
  cmd->add_option("--topk", args->topk, "classes to show per image (default 5)")
      ->check(CLI::Range(1, 100000));
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      ApplyThreads(args->common.threads);
      auto model = OpenRunnable(args->model, args->simulate);
      if (!model.ok()) return ReportError(model.status());
      const ModelSpec& spec = (*model)->spec;
      const int nc = spec.config.num_classes;
      const size_t per_image =
          static_cast<size_t>(3) * spec.preprocess.crop_height * spec.preprocess.crop_width;
      std::vector<float> inputs(per_image * args->images.size());
      for (size_t i = 0; i < args->images.size(); ++i) {
        auto img = DecodeImageFile(args->images[i]);
        if (!img.ok()) return ReportError(img.status());
        PreprocessImage(img.value(), spec.preprocess, inputs.data() + per_image * i);
      }
      std::vector<float> logits(static_cast<size_t>(nc) * args->images.size());
      (*model)->forward(inputs.data(), static_cast<int>(args->images.size()), logits.data());
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (size_t i = 0; i < args->images.size(); ++i) {
        float* l = &logits[i * nc];
        float mx = l[0];
        for (int j = 1; j < nc; ++j) mx = std::max(mx, l[j]);
        double sum = 0;
        for (int j = 0; j < nc; ++j) sum += std::exp(static_cast<double>(l[j] - mx));
        auto top = TopK(l, nc, args->topk);
        nlohmann::ordered_json preds = nlohmann::ordered_json::array();
        if (!args->common.json) std::printf("%s\n", args->images[i].c_str());
        for (int c : top) {
          double prob = std::exp(static_cast<double>(l[c] - mx)) / sum;
          std::string name = spec.class_names.empty() ? "" : spec.class_names[c];
          preds.push_back({{"class", c}, {"name", name}, {"probability", prob}});
          if (!args->common.json) std::printf("  %5d  %6.2f%%  %s\n", c, 100 * prob, name.c_str());
        }
        out.push_back({{"image", args->images[i]}, {"predictions", preds}});
      }
      if (args->common.json) PrintJson(out);
      return 0;
    };
  });
}

}  // namespace vitq::cli
