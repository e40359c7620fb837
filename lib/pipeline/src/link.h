#pragma once
// Point-to-point messages between pipeline ranks over the group's send/recv. A message is a small
// fixed envelope (envelope.h), a descriptor (dtype, ndim and shape of each tensor) when it does not
// fit the envelope, and the tensors packed into one payload, so shapes and micro-batch sizes may
// change with every message and nothing is padded.
#include <torch/torch.h>

#include <deque>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include "accel/core/error.h"
#include "accel/runtime/group.h"
#include "envelope.h"
#include "trace.h"

namespace accel::pipeline {

// Tags keep the activation channel (rank k -> k+1) apart from the output channel (last rank ->
// every other rank) and, while generating, the token channel (last rank -> rank 0).
inline constexpr int kActivationTag = 1;
inline constexpr int kOutputTag = 2;
inline constexpr int kTokenTag = 3;

class Links {
 public:
  // `device`: where this rank computes. Tensors travel device to device over NCCL; over Gloo a
  // device tensor is staged through pinned host memory. Received tensors land on `device`.
  Links(const runtime::GroupHandle& group, Trace* trace, c10::Device device = c10::kCPU);
  ~Links();
  Links(const Links&) = delete;
  Links& operator=(const Links&) = delete;

  // Starts sending; the tensors stay alive until the send completes. Throws accel::PeerError
  // naming `peer` when the transport fails.
  void send(int peer, int tag, const Message& message);
  // Blocks until a message arrives or `timeout` passes (accel::PeerError naming `peer`); zero:
  // the group's timeout.
  Message recv(int peer, int tag, std::chrono::milliseconds timeout = {});
  // Waits for the oldest sends until at most `max_messages` are in flight (bounds memory when
  // the first stage runs ahead of the others).
  void wait_sends(std::size_t max_messages = 0, std::chrono::milliseconds timeout = {});
  std::chrono::milliseconds timeout() const { return group_.timeout; }
  // Gives up on the sends in flight without waiting: used only on the way out of a failed call,
  // when a peer may never receive them. They are kept alive until this object dies.
  void abandon_sends();

 private:
  torch::Tensor to_wire(const torch::Tensor& t) const;
  torch::Tensor wire_buffer(std::int64_t size, c10::ScalarType dtype) const;
  void post_send(int peer, int tag, std::vector<torch::Tensor> tensors);
  c10::intrusive_ptr<::c10d::Work> post_recv(int peer, int tag, torch::Tensor& tensor,
                                             std::chrono::milliseconds timeout);
  void recv_into(int peer, int tag, torch::Tensor& tensor, std::chrono::milliseconds timeout);
  PeerError peer_error(const char* what, int peer, std::chrono::milliseconds timeout, const std::exception& cause);
  // This rank's own transport failure, for its peers (see peer_error).
  void publish_report(const std::string& text);
  // Every other rank's report, for a wait the watcher aborted.
  std::string failed_peers() const;
  // `peer`'s report of its own transport failure, waited for at most kReportWait.
  std::optional<std::string> peer_report(int peer) const;
  static constexpr std::chrono::milliseconds kReportWait{500};
  void wait(const c10::intrusive_ptr<::c10d::Work>& work, int peer, const char* what, std::chrono::milliseconds timeout);

  runtime::GroupHandle group_;
  Trace* trace_;
  c10::Device compute_;  // where this rank's stage computes
  c10::Device wire_;     // where the transport reads and writes: the device for NCCL, else the host
  struct InFlight {
    int peer;
    std::vector<c10::intrusive_ptr<::c10d::Work>> works;
    std::vector<torch::Tensor> keep_alive;
  };
  std::deque<InFlight> in_flight_;
  struct PostedEnvelope {
    torch::Tensor envelope;
    c10::intrusive_ptr<::c10d::Work> work;
  };
  std::map<std::pair<int, int>, PostedEnvelope> posted_;  // by (peer, tag)
  std::vector<InFlight> abandoned_;

  // A blocked send cannot see its peer die (Gloo fails it only at the timeout), so while this
  // rank waits, a watcher thread polls the store's failure count and aborts the wait as soon as
  // any rank reports a failure (publish_report). Idle, and free, when nothing waits.
  void watch();
  std::int64_t failures_at_start_ = 0;
  std::mutex watch_mutex_;
  std::condition_variable watch_cv_;
  c10::intrusive_ptr<::c10d::Work> watched_;
  bool aborted_ = false;
  bool stop_watching_ = false;
  std::thread watcher_;
};

}  // namespace accel::pipeline
