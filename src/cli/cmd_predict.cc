// `vitq predict MODEL IMAGE...`: top-k classes with probabilities per image (cli).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common.h"
#include "quant_path.h"
#include "vitq/image.h"
#include "vitq/progress.h"

namespace vitq::cli {

void RegisterPredict(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand("predict", "classify images");
  struct Args {
    std::string model;
    std::vector<std::string> images;
    QuantPathFlags qpath;
    int topk = 5;
    int batch = 32;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("MODEL", args->model,
                  "model directory, .safetensors file, or quantized .vitq file")
      ->required();
  AddQuantPathFlags(cmd, &args->qpath, "", "for a .vitq file");
  cmd->add_option("IMAGE", args->images, "JPEG or PNG files")->required();
  cmd->add_option("--topk", args->topk, "classes to show per image (default 5)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--batch", args->batch, "images per forward pass (default 32)")
      ->check(CLI::Range(1, 4096));
  AddCommonOptions(cmd, &args->common, true);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      ApplyThreads(args->common.threads);
      auto model = OpenRunnable(args->model, args->qpath.path());
      if (!model.ok()) return ReportError(model.status());
      const ModelSpec& spec = (*model)->spec;
      const int nc = spec.config.num_classes;
      const size_t per_image =
          static_cast<size_t>(3) * spec.preprocess.crop_height * spec.preprocess.crop_width;
      const int n = static_cast<int>(args->images.size());
      const int batch = std::min(args->batch, n);
      // Batch by batch, each image's result printed as soon as its batch is done, so memory stays
      // at one batch whatever the number of images. With --json the array is streamed, and closed
      // even when a bad image stops the run (exit 3; the message names the image).
      std::vector<float> inputs(per_image * batch), logits(static_cast<size_t>(nc) * batch);
      // The bar goes to stderr; hidden when the results themselves scroll on the terminal.
      ProgressBar bar("predict", n, "img/s", args->common.quiet || isatty(STDOUT_FILENO));
      if (args->common.json) std::printf("[");
      bool first = true;
      for (int s = 0; s < n; s += batch) {
        const int nb = std::min(batch, n - s);
        for (int i = 0; i < nb; ++i) {
          auto img = DecodeImageFile(args->images[s + i]);
          Status st = img.ok() ? PreprocessImage(img.value(), spec.preprocess,
                                                 inputs.data() + per_image * i, args->images[s + i])
                               : img.status();
          if (!st.ok()) {
            if (args->common.json) std::printf("%s]\n", first ? "" : "\n");
            std::fflush(stdout);
            bar.Finish();
            return ReportError(st);
          }
        }
        (*model)->forward(inputs.data(), nb, logits.data());
        for (int i = 0; i < nb; ++i) {
          const std::string& path = args->images[s + i];
          const float* l = &logits[static_cast<size_t>(i) * nc];
          float mx = l[0];
          for (int j = 1; j < nc; ++j) mx = std::max(mx, l[j]);
          double sum = 0;
          for (int j = 0; j < nc; ++j) sum += std::exp(static_cast<double>(l[j] - mx));
          nlohmann::ordered_json preds = nlohmann::ordered_json::array();
          if (!args->common.json) std::printf("%s\n", path.c_str());
          for (int c : TopK(l, nc, args->topk)) {
            const double prob = std::exp(static_cast<double>(l[c] - mx)) / sum;
            const std::string name = spec.class_names.empty() ? "" : spec.class_names[c];
            if (args->common.json)
              preds.push_back({{"class", c}, {"name", name}, {"probability", prob}});
            else
              std::printf("  %5d  %6.2f%%  %s\n", c, 100 * prob, name.c_str());
          }
          if (args->common.json) {
            nlohmann::ordered_json one = {{"image", path}, {"predictions", preds}};
            std::printf("%s\n%s", first ? "" : ",", DumpJson(one).c_str());
            first = false;
          }
        }
        std::fflush(stdout);
        bar.Add(nb);
      }
      bar.Finish();
      if (args->common.json) std::printf("\n]\n");
      return 0;
    };
  });
}

}  // namespace vitq::cli
