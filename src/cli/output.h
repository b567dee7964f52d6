// Output paths checked before any work starts (cli): an output must not be one of the command's
// inputs or another of its outputs, nor an existing file that is not a regular file, and its
// folder must exist.
#pragma once

#include <string>
#include <vector>

#include "vitq/status.h"

namespace vitq::cli {

struct OutputPath {
  std::string option;  // names the path in messages, e.g. "--out"
  std::string path;
};

// The files a MODEL argument reads: for a directory its config.json, model.safetensors,
// preprocessor_config.json and classes.txt; for a file, the file and those beside it.
std::vector<std::string> ModelInputFiles(const std::string& model);

// Checks every output against `inputs` (the same file by inode), against the other outputs (the
// same path), and on its own (parent directory exists; an existing path is a regular file).
// Errors (InvalidInput) name the option and both paths.
Status CheckOutputPaths(const std::vector<OutputPath>& outputs,
                        const std::vector<std::string>& inputs);

}  // namespace vitq::cli
