#include "accel/runtime/group.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/version.h>

#include <initializer_list>
#include <string>
#include <type_traits>

#include <csignal>

#include "accel/core/error.h"

// LibTorch builds with NCCL export USE_C10D_NCCL to their users (as this CPU build exports
// USE_C10D_GLOO); without it the NCCL branch is not compiled.
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace accel::runtime {
namespace {

GroupHandle handle_without_group(const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
                                 std::chrono::milliseconds timeout) {
  GroupHandle handle;
  handle.rank = rank;
  handle.world_size = world_size;
  handle.timeout = timeout;
  handle.store = store;
  return handle;
}

// Gloo writes to its peers' sockets with writev, which raises SIGPIPE when a peer has gone: with
// the default disposition the whole process dies silently (exit 141) instead of getting the
// PeerError that names the rank. Python ignores SIGPIPE at start-up, which is why torch's own
// users never see this; a C++ job gets the same here. A handler the job installed is kept.
void ignore_sigpipe_unless_handled() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
}

#if TORCH_VERSION_MAJOR >= 2
using BackendType = ::c10d::ProcessGroup::BackendType;

// LibTorch 2 made ProcessGroupGloo/NCCL per-device backends behind one c10d::ProcessGroup front
// end (1.x used them as the group itself); we wrap them as torch.distributed does, so the rest
// of the runtime holds one ProcessGroup on either. The front end's constructor lost its Options
// argument during 2.x; a template keeps the branch for the other spelling uncompiled.
template <typename Group = ::c10d::ProcessGroup>
c10::intrusive_ptr<::c10d::ProcessGroup> as_process_group(const c10::intrusive_ptr<::c10d::Backend>& backend,
                                                          const GroupHandle& handle, BackendType type,
                                                          const std::string& name,
                                                          std::initializer_list<c10::DeviceType> devices) {
  c10::intrusive_ptr<Group> group;
  if constexpr (std::is_constructible_v<Group, const c10::intrusive_ptr<::c10d::Store>&, int, int>) {
    group = c10::make_intrusive<Group>(handle.store, handle.rank, handle.world_size);
    group->setDefaultBackend(type);
  } else {
    group = c10::make_intrusive<Group>(handle.store, handle.rank, handle.world_size,
                                       c10::make_intrusive<typename Group::Options>(name, handle.timeout));
  }
  for (const auto device : devices) group->setBackend(device, type, backend);
  return group;
}
#endif

}  // namespace

GroupHandle make_gloo_group(const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
                            std::chrono::milliseconds timeout, const GlooTransport& transport) {
  GroupHandle handle = handle_without_group(store, rank, world_size, timeout);
  if (world_size == 1) return handle;
  ignore_sigpipe_unless_handled();
  auto options = ::c10d::ProcessGroupGloo::Options::create();
  options->timeout = timeout;
  options->devices.push_back(transport.interface.empty()
                                 ? ::c10d::ProcessGroupGloo::createDeviceForHostname(transport.hostname)
                                 : ::c10d::ProcessGroupGloo::createDeviceForInterface(transport.interface));
  auto gloo = c10::make_intrusive<::c10d::ProcessGroupGloo>(store, rank, world_size, options);
#if TORCH_VERSION_MAJOR >= 2
  handle.group = as_process_group(gloo, handle, BackendType::GLOO, "gloo", {c10::DeviceType::CPU, c10::DeviceType::CUDA});
#else
  handle.group = gloo;
#endif
  return handle;
}

bool nccl_available() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

bool nccl_suits(bool cuda, int local_world_size, int gpu_count) {
  return cuda && nccl_available() && local_world_size <= gpu_count;
}

GroupHandle make_nccl_group(const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
                            std::chrono::milliseconds timeout) {
  GroupHandle handle = handle_without_group(store, rank, world_size, timeout);
  if (world_size == 1) return handle;
#ifdef USE_C10D_NCCL
  auto options = ::c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  auto nccl = c10::make_intrusive<::c10d::ProcessGroupNCCL>(store, rank, world_size, options);
#if TORCH_VERSION_MAJOR >= 2
  handle.group = as_process_group(nccl, handle, BackendType::NCCL, "nccl", {c10::DeviceType::CUDA});
#else
  handle.group = nccl;
#endif
  return handle;
#else
  throw Error("this LibTorch build has no NCCL support (a CPU build); set ACCEL_USE_CPU=true or use accel-launch "
              "--cpu to run with Gloo");
#endif
}

}  // namespace accel::runtime
