#include "accel/config/store.h"

#include <sys/stat.h>

#include <cerrno>

#include "accel/core/error.h"
#include "accel/core/files.h"

namespace accel::config {
namespace {

// The first free of path.bak, path.bak.1, path.bak.2, ... now holds `contents`.
std::string make_backup(const std::string& path, const std::string& contents, mode_t mode) {
  for (int n = 0;; ++n) {
    const std::string backup = path + ".bak" + (n == 0 ? "" : "." + std::to_string(n));
    struct stat taken {};
    if (::lstat(backup.c_str(), &taken) == 0) continue;
    files::PendingFile file(backup, mode);
    file.write(contents);
    if (file.commit_if_absent()) return backup;  // else another writer took this name meanwhile
  }
}

}  // namespace

std::string read_file(const std::string& path) {
  files::ReadResult read = files::try_read_whole(path);
  if (read.error == EISDIR) throw InputFileError(path, "is a directory, not a config file");
  if (!read.ok()) throw InputFileError(path, "cannot read the config file", read.error);
  return std::move(read.contents);
}

Written write_atomically(const std::string& path, const std::string& contents, bool replace) {
  const auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) files::make_directories(path.substr(0, slash));

  struct stat existing {};
  const bool exists = ::stat(path.c_str(), &existing) == 0;
  if (exists && S_ISDIR(existing.st_mode)) throw FileError(path, "is a directory, not a config file");
  if (exists && !replace) throw UsageError(path + " already exists and was left unchanged; pass --force to replace it (a backup is kept)");

  files::PendingFile file(path);
  file.write(contents);
  Written written{path, std::nullopt};
  if (exists) {
    written.backup = make_backup(path, read_file(path), existing.st_mode & 07777);
    file.commit_replacing();
  } else if (!file.commit_if_absent()) {
    throw UsageError(path + " appeared while writing it and was left unchanged");
  }
  return written;
}

}  // namespace accel::config
