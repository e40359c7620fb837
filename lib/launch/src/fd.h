#pragma once
// Owning file descriptors and pipes (private to lib/launch).
#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace accel::launch {

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
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

// Both ends close-on-exec; the child side is dup2()ed onto its target, which clears the flag.
// `flags`: more pipe2() flags for both ends (O_NONBLOCK for a wake-up pipe that a poll loop
// drains and a signal handler or thread writes without ever blocking).
// Throws accel::Error when the system is out of descriptors.
Pipe make_pipe(int flags = 0);

}  // namespace accel::launch
