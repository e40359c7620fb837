#include "trace.h"

#include <nlohmann/json.hpp>

#include "accel/core/files.h"

namespace accel::pipeline {
namespace {

std::int64_t micros(Trace::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

int lane_id(const std::string& lane) {
  if (lane == "compute") return 0;
  if (lane == "recv") return 1;
  return 2;
}

}  // namespace

Trace::Trace(std::string path, int rank) : path_(std::move(path)), rank_(rank) {}

void Trace::add(const std::string& lane, const std::string& name, Clock::time_point start, Clock::time_point end) {
  if (!enabled()) return;
  events_.push_back({lane, name, micros(start), micros(end) - micros(start)});
}

void Trace::write() const {
  if (!enabled()) return;
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", rank_}, {"args", {{"name", "rank " + std::to_string(rank_)}}}});
  for (const char* lane : {"compute", "recv", "send"}) {
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", rank_}, {"tid", lane_id(lane)}, {"args", {{"name", lane}}}});
  }
  for (const auto& e : events_) {
    events.push_back({{"ph", "X"}, {"cat", e.lane}, {"name", e.name}, {"pid", rank_}, {"tid", lane_id(e.lane)},
                      {"ts", e.start_us}, {"dur", e.duration_us}});
  }
  files::replace_atomically(path_, nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump() + "\n");
}

}  // namespace accel::pipeline
