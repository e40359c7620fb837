#include "line_relay.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace accel::launch {

void write_fully(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {  // a console left non-blocking by another program
      pollfd writable{fd, POLLOUT, 0};
      ::poll(&writable, 1, -1);
      continue;
    }
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

void LineRelay::emit(const char* begin, std::size_t size, std::string& console, std::string& log) {
  if (targets_.console_fd >= 0) {
    console += targets_.prefix;
    console.append(begin, size);
    console += '\n';
  }
  if (targets_.log_fd >= 0) {
    log.append(begin, size);
    log += '\n';
  }
  if (targets_.tail_lines > 0) {
    tail_.emplace_back(begin, size);
    if (tail_.size() > targets_.tail_lines) tail_.pop_front();
  }
}

void LineRelay::flush(const std::string& console, const std::string& log) const {
  if (!console.empty()) write_fully(targets_.console_fd, console);
  if (!log.empty()) write_fully(targets_.log_fd, log);
}

void LineRelay::feed(const char* data, std::size_t size) {
  std::string console, log;
  const char* end = data + size;
  while (data < end) {
    const char* newline = static_cast<const char*>(std::memchr(data, '\n', end - data));
    if (!newline) {
      partial_.append(data, end);
      break;
    }
    if (partial_.empty()) {
      emit(data, newline - data, console, log);
    } else {
      partial_.append(data, newline);
      emit(partial_.data(), partial_.size(), console, log);
      partial_.clear();
    }
    data = newline + 1;
  }
  if (partial_.size() >= kMaxLine) {
    emit(partial_.data(), partial_.size(), console, log);
    partial_.clear();
  }
  flush(console, log);
}

void LineRelay::finish() {
  if (partial_.empty()) return;
  std::string console, log;
  emit(partial_.data(), partial_.size(), console, log);
  partial_.clear();
  flush(console, log);
}

}  // namespace accel::launch
