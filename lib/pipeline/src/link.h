#pragma once
// Point-to-point messages between pipeline ranks over the group's send/recv. A message is a small
// fixed envelope, a descriptor (dtype, ndim and shape of each tensor) and the tensors themselves,
// so shapes and micro-batch sizes may change with every message and nothing is padded.
#include <torch/torch.h>

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "accel/core/error.h"
#include "accel/runtime/group.h"
#include "trace.h"

namespace accel::pipeline {

enum class MessageKind : std::int64_t {
  kData = 1,   // one micro-batch's activations (or, on the output channel, one batch's outputs)
  kEnd = 2,    // no more messages on this channel for this call
  kAbort = 3,  // a rank failed: `origin` names it, `text` is its message
};

struct Message {
  MessageKind kind = MessageKind::kData;
  std::int64_t batch = 0;
  std::int64_t micro = 0;
  bool last_of_batch = false;
  std::int64_t origin = -1;
  std::vector<torch::Tensor> tensors;
  std::string text;  // kAbort only; travels inside the envelope (truncated to fit)

  static Message abort(int origin, std::string text);
};

// Tags keep the activation channel (rank k -> k+1) apart from the output channel (last rank ->
// every other rank).
inline constexpr int kActivationTag = 1;
inline constexpr int kOutputTag = 2;

class Links {
 public:
  Links(const runtime::GroupHandle& group, Trace* trace);

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
  void post_send(int peer, int tag, std::vector<torch::Tensor> tensors);
  c10::intrusive_ptr<::c10d::Work> post_recv(int peer, int tag, torch::Tensor& tensor,
                                             std::chrono::milliseconds timeout);
  void recv_into(int peer, int tag, torch::Tensor& tensor, std::chrono::milliseconds timeout);
  PeerError peer_error(const char* what, int peer, std::chrono::milliseconds timeout, const std::exception& cause) const;
  void wait(const c10::intrusive_ptr<::c10d::Work>& work, int peer, const char* what, std::chrono::milliseconds timeout);

  runtime::GroupHandle group_;
  Trace* trace_;
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
};

}  // namespace accel::pipeline
