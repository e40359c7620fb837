#include "stdin_relay.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace accel::launch {
namespace {

// True when `fd` is a terminal whose foreground group is not ours: reading it would stop us.
bool background_of_terminal(int fd) {
  if (!::isatty(fd)) return false;
  const pid_t foreground = ::tcgetpgrp(fd);
  return foreground >= 0 && foreground != ::getpgrp();
}

}  // namespace

Fd StdinRelay::attach() {
  Pipe pipe = make_pipe();
  ::fcntl(pipe.write.get(), F_SETFL, O_NONBLOCK);
  pending_.clear();
  target_ = source_open_ ? std::move(pipe.write) : Fd();  // at end of input: rank 0 reads EOF
  return std::move(pipe.read);
}

std::optional<pollfd> StdinRelay::wanted() const {
  if (!target_) return std::nullopt;
  if (!pending_.empty()) return pollfd{target_.get(), POLLOUT, 0};
  if (source_open_ && !background_of_terminal(source_)) return pollfd{source_, POLLIN, 0};
  return std::nullopt;
}

void StdinRelay::on_ready(short revents) {
  if (!pending_.empty()) {
    const ssize_t n = ::write(target_.get(), pending_.data(), pending_.size());
    if (n > 0) {
      pending_.erase(0, static_cast<std::size_t>(n));
    } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
      target_.reset();  // rank 0 closed its stdin or exited: what it did not read is dropped
      pending_.clear();
      return;
    }
  } else if (revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
    char buffer[64 * 1024];
    const ssize_t n = (revents & POLLNVAL) ? 0 : ::read(source_, buffer, sizeof buffer);
    if (n > 0) {
      pending_.assign(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      source_open_ = false;
    }
  }
  if (!source_open_ && pending_.empty()) target_.reset();
}

}  // namespace accel::launch
