#include "accel/config/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "accel/config/config.h"
#include "accel/core/error.h"

namespace accel::config {
namespace {

// Closes a descriptor and removes a temporary file unless released.
class TempFile {
 public:
  explicit TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  void close_or_throw(const std::string& target) {
    const int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0 || ::close(fd) != 0) throw FileError(target, "cannot write", errno);
  }
  void release() { path_.clear(); }

 private:
  std::string path_;
  int fd_;
};

void write_all(int fd, const std::string& contents, const std::string& target) {
  std::size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw FileError(target, "cannot write", errno);
    done += static_cast<std::size_t>(n);
  }
}

void sync_directory(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: the rename itself already happened
  ::fsync(fd);
  ::close(fd);
}

std::string make_backup(const std::string& path, const std::string& contents, mode_t mode) {
  for (int n = 0;; ++n) {
    const std::string backup = path + ".bak" + (n == 0 ? "" : "." + std::to_string(n));
    const int fd = ::open(backup.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) throw FileError(backup, "cannot create the backup", errno);
    TempFile file(backup, fd);
    write_all(fd, contents, backup);
    file.close_or_throw(backup);
    file.release();
    return backup;
  }
}

mode_t default_mode() {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return 0666 & ~mask;
}

}  // namespace

std::string read_file(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) throw InputFileError(path, "cannot read the config file", errno);
  if (S_ISDIR(info.st_mode)) throw InputFileError(path, "is a directory, not a config file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputFileError(path, "cannot read the config file", errno);
  std::string contents;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      throw InputFileError(path, "cannot read the config file", error);
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return contents;
}

Written write_atomically(const std::string& path, const std::string& contents, bool replace) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string directory = target.has_parent_path() ? target.parent_path().string() : ".";
  std::error_code error;
  fs::create_directories(directory, error);
  if (error) throw FileError(directory, "cannot create the directory", error.value());

  struct stat existing {};
  const bool exists = ::stat(path.c_str(), &existing) == 0;
  if (exists && S_ISDIR(existing.st_mode)) throw FileError(path, "is a directory, not a config file");
  if (exists && !replace) throw UsageError(path + " already exists and was left unchanged; pass --force to replace it (a backup is kept)");

  std::string pattern = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) throw FileError(path, "cannot create a temporary file beside", errno);
  TempFile temp(pattern, fd);
  write_all(temp.fd(), contents, path);
  const mode_t mode = exists ? (existing.st_mode & 07777) : default_mode();
  if (::fchmod(temp.fd(), mode) != 0) throw FileError(path, "cannot set the permissions of", errno);
  temp.close_or_throw(path);

  Written written{path, std::nullopt};
  if (exists) {
    written.backup = make_backup(path, read_file(path), mode);
    if (::rename(temp.path().c_str(), path.c_str()) != 0) throw FileError(path, "cannot replace", errno);
    temp.release();
  } else if (::link(temp.path().c_str(), path.c_str()) != 0) {
    // link() refuses to replace a file that appeared since the check above.
    if (errno == EEXIST) throw UsageError(path + " appeared while writing it and was left unchanged");
    throw FileError(path, "cannot create", errno);
  }
  sync_directory(directory);
  return written;
}

}  // namespace accel::config
