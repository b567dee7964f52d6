// `vitq init --arch NAME --out DIR`: a random-weight timm checkpoint for benchmarks (cli).
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "vitq/model.h"

namespace vitq::cli {

void RegisterInit(CLI::App* app, Runner* run) {
  auto* cmd =
      app->add_subcommand("init", "write a random-weight checkpoint (timm layout) for benchmarks");
  struct Args {
    std::string arch, out;
    uint64_t seed = 0;
    int num_classes = 1000;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--arch", args->arch, "timm architecture name, e.g. deit_small_patch16_224")
      ->required();
  cmd->add_option("--out", args->out, "output directory (created)")->required();
  cmd->add_option("--seed", args->seed, "random seed (default 0)");
  cmd->add_option("--num-classes", args->num_classes, "classes (default 1000)")
      ->check(CLI::Range(1, 1 << 20));
  AddCommonOptions(cmd, &args->common, false);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      auto config = ConfigFromTimmName(args->arch);
      if (!config.ok()) return ReportError(config.status());
      config->num_classes = args->num_classes;
      if (Status v = config->Validate("--arch " + args->arch); !v.ok()) return ReportError(v);
      // The directory is created; an existing file or device in its place is refused, as are
      // non-regular files where the checkpoint's two files go.
      std::error_code ec;
      if (std::filesystem::exists(args->out, ec) && !std::filesystem::is_directory(args->out, ec)) {
        return ReportError(
            Status::InvalidInput("--out '" + args->out + "' exists and is not a directory"));
      }
      const std::string dir = args->out;
      Status paths =
          CheckOutputPaths({{"--out", (std::filesystem::path(dir) / "model.safetensors").string()},
                            {"--out", (std::filesystem::path(dir) / "config.json").string()}},
                           {});
      if (!paths.ok() && std::filesystem::is_directory(dir, ec)) return ReportError(paths);
      ViTModel model = RandomModel(config.value(), args->seed);
      Status s = SaveTimmCheckpoint(model, args->out);
      if (!s.ok()) return ReportError(s);
      if (args->common.json) {
        PrintJson({{"out", args->out},
                   {"architecture", args->arch},
                   {"parameters", model.NumParams()},
                   {"seed", args->seed}});
      } else {
        std::printf("wrote %s (%s, %lld parameters, seed %llu)\n", args->out.c_str(),
                    args->arch.c_str(), static_cast<long long>(model.NumParams()),
                    static_cast<unsigned long long>(args->seed));
      }
      return 0;
    };
  });
}

}  // namespace vitq::cli
