// vitq command-line entry point: subcommand dispatch and exit codes (cli).
// Exit codes: 0 success, 2 usage, 3 bad input, 1 internal error.
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <thread>

#include "common.h"
#include "quant_path.h"
#include "vitq/runtime.h"
#include "vitq/threads.h"

namespace vitq::cli {

void AddCommonOptions(CLI::App* cmd, CommonOptions* opts, bool with_threads) {
  cmd->add_flag("--json", opts->json, "print machine-readable JSON on stdout");
  cmd->add_flag("--quiet,-q", opts->quiet, "no progress bar");
  if (with_threads) {
    cmd->add_option("--threads", opts->threads,
                    "worker threads (default: the CPUs this process may use)")
        ->check(CLI::Range(1, 1024));
  }
}

void AddQuantPathFlags(CLI::App* cmd, QuantPathFlags* flags, const std::string& prefix,
                       const std::string& what) {
  auto* sim = cmd->add_flag(
      "--" + prefix + "simulate", flags->simulate,
      what +
          ": run the integer engine's float simulation (same rounding points, float GEMMs; "
          "bit-identical logits) instead of the integer engine");
  auto* fq = cmd->add_flag("--" + prefix + "fake-quant", flags->fake_quant,
                           what +
                               ": run the quantization methods' fake-quant path (float "
                               "engine, quantize-dequantize at every site) instead");
  sim->excludes(fq);
}

namespace {
std::string& CommandLineStorage() {
  static std::string line;
  return line;
}
}  // namespace

const std::string& CommandLine() { return CommandLineStorage(); }

void SetCommandLine(int argc, char** argv) {
  std::string& line = CommandLineStorage();
  for (int i = 0; i < argc; ++i) {
    std::string a = i == 0 ? "vitq" : argv[i];
    if (a.empty() || a.find_first_of(" \t'\"\\$`") != std::string::npos) {
      std::string q = "'";
      for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      a = q + "'";
    }
    line += (i ? " " : "") + a;
  }
}

int ReportError(const Status& status) {
  std::fprintf(stderr, "vitq: error: %s\n", status.message().c_str());
  return status.exit_code();
}

void PrintJson(const nlohmann::ordered_json& j) { std::printf("%s\n", DumpJson(j).c_str()); }

}  // namespace vitq::cli

int main(int argc, char** argv) {
  using namespace vitq::cli;
  CLI::App app{"vitq: post-training quantization and integer inference for Vision Transformers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("vitq ") + VITQ_VERSION);
  Runner run;
  RegisterInfo(&app, &run);
  RegisterEval(&app, &run);
  RegisterPredict(&app, &run);
  RegisterInit(&app, &run);
  RegisterBench(&app, &run);
  RegisterQuantize(&app, &run);
  RegisterCompare(&app, &run);
  RegisterReport(&app, &run);
  RegisterExport(&app, &run);
  SetCommandLine(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  // VITQ_ISA caps the kernels of every command (the engines, the search's int8 matmuls).
  if (vitq::Status isa = vitq::ConfigureIsa(); !isa.ok()) return ReportError(isa);
  try {
    return run();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "vitq: error: out of memory (try a smaller --batch, fewer --threads or a smaller "
                 "model)\n");
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path given by the user that the file system refuses (a symlink loop, a permission).
    std::fprintf(stderr, "vitq: error: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vitq: internal error: %s\n", e.what());
    return 1;
  }
}
