#include "thread_ranks.h"

#include <utility>

#include "accel/runtime/group.h"
#include "support/thread_ranks.h"

namespace accel::testing {
namespace {

// The rank's exception, in the outcome's terms.
void record_error(const std::exception_ptr& error, Outcome<std::string>& outcome) {
  try {
    std::rethrow_exception(error);
  } catch (const PeerError& e) {
    outcome.error = e.what();
    outcome.error_type = "PeerError";
  } catch (const UsageError& e) {
    outcome.error = e.what();
    outcome.error_type = "UsageError";
  } catch (const Error& e) {
    outcome.error = e.what();
    outcome.error_type = "Error";
  } catch (const std::exception& e) {
    outcome.error = e.what();
    outcome.error_type = "other";
  }
}

}  // namespace

std::vector<Outcome<std::string>> run_ranks_raw(int world_size,
                                                const std::function<std::string(const PartialState&)>& body,
                                                std::chrono::milliseconds timeout) {
  std::vector<Outcome<std::string>> out(world_size);
  const auto errors = test::run_ranks(
      world_size,
      [&](runtime::GroupHandle& group) {
        // The state takes the group over, so it closes when this rank's body ends, as a worker's
        // would when it exits: peers still waiting on it hear that it is gone.
        const auto state = PartialState::over_group(std::exchange(group, runtime::GroupHandle{}));
        out[state.process_index()].value = body(state);
      },
      timeout);
  for (int rank = 0; rank < world_size; ++rank) {
    if (errors[rank]) record_error(errors[rank], out[rank]);
  }
  return out;
}

}  // namespace accel::testing
