#pragma once
// The state every PartialState handle in a process shares (private to the runtime).
#include <atomic>
#include <cstdint>
#include <string>

#include "accel/core/env_contract.h"
#include "accel/core/precision.h"
#include "accel/runtime/group.h"
#include "accel/runtime/partial_state.h"

namespace accel::detail {

struct SharedState {
  env::WorldInfo world;
  runtime::GroupHandle group;
  c10::Device device{c10::kCPU};
  Backend backend = Backend::kNone;
  MixedPrecision mixed_precision = MixedPrecision::kNo;
  bool debug = false;
  // Numbers every collective, in call order (the same on every rank), so that a failure can say
  // which ranks never reached the one that failed.
  std::atomic<std::uint64_t> sequence{0};
  // Numbers distribute() calls (the same on every rank): each call's queue has a store key of its own.
  std::atomic<std::uint64_t> distribute_calls{0};
  // Set when this process formed the group over a TCPStore: it must leave the store in order
  // (see runtime::leave_store) before the store goes away.
  bool leave_store_on_exit = false;
  bool hosts_store = false;

  SharedState() = default;
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;
  // Leaves the job's TCPStore in order (see runtime::leave_store), once: PartialState's atexit
  // handler or destroy_process_group() calls it. The destructor does not: it may run during
  // static destruction, when c10d's and Gloo's own statics may already be gone.
  void leave();
};

}  // namespace accel::detail
