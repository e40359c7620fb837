#pragma once
// A formed process group and this process's place in it: the handle the runtime's collectives
// and the pipeline's point-to-point transfers run over. Tests form one per thread over a shared
// in-memory store; PartialState forms one from the launcher's environment.
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace accel::runtime {

struct GroupHandle {
  c10::intrusive_ptr<::c10d::ProcessGroup> group;  // null when world_size == 1
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

// Forms a Gloo group over an existing store (loopback interface). Blocks until every rank
// has joined or the timeout expires.
GroupHandle make_gloo_group(const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
                            std::chrono::milliseconds timeout);

}  // namespace accel::runtime
