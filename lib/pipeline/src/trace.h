#pragma once
// Chrome-trace events for one rank (compute, send, recv), written as one JSON file per rank that
// Perfetto opens and scripts/plot-trace merges. Times are wall-clock microseconds so that files
// from several processes line up.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace accel::pipeline {

class Trace {
 public:
  using Clock = std::chrono::system_clock;

  Trace() = default;  // disabled: records nothing
  Trace(std::string path, int rank);

  bool enabled() const { return !path_.empty(); }
  static Clock::time_point now() { return Clock::now(); }
  // lane: "compute", "send" or "recv"; one row each in the viewer.
  void add(const std::string& lane, const std::string& name, Clock::time_point start, Clock::time_point end);
  // Rewrites the file through a temporary and a rename, so a reader never sees half a file.
  void write() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int rank_ = 0;
  struct Event {
    std::string lane, name;
    std::int64_t start_us, duration_us;
  };
  std::vector<Event> events_;
};

}  // namespace accel::pipeline
