// Reading input files safely (io stage): only regular files are read (a FIFO, device, socket or
// directory is refused with a message instead of hanging or reading without end), with a size cap.
#pragma once

#include <cstddef>
#include <string>

#include "vitq/status.h"

namespace vitq {

// Opens `path` for reading without blocking (a FIFO never hangs the open) and checks that it is a
// regular file. Returns the descriptor in *fd (blocking mode restored; the caller closes it) and
// its size in *num_bytes. `what` names the file's role in messages ("image", "config").
Status OpenRegularFile(const std::string& path, const std::string& what, int* fd,
                       size_t* num_bytes);

// The whole content of the regular file `path`, refused when larger than `max_bytes`.
Result<std::string> ReadRegularFile(const std::string& path, const std::string& what,
                                    size_t max_bytes);

// Caps on what vitq reads into memory whole (configs, class lists, images).
constexpr size_t kMaxTextFileBytes = size_t{64} << 20;
constexpr size_t kMaxImageFileBytes = size_t{256} << 20;

}  // namespace vitq
