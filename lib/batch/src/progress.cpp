#include "accel/batch/progress.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace accel::batch {

Clock steady_clock_seconds() {
  return [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); };
}

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

std::string format_duration(double seconds) {
  const long long s = std::llround(std::max(0.0, seconds));
  char text[32];
  if (s < 60) {
    std::snprintf(text, sizeof text, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  }
  return text;
}

Progress::Progress(std::size_t total, std::size_t already_done, std::ostream& out, ProgressOptions options, Clock clock)
    : total_(total),
      already_done_(already_done),
      out_(out),
      options_(options),
      clock_(std::move(clock)),
      started_(clock_()),
      last_report_(started_) {}

std::string Progress::line() const {
  const std::lock_guard lock(mutex_);
  return line_locked();
}

std::string Progress::line_locked() const {
  const double elapsed = clock_() - started_;
  const std::size_t done = already_done_ + done_;
  const std::size_t left = total_ > done ? total_ - done : 0;
  char text[256];
  const int percent = total_ == 0 ? 100 : static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total_));
  const double rate = elapsed > 0 ? static_cast<double>(tokens_) / elapsed : 0.0;
  std::string eta = "unknown";
  if (left == 0) {
    eta = "0s";
  } else if (done_ > 0 && elapsed > 0) {
    eta = format_duration(static_cast<double>(left) * elapsed / static_cast<double>(done_));
  }
  std::snprintf(text, sizeof text, "progress: %zu/%zu requests (%d%%), %.1f tokens/s, elapsed %s, ETA %s", done, total_,
                percent, rate, format_duration(elapsed).c_str(), eta.c_str());
  return text;
}

void Progress::report_locked() {
  if (options_.in_place) {
    out_ << '\r' << line_locked() << "\033[K" << std::flush;
  } else {
    out_ << line_locked() << '\n' << std::flush;
  }
  last_report_ = clock_();
  reported_done_ = done_;
  reported_ = true;
}

void Progress::add(std::size_t requests, std::int64_t tokens) {
  const std::lock_guard lock(mutex_);
  done_ += requests;
  tokens_ += tokens;
  const double interval = options_.in_place ? options_.in_place_interval_s : options_.interval_s;
  if (!finished_ && clock_() - last_report_ >= interval) report_locked();
}

void Progress::finish() {
  const std::lock_guard lock(mutex_);
  if (finished_) return;
  if (!reported_ || reported_done_ != done_) report_locked();
  if (options_.in_place) out_ << '\n' << std::flush;
  finished_ = true;
}

std::string summary_line(const RankSummary& summary) {
  const double total = summary.busy_s + summary.idle_s;
  char text[256];
  std::snprintf(text, sizeof text, "rank %d: %zu requests, %lld tokens, busy %.2f s, idle %.2f s (%.1f%% idle)",
                summary.rank, summary.requests, static_cast<long long>(summary.tokens), summary.busy_s, summary.idle_s,
                total > 0 ? 100.0 * summary.idle_s / total : 0.0);
  return text;
}

}  // namespace accel::batch
