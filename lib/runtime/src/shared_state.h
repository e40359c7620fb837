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
};

}  // namespace accel::detail
