#include "line_relay.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
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

namespace {

// What the console still shows of an unfinished line redrawn with \r: from its last redraw on
// (a \r at the very end may be the start of "\r\n").
void drop_overdrawn(std::string& pending) {
  const auto last = pending.size() < 2 ? std::string::npos : pending.rfind('\r', pending.size() - 2);
  if (last != std::string::npos && last > 0) pending.erase(0, last);
}

int terminal_columns(int fd) {
  winsize size{};
  return ::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 1 ? size.ws_col : 80;
}

// `row` cut to fewer columns than the terminal has (a UTF-8 sequence counted as one), so that
// it never wraps and the live rows can be counted when they are redrawn.
std::string fit_row(std::string row, int columns) {
  int shown = 0;
  for (std::size_t i = 0; i < row.size(); ++i) {
    const bool starts_character = (static_cast<unsigned char>(row[i]) & 0xC0) != 0x80;
    if (starts_character && ++shown == columns) {
      row.resize(i);
      break;
    }
  }
  return row;
}

// The cursor waits below the live rows: up to the first of them, and clear to the screen's end.
std::string erase_live(const Screen& screen) {
  return screen.live.empty() ? std::string() : "\x1b[" + std::to_string(screen.live.size()) + "A\x1b[J";
}

std::string paint_live(const Screen& screen) {
  std::string text;
  for (const auto& row : screen.live) text += row.text + '\n';
  return text;
}

// What a line redrawn with \r shows in the end: its last redraw (a \r ending it is part of "\r\n").
std::string_view last_redraw(std::string_view line) {
  while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto redraw = line.rfind('\r');
  return redraw == std::string_view::npos ? line : line.substr(redraw + 1);
}

}  // namespace

LineRelay::~LineRelay() {
  if (!live_) return;
  Screen& screen = targets_.console->screen();
  std::string text = erase_live(screen);
  std::erase_if(screen.live, [this](const Screen::LiveRow& row) { return row.relay == this; });
  write_fully(targets_.console->fd, text + paint_live(screen));
}

bool LineRelay::holds_redraw() const {
  return targets_.console && !targets_.console->terminal && pending_.find('\r') != std::string::npos;
}

bool LineRelay::draws_live() const {
  return targets_.console && targets_.console->terminal &&
         (pending_.find('\r') != std::string::npos || !targets_.console->screen().live.empty());
}

void LineRelay::render_line(std::string& text, std::string_view piece, bool at_line_start) const {
  const bool ends_line = !piece.empty() && piece.back() == '\n';
  if (at_line_start) text += targets_.prefix;
  text.append(last_redraw(ends_line ? piece.substr(0, piece.size() - 1) : piece));
  if (ends_line) text += '\n';
}

void LineRelay::draw_live() {
  Console& console = *targets_.console;
  Screen& screen = console.screen();
  std::string row = fit_row(targets_.prefix + std::string(last_redraw(pending_)), terminal_columns(console.fd));
  std::string text;
  if (screen.open_line) text += '\n';  // an unfinished line (a prompt) stays above the rows
  screen.open_line = nullptr;
  line_started_ = false;
  text += erase_live(screen);
  const auto mine = std::find_if(screen.live.begin(), screen.live.end(),
                                 [this](const Screen::LiveRow& r) { return r.relay == this; });
  if (mine == screen.live.end()) {
    screen.live.push_back({this, std::move(row)});
  } else {
    mine->text = std::move(row);
  }
  live_ = true;
  write_fully(console.fd, text + paint_live(screen));
}

void LineRelay::write_out(std::string_view bytes) {
  if (bytes.empty() || !targets_.console) return;
  Console& console = *targets_.console;
  Screen& screen = console.screen();
  const LineRelay*& open = screen.open_line;
  const bool ends_line = bytes.back() == '\n';
  std::string text;
  text.reserve(bytes.size() + targets_.prefix.size() * 2 + 1);
  // Finished lines go above the live rows (while there are any, no line is left open).
  text += erase_live(screen);
  if (live_) {
    std::erase_if(screen.live, [this](const Screen::LiveRow& row) { return row.relay == this; });
    live_ = false;
    line_started_ = false;
  }
  bool at_line_start = !line_started_ || open != this;
  if (open && open != this) text += '\n';  // another rank's (or stream's) unfinished line
  for (std::size_t begin = 0; begin < bytes.size();) {
    const auto newline = bytes.find('\n', begin);
    const std::size_t end = newline == std::string_view::npos ? bytes.size() : newline + 1;
    render_line(text, bytes.substr(begin, end - begin), at_line_start);
    at_line_start = newline != std::string_view::npos;
    begin = end;
  }
  open = ends_line ? nullptr : this;
  if (!screen.live.empty()) {
    if (!ends_line) text += '\n';  // the rest of this line follows later, on a line of its own
    open = nullptr;
    text += paint_live(screen);
  }
  write_fully(console.fd, text);
  line_started_ = !ends_line;
}

void LineRelay::feed(const char* data, std::size_t size, Clock::time_point now) {
  std::string_view input(data, size);
  if (input.empty()) return;
  if (targets_.log_fd >= 0) write_fully(targets_.log_fd, input);
  if (targets_.tail_lines > 0) keep_for_tail(input);
  stream_line_open_ = input.back() != '\n';
  if (!targets_.console) return;
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
  if (!pending_since_) pending_since_ = now;  // a live row's line stays pending, drawn already
  pending_.append(input);
  drop_overdrawn(pending_);
  if (pending_.size() >= kMaxPending) {
    write_out(pending_);
    pending_.clear();
    pending_since_.reset();
  }
}

std::optional<LineRelay::Clock::time_point> LineRelay::partial_due() const {
  if (!pending_since_ || holds_redraw()) return std::nullopt;
  return *pending_since_ + kPartialDelay;
}

void LineRelay::flush_due(Clock::time_point now) {
  if (!pending_since_ || holds_redraw() || now < *pending_since_ + kPartialDelay) return;
  if (draws_live()) {
    draw_live();
    pending_since_.reset();
    return;
  }
  write_out(pending_);
  pending_.clear();
  pending_since_.reset();
}

void LineRelay::finish() {
  if (stream_line_open_) {
    if (targets_.log_fd >= 0) write_fully(targets_.log_fd, "\n");
    if (targets_.tail_lines > 0) keep_for_tail("\n");
    stream_line_open_ = false;
  }
  if (pending_.empty() && !line_started_) return;
  pending_ += '\n';
  write_out(pending_);
  pending_.clear();
  pending_since_.reset();
}

}  // namespace accel::launch
