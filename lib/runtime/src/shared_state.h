#pragma once
// The state every PartialState handle in a process shares (private to the runtime).
#include <atomic>
#include <cstdint>
#include <string>

#include "accel/core/env_contract.h"
#include "accel/runtime/group.h"

namespace accel::detail {

struct SharedState {
  env::WorldInfo world;
  runtime::GroupHandle group;
  c10::Device device{c10::kCPU};
  std::string backend = "none";
  // Numbers every collective, in call order (the same on every rank), so that a failure can say
  // which ranks never reached the one that failed.
  std::atomic<std::uint64_t> sequence{0};
  // Set when this process formed the group over a TCPStore: it must leave the store in order
  // (see runtime::leave_store) before the store goes away.
  bool leave_store_on_exit = false;
  bool hosts_store = false;
  // After a failed collective some ranks may be dead: rank 0 then waits only briefly for them.
  std::atomic<bool> peer_failed{false};

  SharedState() = default;
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;
  ~SharedState();
};

}  // namespace accel::detail
