#pragma once
// A formed process group and this process's place in it: the handle the runtime's collectives
// and the pipeline's point-to-point transfers run over. Tests form one per thread over a shared
// in-memory store; PartialState forms one from the launcher's environment.
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace accel::runtime {

// What the users of a group (collectives, pipeline links) learned about its peers; shared by
// every copy of the handle, so that the teardown knows not to wait long for peers that failed.
struct GroupHealth {
  std::atomic<bool> peer_failed{false};
};

struct GroupHandle {
  c10::intrusive_ptr<::c10d::ProcessGroup> group;  // null when world_size == 1
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // The store the group was formed over; the runtime reads the ranks' progress markers from it
  // to name the ranks that are missing when a collective fails. May be null.
  c10::intrusive_ptr<::c10d::Store> store;
  std::shared_ptr<GroupHealth> health = std::make_shared<GroupHealth>();
};

// Where this rank's Gloo transport listens for its peers. Loopback is right when every rank
// runs on one machine; a multi-node run needs an address the other machines can reach.
struct GlooTransport {
  std::string hostname = "127.0.0.1";  // address (or name) to bind
  std::string interface;               // a network interface name (e.g. "eth0"); wins over hostname
};

// Forms a Gloo group over an existing store. Blocks until every rank has joined; throws
// (c10::Error from Gloo) when the timeout expires first.
GroupHandle make_gloo_group(const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
                            std::chrono::milliseconds timeout, const GlooTransport& transport = {});

// True when this LibTorch build has NCCL (ProcessGroupNCCL) compiled in.
bool nccl_available();

// Whether a rank's group should be NCCL: the job computes on CUDA, this LibTorch has NCCL and
// each of the machine's `local_world_size` ranks has a GPU of its own among `gpu_count`. Else
// Gloo (device tensors travel through host memory): NCCL refuses two ranks of one communicator
// on the same GPU, so ranks that share GPUs talk over Gloo.
bool nccl_suits(bool cuda, int local_world_size, int gpu_count);

// Forms an NCCL group (CUDA tensors only). Throws accel::Error when nccl_available() is false.
GroupHandle make_nccl_group(const c10::intrusive_ptr<::c10d::Store>& store, int rank, int world_size,
                            std::chrono::milliseconds timeout);

}  // namespace accel::runtime
