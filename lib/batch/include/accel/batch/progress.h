#pragma once
// Progress of a batch run, reported by the main process:
//   "progress: 37/128 requests (29%), 412.3 tokens/s, elapsed 41s, ETA 1m40s"
// rewritten in place on a terminal, or a new line every few seconds into a log; and a summary
// line per rank at the end. The clock is injectable so tests control time.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <mutex>
#include <string>

namespace accel::batch {

// Seconds on a monotonic clock.
using Clock = std::function<double()>;
Clock steady_clock_seconds();

// Whether `fd` is a terminal (isatty): progress is rewritten in place there.
bool is_terminal(int fd);

struct ProgressOptions {
  bool in_place = false;          // rewrite one line ("\r", clear to its end); else a line per report
  double interval_s = 5;          // between reports written as lines
  double in_place_interval_s = 0.2;  // between rewrites in place
};

// Thread-safe: add() may be called from any thread of the main process.
class Progress {
 public:
  // `total` requests to serve in all, `already_done` of them finished by an earlier run.
  Progress(std::size_t total, std::size_t already_done, std::ostream& out, ProgressOptions options = {},
           Clock clock = steady_clock_seconds());

  // Records finished requests and the tokens they generated; writes a report when one is due.
  void add(std::size_t requests, std::int64_t tokens);
  // Writes the last report unless the latest one is current (and ends the line rewritten in place).
  void finish();
  // The report as it stands.
  std::string line() const;

 private:
  std::string line_locked() const;
  void report_locked();

  std::size_t total_;
  std::size_t already_done_;
  std::ostream& out_;
  ProgressOptions options_;
  Clock clock_;
  double started_;
  double last_report_;
  std::size_t done_ = 0;  // in this run
  std::int64_t tokens_ = 0;
  std::size_t reported_done_ = 0;
  bool reported_ = false;
  bool finished_ = false;
  mutable std::mutex mutex_;
};

// What one rank did, for the summary at the end.
struct RankSummary {
  int rank = 0;
  std::size_t requests = 0;
  std::int64_t tokens = 0;
  double busy_s = 0;  // running the model
  double idle_s = 0;  // waiting for work or for the others
};
// "rank 1: 64 requests, 8123 tokens, busy 12.30 s, idle 0.40 s (3.1% idle)"
std::string summary_line(const RankSummary& summary);

// "42s", "3m07s", "1h02m".
std::string format_duration(double seconds);

}  // namespace accel::batch
