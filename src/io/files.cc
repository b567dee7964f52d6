// Reading input files safely: regular files only, size caps (io stage).
#include "vitq/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vitq {
namespace {

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

Status OpenRegularFile(const std::string& path, const std::string& what, int* fd,
                       size_t* num_bytes) {
  *fd = -1;
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
  int f = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f < 0) {
    return Status::InvalidInput(what + " '" + path + "': cannot open: " + std::strerror(errno));
  }
  struct stat st;
  if (fstat(f, &st) != 0) {
    std::string err = std::strerror(errno);
    ::close(f);
    return Status::InvalidInput(what + " '" + path + "': cannot stat: " + err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(f);
    return Status::InvalidInput(what + " '" + path + "' is " + KindOf(st.st_mode) +
                                ", expected a regular file");
  }
  int flags = fcntl(f, F_GETFL);
  if (flags >= 0) fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
  *fd = f;
  *num_bytes = static_cast<size_t>(st.st_size);
  return Status::Ok();
}

Result<std::string> ReadRegularFile(const std::string& path, const std::string& what,
                                    size_t max_bytes) {
  int fd;
  size_t size;
  VITQ_RETURN_IF_ERROR(OpenRegularFile(path, what, &fd, &size));
  if (size > max_bytes) {
    ::close(fd);
    return Status::InvalidInput(what + " '" + path + "' is " + std::to_string(size) +
                                " bytes, more than the " + std::to_string(max_bytes) +
                                " vitq reads");
  }
  std::string data;
  data.resize(size);
  size_t got = 0;
  while (got < size) {  // a file that grows while read is cut at its size when opened
    ssize_t n = ::read(fd, &data[got], size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      return Status::InvalidInput(what + " '" + path + "': read failed: " + err);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  return data;
}

}  // namespace vitq
