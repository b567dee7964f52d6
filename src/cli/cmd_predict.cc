// `vitq predict MODEL IMAGE...`: top-k classes with probabilities per image (cli).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common.h"
#include "quant_path.h"
#include "vitq/dist.h"
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
      if (Status st = dist::Agree(model.status()); !st.ok()) return ReportError(st);
      const ModelSpec& spec = (*model)->spec;
      const int nc = spec.config.num_classes;
      const size_t per_image =
          static_cast<size_t>(3) * spec.preprocess.crop_height * spec.preprocess.crop_width;
      const int n = static_cast<int>(args->images.size());
      const int batch = std::min(args->batch, n);
      const bool json = args->common.json;
      // One image's result: its text block, or its JSON object.
      auto format = [&](const std::string& path, const float* l) {
        float mx = l[0];
        for (int j = 1; j < nc; ++j) mx = std::max(mx, l[j]);
        double sum = 0;
        for (int j = 0; j < nc; ++j) sum += std::exp(static_cast<double>(l[j] - mx));
        nlohmann::ordered_json preds = nlohmann::ordered_json::array();
        std::string text = path + "\n";
        for (int c : TopK(l, nc, args->topk)) {
          const double prob = std::exp(static_cast<double>(l[c] - mx)) / sum;
          const std::string name = spec.class_names.empty() ? "" : spec.class_names[c];
          if (json) {
            preds.push_back({{"class", c}, {"name", name}, {"probability", prob}});
          } else {
            char line[64];
            std::snprintf(line, sizeof line, "  %5d  %6.2f%%  ", c, 100 * prob);
            text += line + name + "\n";
          }
        }
        if (!json) return text;
        nlohmann::ordered_json one = {{"image", path}, {"predictions", preds}};
        return DumpJson(one);
      };
      // Batch by batch, each image's result printed as soon as its batch is done, so memory stays
      // at one batch whatever the number of images. With --json the array is streamed, and closed
      // even when a bad image stops the run (exit 3; the message names the image). In an MPI job
      // the processes take consecutive batches of a round and rank 0 prints the round in order.
      std::vector<float> inputs(per_image * batch), logits(static_cast<size_t>(nc) * batch);
      // The bar goes to stderr; hidden when the results themselves scroll on the terminal.
      ProgressBar bar("predict", n, "img/s", args->common.quiet || isatty(STDOUT_FILENO));
      if (json) std::printf("[");
      bool first = true;
      const int ranks = dist::Size();
      for (int round = 0; round < n; round += batch * ranks) {
        const int s = round + dist::Rank() * batch;
        const int nb = std::max(0, std::min(batch, n - s));
        Status st;
        std::vector<std::string> out;
        for (int i = 0; i < nb && st.ok(); ++i) {
          auto img = DecodeImageFile(args->images[s + i]);
          st = img.ok() ? PreprocessImage(img.value(), spec.preprocess,
                                          inputs.data() + per_image * i, args->images[s + i])
                        : img.status();
        }
        if (st.ok() && nb > 0) {
          (*model)->forward(inputs.data(), nb, logits.data());
          for (int i = 0; i < nb; ++i)
            out.push_back(format(args->images[s + i], &logits[static_cast<size_t>(i) * nc]));
        }
        dist::Writer w;
        dist::PutStatus(&w, st);
        w.Pod<uint64_t>(out.size());
        for (const auto& o : out) w.Str(o);
        Status failed;
        for (const std::string& bytes : dist::AllGather(w.bytes())) {
          dist::Reader r(bytes);
          Status part = dist::GetStatus(&r);
          const auto count = r.Pod<uint64_t>();
          for (uint64_t i = 0; i < count && failed.ok(); ++i) {
            const std::string one = r.Str();
            if (json) {
              std::printf("%s\n%s", first ? "" : ",", one.c_str());
            } else {
              std::printf("%s", one.c_str());
            }
            first = false;
          }
          if (failed.ok() && !part.ok()) failed = part;  // the first bad image in input order
        }
        if (!failed.ok()) {
          if (json) std::printf("%s]\n", first ? "" : "\n");
          std::fflush(stdout);
          bar.Finish();
          return ReportError(dist::Agree(failed));
        }
        std::fflush(stdout);
        bar.Add(std::min(batch * ranks, n - round));
      }
      bar.Finish();
      if (json) std::printf("\n]\n");
      return 0;
    };
  });
}

}  // namespace vitq::cli
