// Output path checks shared by the commands that write files (app).
#include <sys/stat.h>

#include <filesystem>

#include "vitq/app.h"

namespace vitq {
namespace fs = std::filesystem;

std::vector<std::string> ModelInputFiles(const std::string& model) {
  std::error_code ec;
  fs::path dir = model;
  std::vector<std::string> files;
  if (!fs::is_directory(model, ec)) {
    files.push_back(model);
    dir = fs::path(model).parent_path();
    if (dir.empty()) dir = ".";
  }
  for (const char* name :
       {"config.json", "model.safetensors", "preprocessor_config.json", "classes.txt"}) {
    files.push_back((dir / name).string());
  }
  return files;
}

Status CheckOutputPaths(const std::vector<OutputPath>& outputs,
                        const std::vector<std::string>& inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputPath& o = outputs[i];
    if (o.path.empty()) continue;
    std::error_code ec;
    const fs::path parent = fs::path(o.path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
      return Status::InvalidInput(o.option + " '" + o.path + "': the directory '" +
                                  parent.string() + "' does not exist");
    }
    struct stat out_st;
    const bool exists = ::stat(o.path.c_str(), &out_st) == 0;
    if (exists && !S_ISREG(out_st.st_mode)) {
      return Status::InvalidInput(o.option + " '" + o.path +
                                  "' exists and is not a regular file (a directory, device or "
                                  "FIFO); refusing to replace it");
    }
    if (exists) {
      for (const std::string& in : inputs) {
        struct stat in_st;
        if (::stat(in.c_str(), &in_st) == 0 && in_st.st_dev == out_st.st_dev &&
            in_st.st_ino == out_st.st_ino) {
          return Status::InvalidInput(o.option + " '" + o.path + "' is the input file '" + in +
                                      "'; refusing to overwrite an input");
        }
      }
    }
    const fs::path mine = fs::weakly_canonical(o.path, ec);
    for (size_t k = 0; k < i; ++k) {
      const OutputPath& other = outputs[k];
      if (other.path.empty()) continue;
      std::error_code ec2;
      const fs::path theirs = fs::weakly_canonical(other.path, ec2);
      if ((!ec && !ec2 && mine == theirs) || o.path == other.path) {
        return Status::InvalidInput(o.option + " '" + o.path + "' is the same file as " +
                                    other.option + " '" + other.path + "'");
      }
    }
  }
  return Status::Ok();
}

}  // namespace vitq
