#pragma once
// Turns one worker stream's bytes into lines for the console and the log file
// (private to lib/launch).
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accel::launch {

class LineRelay;

// What one terminal (or other descriptor) shows, shared by stdout and stderr on one terminal.
struct Screen {
  // The relay whose unfinished line is last on the console, so another rank's line starts on a
  // line of its own (off a terminal, or on one while no rank draws a bar).
  const LineRelay* open_line = nullptr;
  // On a terminal, each rank's line being redrawn with \r (a progress bar) is one live row
  // below the finished lines, redrawn in place; finished lines are written above the rows.
  struct LiveRow {
    const LineRelay* relay;
    std::string text;  // prefix included, cut to the terminal's width
  };
  std::vector<LiveRow> live;
};

// One console descriptor (the launcher's stdout or stderr), shared by the relays of all ranks.
// Off a terminal (a pipe, a file) each line shows as its last redraw, once it is finished.
struct Console {
  int fd = -1;
  bool terminal = false;
  Screen own;
  // stdout and stderr on one terminal share one cursor, so one screen: set on stderr's console.
  Console* shares_screen_with = nullptr;

  Screen& screen() { return shares_screen_with ? shares_screen_with->own : own; }
};

struct RelayTargets {
  Console* console = nullptr;  // nullptr: this rank is filtered out of the console
  int log_fd = -1;             // -1: no log file
  std::string prefix;          // "[rank3]: ", or empty with --quiet
  std::size_t tail_lines = 0;  // how many of the last lines to keep for a failure report
};

// The log file gets every byte as it arrives. The console gets whole lines, each chunk of input
// with one write(), so lines of different ranks never interleave mid-line, whatever their
// length. What has arrived of an unfinished line (a prompt) is written once it has waited
// kPartialDelay or reached kMaxPending bytes; if another rank's line reaches the console before
// the rest of it, that line starts on a new line and the rest follows later under this rank's
// prefix. A line redrawn with \r (a progress bar) keeps only its last redraw: on a terminal it
// is the rank's live row (Screen::live), so that bars of several ranks each keep one line;
// elsewhere the line is written once finished.
class LineRelay {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kPartialDelay{100};
  static constexpr std::size_t kMaxPending = 16 * 1024 * 1024;
  // Lines kept for the failure report are cut to this many bytes.
  static constexpr std::size_t kMaxTailLine = 500;

  explicit LineRelay(RelayTargets targets) : targets_(std::move(targets)) {}
  ~LineRelay();  // a live row left on the screen is taken away
  LineRelay(const LineRelay&) = delete;
  LineRelay& operator=(const LineRelay&) = delete;

  void feed(const char* data, std::size_t size, Clock::time_point now = Clock::now());
  // When an unfinished line is waiting to be written (for flush_due()); nullopt when none is.
  std::optional<Clock::time_point> partial_due() const;
  // Writes the unfinished line's bytes if they have waited long enough.
  void flush_due(Clock::time_point now = Clock::now());
  // End of stream: a last line without a newline is ended with one.
  void finish();

  // The last lines (each cut to kMaxTailLine bytes, marked when cut), oldest first.
  const std::deque<std::string>& tail() const { return tail_; }

 private:
  // Writes `bytes` (complete lines, or the start of an unfinished one) to the console.
  void write_out(std::string_view bytes);
  // Draws the unfinished line in pending_ as this relay's live row on a terminal.
  void draw_live();
  // Whether the unfinished line in pending_ is drawn as a live row rather than written.
  bool draws_live() const;
  // One line, or its unfinished part, as the console shows it: its last redraw, prefixed.
  void render_line(std::string& text, std::string_view piece, bool at_line_start) const;
  // A redrawn line off a terminal waits for its end: its redraws would each show as a line.
  bool holds_redraw() const;
  void keep_for_tail(std::string_view bytes);

  RelayTargets targets_;
  std::string pending_;  // bytes of an unfinished line not yet written
  std::optional<Clock::time_point> pending_since_;
  std::string tail_line_;        // the current line, for tail_ (bounded)
  std::size_t tail_line_size_ = 0;  // its full length
  bool line_started_ = false;  // part of the current line was written to the console already
  bool stream_line_open_ = false;  // the stream's last byte so far was not a newline
  bool live_ = false;  // this relay has a row in its screen's live area
  std::deque<std::string> tail_;
};

// write() until everything is written or the descriptor fails (a closed console is not an
// error for the launcher: the workers keep running and their log files stay complete).
void write_fully(int fd, std::string_view bytes);

// `text` cut to `limit` bytes, with "... (N more bytes)" when cut: keeps messages bounded.
std::string shortened(const std::string& text, std::size_t limit);

}  // namespace accel::launch
