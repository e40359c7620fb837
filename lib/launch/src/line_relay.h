#pragma once
// Turns one worker stream's bytes into whole lines for the console and the log file
// (private to lib/launch).
#include <cstddef>
#include <deque>
#include <string>

namespace accel::launch {

struct RelayTargets {
  int console_fd = -1;    // -1: this rank is filtered out of the console
  int log_fd = -1;        // -1: no log file
  std::string prefix;     // "[rank3]: ", or empty with --quiet
  std::size_t tail_lines = 0;  // how many of the last lines to keep for a failure report
};

// Writes only whole lines, each with one write() per chunk of input, so lines of different
// ranks never interleave mid-line. A line longer than kMaxLine is cut so memory stays bounded.
class LineRelay {
 public:
  static constexpr std::size_t kMaxLine = 64 * 1024;

  explicit LineRelay(RelayTargets targets) : targets_(std::move(targets)) {}

  void feed(const char* data, std::size_t size);
  // End of stream: a last line without a newline is written with one.
  void finish();

  const std::deque<std::string>& tail() const { return tail_; }

 private:
  void emit(const char* begin, std::size_t size, std::string& console, std::string& log);
  void flush(const std::string& console, const std::string& log) const;

  RelayTargets targets_;
  std::string partial_;
  std::deque<std::string> tail_;
};

// write() until everything is written or the descriptor fails (a closed console is not an
// error for the launcher: the workers keep running and their log files stay complete).
void write_fully(int fd, const std::string& bytes);

}  // namespace accel::launch
