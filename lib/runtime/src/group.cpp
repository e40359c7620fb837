#include "accel/runtime/group.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

namespace accel::runtime {

GroupHandle make_gloo_group(const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
                            std::chrono::milliseconds timeout) {
  GroupHandle handle;
  handle.rank = rank;
  handle.world_size = world_size;
  handle.timeout = timeout;
  if (world_size == 1) return handle;
  auto options = ::c10d::ProcessGroupGloo::Options::create();
  options->timeout = timeout;
  options->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  handle.group = c10::make_intrusive<::c10d::ProcessGroupGloo>(store, rank, world_size, options);
  return handle;
}

}  // namespace accel::runtime
