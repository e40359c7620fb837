#include "accel/runtime/group.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

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
  handle.group = c10::make_intrusive<::c10d::ProcessGroupGloo>(store, rank, world_size, options);
  return handle;
}

bool nccl_available() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

GroupHandle make_nccl_group(const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
                            std::chrono::milliseconds timeout) {
  GroupHandle handle = handle_without_group(store, rank, world_size, timeout);
  if (world_size == 1) return handle;
#ifdef USE_C10D_NCCL
  auto options = ::c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  handle.group = c10::make_intrusive<::c10d::ProcessGroupNCCL>(store, rank, world_size, options);
  return handle;
#else
  throw Error("this LibTorch build has no NCCL support (a CPU build); set ACCEL_USE_CPU=true or use accel-launch "
              "--cpu to run with Gloo");
#endif
}

}  // namespace accel::runtime
