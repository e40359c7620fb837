#pragma once
// What the models benchmarks (models_bench, tokenizer_bench) share: timing a call and turning
// a thrown accel::Error into a message and its exit code.
#include "accel/core/error.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <limits>
#include <string>

namespace accel::models::bench {

// The fastest of `repeats` calls of `fn`, in seconds.
template <typename F>
double best_of(int repeats, F&& fn) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
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
