#include "accel/core/files.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>

#include "accel/core/error.h"

namespace accel::files {

void replace_atomically(const std::string& path, const std::string& contents) {
  // The pid keeps two processes writing the same destination off each other's temporary.
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc | std::ios::binary);
    if (!out) throw FileError(temporary, "cannot create", errno);
    if (!(out << contents) || !out.flush()) {
      const int error = errno;
      std::remove(temporary.c_str());
      throw FileError(temporary, "cannot write", error);
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    throw FileError(path, "cannot replace it with " + temporary, error);
  }
}

}  // namespace accel::files
