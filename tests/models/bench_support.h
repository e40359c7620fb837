#pragma once
// What the models benchmarks (models_bench, tokenizer_bench) share: timing a call and turning
// a thrown accel::Error into a message and its exit code.
#include "accel/core/error.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <limits>
#include <string>

namespace accel::models::bench {

// What best_of() measures: wall time, or the CPU time of this process's threads divided by the
// threads torch runs. On a machine shared with busy processes the CPU time leaves out the slices
// the scheduler gave the others (not their effect on the caches).
struct Timing {
  enum class Clock { kWall, kCpuPerThread } clock = Clock::kWall;
  int threads = 1;
};
inline Timing& timing() {
  static Timing settings;
  return settings;
}

inline double clock_seconds() {
  if (timing().clock == Timing::Clock::kWall)
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec cpu{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  return (static_cast<double>(cpu.tv_sec) + 1e-9 * static_cast<double>(cpu.tv_nsec)) / timing().threads;
}

// The fastest of `repeats` calls of `fn`, in seconds of timing().
template <typename F>
double best_of(int repeats, F&& fn) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    const auto start = clock_seconds();
    fn();
    best = std::min(best, clock_seconds() - start);
  }
  return best;
}

// main()'s body: run(argc, argv), or "NAME: message" on stderr and the error's exit code.
template <typename Run>
int guarded_main(const char* name, int argc, char** argv, Run&& run) {
  try {
    return run(argc, argv);
  } catch (const accel::Error& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return e.exit_code();
  }
}

}  // namespace accel::models::bench
