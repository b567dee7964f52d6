// `vitq report REPORT.json --out R.html`: a quantization report or a compare result as one
// self-contained HTML page (cli).
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "vitq/files.h"
#include "vitq/safetensors.h"

namespace vitq::cli {

void RegisterReport(CLI::App* app, Runner* run) {
  auto* cmd = app->add_subcommand(
      "report", "render a report (vitq quantize --report, vitq compare --json) as an HTML page");
  struct Args {
    std::string report, out;
    CommonOptions common;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("REPORT", args->report, "report JSON file")->required();
  cmd->add_option("--out", args->out, "the HTML file to write (atomically)")->required();
  AddCommonOptions(cmd, &args->common, false);
  cmd->callback([args, run] {
    *run = [args]() -> int {
      Status paths = CheckOutputPaths({{"--out", args->out}}, {args->report});
      if (!paths.ok()) return ReportError(paths);
      auto text = ReadRegularFile(args->report, "report", kMaxTextFileBytes);
      if (!text.ok()) return ReportError(text.status());
      nlohmann::ordered_json j = nlohmann::ordered_json::parse(text.value(), nullptr, false);
      if (j.is_discarded()) {
        return ReportError(Status::InvalidInput("'" + args->report + "': not valid JSON"));
      }
      auto html = ReportHtml(j, std::filesystem::path(args->report).filename().string());
      if (!html.ok()) return ReportError(html.status().WithContext("'" + args->report + "'"));
      Status w = WriteFileAtomic(args->out, html.value());
      if (!w.ok()) return ReportError(w);
      if (args->common.json) {
        PrintJson({{"report", args->report},
                   {"out", args->out},
                   {"bytes", static_cast<int64_t>(html->size())}});
      } else {
        std::printf("wrote %s (%zu bytes)\n", args->out.c_str(), html->size());
      }
      return 0;
    };
  });
}

}  // namespace vitq::cli
