#pragma once
// The one file module: reading a whole file, writing one so that a reader never sees half of it,
// creating one without replacing another, and owning descriptors. Every failure throws
// accel::FileError naming the path at fault and the OS reason.
//
// Durability policy (one for every writer): the data is fsync()ed before the rename or link that
// publishes it, and the directory is fsync()ed after, so after a crash the path holds either the
// old contents or the complete new ones.
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace accel::files {

// Move-only owner of one file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// The whole contents of a file, or the errno that stopped reading it (ENOENT when it is absent,
// EISDIR for a directory).
struct ReadResult {
  std::string contents;
  int error = 0;
  bool ok() const { return error == 0; }
};
ReadResult try_read_whole(const std::string& path);

// The whole contents of `path`; throws FileError(path, what_failed, errno), e.g.
// "model/vocab.json: cannot read tokenizer file: No such file or directory".
std::string read_whole(const std::string& path, const std::string& what_failed = "cannot read");

// The whole contents of `path`, or nothing when it cannot be read (probing optional files).
std::optional<std::string> read_if_present(const std::string& path);

// Creates `path` and its missing parents (mkdir -p, mode 0777 less the umask). Throws
// FileError("<the first directory that failed>", "cannot create the directory", errno), also
// when a component exists but is not a directory.
void make_directories(const std::string& path);

// A new file being written beside `target` ("<target>.tmp.<pid>.<n>"); it is removed on
// destruction unless one of the commits published it. Its permissions are `mode` when given,
// else the target's when it exists, else 0666 less the umask.
class PendingFile {
 public:
  explicit PendingFile(std::string target, std::optional<mode_t> mode = std::nullopt);
  ~PendingFile();
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }

  // Publishes the data at the target, replacing any file there (rename).
  void commit_replacing();
  // Publishes the data at the target only if nothing is there (link): returns false, with the
  // existing file untouched and the temporary removed, when the target already exists.
  [[nodiscard]] bool commit_if_absent();

  const std::string& path() const { return path_; }
  const std::string& target() const { return target_; }

 private:
  void sync_and_close();

  std::string target_;
  std::string path_;
  Fd fd_;
  bool settled_ = false;  // the temporary became the target or was removed
};

// Writes `contents` to `path` through a PendingFile, replacing an existing file.
void replace_atomically(const std::string& path, std::string_view contents);

// Writes `contents` to `path` through a PendingFile; throws FileError(path, "already exists and
// was left unchanged") when something is there already.
void create_new(const std::string& path, std::string_view contents);

// The directory of the running executable (/proc/self/exe, links resolved): installed programs
// find their companions and shipped data relative to it. Throws accel::FileError if unreadable.
std::string executable_directory();

}  // namespace accel::files
