#pragma once
// The runtime's view of tests/support's ranks-as-threads (support/thread_ranks.h): each rank's
// body gets a PartialState over its group, and what each body returned comes back. Catch2 assertions are not thread-safe:
// bodies return values and the test asserts on them afterwards. A rank's exception is returned
// as its message (Outcome::error) so that failure paths can be asserted too.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "accel/runtime/partial_state.h"

namespace accel::testing {

template <class R>
struct Outcome {
  std::optional<R> value;
  std::string error;  // what() of the exception the rank threw; empty when it returned
  std::string error_type;  // "PeerError", "UsageError", "Error" or "other"
};

// Runs body(state) on every rank and returns one outcome per rank.
std::vector<Outcome<std::string>> run_ranks_raw(int world_size,
                                                const std::function<std::string(const PartialState&)>& body,
                                                std::chrono::milliseconds timeout = std::chrono::seconds(20));

// As run_ranks_raw for any value type; T is kept in the closure.
template <class T, class F>
std::vector<Outcome<T>> run_ranks(int world_size, F body,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  std::vector<std::optional<T>> values(world_size);
  const auto raw = run_ranks_raw(
      world_size,
      [&](const PartialState& state) {
        values[state.process_index()] = body(state);
        return std::string();
      },
      timeout);
  std::vector<Outcome<T>> out(world_size);
  for (int r = 0; r < world_size; ++r) {
    out[r].value = std::move(values[r]);
    out[r].error = raw[r].error;
    out[r].error_type = raw[r].error_type;
  }
  return out;
}

// The values of a run where no rank may fail: throws std::runtime_error with the first rank's
// error otherwise, so the test reports it.
template <class T>
std::vector<T> values_of(const std::vector<Outcome<T>>& outcomes) {
  std::vector<T> values;
  for (std::size_t r = 0; r < outcomes.size(); ++r) {
    if (!outcomes[r].value) throw std::runtime_error("rank " + std::to_string(r) + " failed: " + outcomes[r].error);
    values.push_back(*outcomes[r].value);
  }
  return values;
}

}  // namespace accel::testing
