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
#include "vitq/dist.h"
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
  // An error all ranks of an MPI job agreed on is printed once, by rank 0; one only this rank
  // saw is printed here (main then ends the job).
  if (vitq::dist::WorldSize() == 1 || vitq::dist::Rank() == 0 || !vitq::dist::FailedTogether())
    std::fprintf(stderr, "vitq: error: %s\n", status.message().c_str());
  return status.exit_code();
}

void PrintJson(const nlohmann::ordered_json& j) { std::printf("%s\n", DumpJson(j).c_str()); }

}  // namespace vitq::cli

namespace {
using vitq::cli::Runner;
// Runs the chosen command, its exceptions turned into messages and exit codes.
int RunCaught(const Runner& run) {
  int rc;
  try {
    rc = run();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "vitq: error: out of memory (try a smaller --batch, fewer --threads or a smaller "
                 "model)\n");
    rc = 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path given by the user that the file system refuses (a symlink loop, a permission).
    std::fprintf(stderr, "vitq: error: %s\n", e.what());
    rc = 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vitq: internal error: %s\n", e.what());
    rc = 1;
  }
  return rc;
}

// Runs the command and, in an MPI job, ends it: every rank together when they agreed on the
// outcome, else (an error only this rank saw, while others may wait for it) MPI_Abort with its
// exit code. `alone`: a command that is not distributed runs on rank 0 (as a 1-process job)
// while the other processes wait for its exit code.
int RunAndFinish(const Runner& run, bool alone) {
  int rc;
  if (alone && vitq::dist::WorldSize() > 1) {
    if (vitq::dist::IsRoot()) {
      vitq::dist::Solo solo;
      rc = RunCaught(run);
    } else {
      rc = 0;
    }
    // Rank 0 has printed its error; the agreed status carries only the exit code.
    vitq::Status code = rc == 0   ? vitq::Status::Ok()
                        : rc == 2 ? vitq::Status::Usage("")
                        : rc == 3 ? vitq::Status::InvalidInput("")
                                  : vitq::Status::Internal("");
    rc = vitq::dist::Agree(code).exit_code();
  } else {
    rc = RunCaught(run);
  }
  if (vitq::dist::WorldSize() > 1 && rc != 0 && !vitq::dist::FailedTogether()) {
    std::fflush(stdout);
    std::fflush(stderr);
    vitq::dist::Abort(rc);
  }
  std::fflush(stdout);
  vitq::dist::Finalize();
  return rc;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace vitq::cli;
  // Under mpirun: MPI first; ranks other than 0 print nothing on stdout (rank 0 prints the job's
  // results), their errors still reach stderr.
  if (vitq::Status mpi = vitq::dist::Init(&argc, &argv); !mpi.ok()) return ReportError(mpi);
  if (vitq::dist::Rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr) return 1;
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
    int rc = app.exit(e);
    vitq::dist::Finalize();
    return rc;
  } catch (const CLI::CallForAllHelp& e) {
    int rc = app.exit(e);
    vitq::dist::Finalize();
    return rc;
  } catch (const CLI::CallForVersion& e) {
    int rc = app.exit(e);
    vitq::dist::Finalize();
    return rc;
  } catch (const CLI::ParseError& e) {
    // Every rank parses the same command line: all exit here together.
    if (vitq::dist::Rank() == 0) app.exit(e);
    vitq::dist::Finalize();
    return 2;
  }
  // VITQ_ISA caps the kernels of every command (the engines, the search's int8 matmuls).
  // eval, predict, quantize and compare split their images over the processes of an MPI job
  // (docs/SCALING.md); the other commands run on rank 0.
  const std::string name = app.get_subcommands().front()->get_name();
  const bool distributed =
      name == "eval" || name == "predict" || name == "quantize" || name == "compare";
  return RunAndFinish(
      [&]() -> int {
        vitq::Status isa = vitq::ConfigureIsa();
        if (distributed) isa = vitq::dist::Agree(isa);
        if (!isa.ok()) return ReportError(isa);
        return run();
      },
      !distributed);
}
