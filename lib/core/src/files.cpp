#include "accel/core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "accel/core/error.h"

namespace accel::files {
namespace {

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Makes a rename or link that already happened survive a crash. Best effort: the new contents
// are in place either way, and reporting a failure here would suggest they were not.
void sync_directory(const std::string& directory) {
  const Fd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

// Unique among the threads of this process; the pid keeps other processes off it.
std::string temporary_beside(const std::string& target) {
  static std::atomic<unsigned> counter{0};
  return target + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

}  // namespace

void Fd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ReadResult try_read_whole(const std::string& path) {
  ReadResult result;
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat info {};
  if (!fd || ::fstat(fd.get(), &info) != 0) {
    result.error = errno;
    return result;
  }
  if (S_ISDIR(info.st_mode)) {
    result.error = EISDIR;
    return result;
  }
  if (info.st_size > 0) result.contents.reserve(static_cast<std::size_t>(info.st_size));
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result.error = errno;
      result.contents.clear();
      return result;
    }
    if (n == 0) return result;
    result.contents.append(buffer, static_cast<std::size_t>(n));
  }
}

std::string read_whole(const std::string& path, const std::string& what_failed) {
  ReadResult result = try_read_whole(path);
  if (!result.ok()) throw FileError(path, what_failed, result.error);
  return std::move(result.contents);
}

std::optional<std::string> read_if_present(const std::string& path) {
  ReadResult result = try_read_whole(path);
  if (!result.ok()) return std::nullopt;
  return std::move(result.contents);
}

void make_directories(const std::string& path) {
  for (std::size_t end = 1; end <= path.size(); ++end) {
    if (end < path.size() && path[end] != '/') continue;
    const std::string prefix = path.substr(0, end);
    if (::mkdir(prefix.c_str(), 0777) == 0) continue;
    const int error = errno;
    struct stat info {};
    if (error == EEXIST && ::stat(prefix.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) continue;
    throw FileError(prefix, "cannot create the directory", error == EEXIST ? ENOTDIR : error);
  }
}

PendingFile::PendingFile(std::string target, std::optional<mode_t> mode)
    : target_(std::move(target)), path_(temporary_beside(target_)) {
  // Created with 0666 so that the umask applies, as it would to the target written directly.
  fd_ = Fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (!fd_) throw FileError(path_, "cannot create", errno);
  struct stat existing {};
  if (!mode && ::stat(target_.c_str(), &existing) == 0) mode = existing.st_mode & 07777;
  if (mode && ::fchmod(fd_.get(), *mode) != 0) {
    const int error = errno;
    ::unlink(path_.c_str());
    throw FileError(path_, "cannot set the permissions", error);
  }
}

PendingFile::~PendingFile() {
  fd_.reset();
  if (!settled_) ::unlink(path_.c_str());
}

void PendingFile::write(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_.get(), bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw FileError(path_, "cannot write", errno);
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
}

void PendingFile::sync_and_close() {
  if (::fsync(fd_.get()) != 0) throw FileError(path_, "cannot flush", errno);
  // close() is where some file systems (NFS) report a failed write.
  if (::close(fd_.release()) != 0) throw FileError(path_, "cannot write", errno);
}

void PendingFile::commit_replacing() {
  sync_and_close();
  if (::rename(path_.c_str(), target_.c_str()) != 0) throw FileError(target_, "cannot replace it with " + path_, errno);
  settled_ = true;
  sync_directory(directory_of(target_));
}

bool PendingFile::commit_if_absent() {
  sync_and_close();
  // link() refuses to replace anything, including a file that appeared after the caller looked.
  if (::link(path_.c_str(), target_.c_str()) != 0) {
    if (errno == EEXIST) {
      ::unlink(path_.c_str());
      settled_ = true;
      return false;
    }
    throw FileError(target_, "cannot create", errno);
  }
  ::unlink(path_.c_str());
  settled_ = true;
  sync_directory(directory_of(target_));
  return true;
}

void replace_atomically(const std::string& path, std::string_view contents) {
  PendingFile file(path);
  file.write(contents);
  file.commit_replacing();
}

void create_new(const std::string& path, std::string_view contents) {
  PendingFile file(path);
  file.write(contents);
  if (!file.commit_if_absent()) throw FileError(path, "already exists and was left unchanged");
}

std::string executable_directory() {
  std::string buffer(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
  if (n <= 0) throw FileError("/proc/self/exe", "cannot read the running executable's path", errno);
  buffer.resize(static_cast<std::size_t>(n));
  return buffer.substr(0, buffer.rfind('/'));
}

}  // namespace accel::files
