// Shared CLI plumbing: options every subcommand has, error reporting and exit codes (cli).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "vitq/app.h"
#include "vitq/status.h"

namespace vitq::cli {

struct CommonOptions {
  bool json = false;
  bool quiet = false;
  int threads = 0;  // 0: all cores
};

void AddCommonOptions(CLI::App* cmd, CommonOptions* opts, bool with_threads);
// Prints "vitq: error: <message>" on stderr and returns the status' exit code.
int ReportError(const Status& status);
void PrintJson(const nlohmann::ordered_json& j);

// The command line vitq was started with (arguments with spaces or quotes quoted), for reports.
const std::string& CommandLine();
void SetCommandLine(int argc, char** argv);

// Each subcommand registers itself and sets the function run after parsing.
using Runner = std::function<int()>;
void RegisterInfo(CLI::App* app, Runner* run);
void RegisterEval(CLI::App* app, Runner* run);
void RegisterPredict(CLI::App* app, Runner* run);
void RegisterInit(CLI::App* app, Runner* run);
void RegisterBench(CLI::App* app, Runner* run);
void RegisterQuantize(CLI::App* app, Runner* run);
void RegisterCompare(CLI::App* app, Runner* run);
void RegisterReport(CLI::App* app, Runner* run);
void RegisterExport(CLI::App* app, Runner* run);

}  // namespace vitq::cli
