#include "line_relay.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace accel::launch {

void write_fully(int fd, std::string_view bytes) {
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

std::string shortened(const std::string& text, std::size_t limit) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "... (" + std::to_string(text.size() - limit) + " more bytes)";
}

void LineRelay::keep_for_tail(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, newline);
    if (tail_line_.size() < kMaxTailLine) tail_line_.append(piece.substr(0, kMaxTailLine - tail_line_.size()));
    tail_line_size_ += piece.size();
    if (newline == std::string_view::npos) return;
    std::string line = std::move(tail_line_);
    if (tail_line_size_ > kMaxTailLine) line += "... (" + std::to_string(tail_line_size_ - kMaxTailLine) + " more bytes)";
    tail_.push_back(std::move(line));
    if (tail_.size() > targets_.tail_lines) tail_.pop_front();
    tail_line_.clear();
    tail_line_size_ = 0;
    bytes.remove_prefix(newline + 1);
  }
}

void LineRelay::write_out(std::string_view bytes) {
  if (bytes.empty()) return;
  const bool ends_line = bytes.back() == '\n';
  if (Console* console = targets_.console) {
    std::string text;
    text.reserve(bytes.size() + targets_.prefix.size() * 2 + 1);
    bool at_line_start = !line_started_ || console->open_line != this;
    if (console->open_line && console->open_line != this) text += '\n';  // another rank's unfinished line
    for (std::size_t begin = 0; begin < bytes.size();) {
      if (at_line_start) text += targets_.prefix;
      const auto newline = bytes.find('\n', begin);
      const std::size_t end = newline == std::string_view::npos ? bytes.size() : newline + 1;
      text.append(bytes.substr(begin, end - begin));
      at_line_start = newline != std::string_view::npos;
      begin = end;
    }
    console->open_line = ends_line ? nullptr : this;
    write_fully(console->fd, text);
  }
  if (targets_.log_fd >= 0) write_fully(targets_.log_fd, bytes);
  if (targets_.tail_lines > 0) keep_for_tail(bytes);
  line_started_ = !ends_line;
}

void LineRelay::feed(const char* data, std::size_t size, Clock::time_point now) {
  std::string_view input(data, size);
  const auto last_newline = input.rfind('\n');
  if (last_newline != std::string_view::npos) {
    // Everything up to the last newline goes out in one write; the rest waits.
    if (pending_.empty()) {
      write_out(input.substr(0, last_newline + 1));
    } else {
      pending_.append(input.substr(0, last_newline + 1));
      write_out(pending_);
      pending_.clear();
    }
    pending_since_.reset();
    input.remove_prefix(last_newline + 1);
  }
  if (input.empty()) return;
  if (pending_.empty()) pending_since_ = now;
  pending_.append(input);
  if (pending_.size() >= kMaxPending) {
    write_out(pending_);
    pending_.clear();
    pending_since_.reset();
  }
}

std::optional<LineRelay::Clock::time_point> LineRelay::partial_due() const {
  if (!pending_since_) return std::nullopt;
  return *pending_since_ + kPartialDelay;
}

void LineRelay::flush_due(Clock::time_point now) {
  if (!pending_since_ || now < *pending_since_ + kPartialDelay) return;
  write_out(pending_);
  pending_.clear();
  pending_since_.reset();
}

void LineRelay::finish() {
  if (pending_.empty() && !line_started_) return;
  pending_ += '\n';
  write_out(pending_);
  pending_.clear();
  pending_since_.reset();
}

}  // namespace accel::launch
