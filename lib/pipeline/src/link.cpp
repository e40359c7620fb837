#include "link.h"

#include <cstdio>

#include "accel/core/error.h"

namespace accel::pipeline {
namespace {

// Fixed fields, then an abort's text: an abort is one message, so it lands in the receive the
// peer already has posted even when the failing rank exits right after sending it.
constexpr std::int64_t kFixedSlots = 8;
constexpr std::int64_t kEnvelopeSlots = 128;
constexpr std::size_t kMaxAbortText = (kEnvelopeSlots - kFixedSlots) * sizeof(std::int64_t);

std::string describe_error(const std::exception& e) {
  if (auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

}  // namespace

Message Message::abort(int origin, std::string text) {
  Message message;
  message.kind = MessageKind::kAbort;
  message.origin = origin;
  if (text.size() > kMaxAbortText) text = text.substr(0, kMaxAbortText - 3) + "...";
  message.text = std::move(text);
  return message;
}

Links::Links(const runtime::GroupHandle& group, Trace* trace) : group_(group), trace_(trace) {}

void Links::wait(const c10::intrusive_ptr<::c10d::Work>& work, int peer, const char* what,
                 std::chrono::milliseconds timeout) {
  if (timeout.count() == 0) timeout = group_.timeout;
  try {
    work->wait(timeout);
  } catch (const std::exception& e) {
    throw peer_error(what, peer, timeout, e);
  }
}

// One wording for every transport failure, whether posting or waiting failed.
PeerError Links::peer_error(const char* what, int peer, std::chrono::milliseconds timeout,
                            const std::exception& cause) const {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f", timeout.count() / 1000.0);
  return PeerError("rank " + std::to_string(group_.rank) + " could not " + what + " rank " + std::to_string(peer) +
                   ": rank " + std::to_string(peer) + " failed, exited or stopped answering within the " + seconds +
                   " s timeout (" + describe_error(cause) + ")");
}

void Links::post_send(int peer, int tag, std::vector<torch::Tensor> tensors) {
  InFlight flight{peer, {}, {}};
  for (auto& tensor : tensors) {
    if (tensor.numel() == 0) continue;
    std::vector<torch::Tensor> one{tensor};
    try {
      flight.works.push_back(group_.group->send(one, peer, tag));
    } catch (const std::exception& e) {
      throw peer_error("send to", peer, group_.timeout, e);
    }
    flight.keep_alive.push_back(tensor);
  }
  in_flight_.push_back(std::move(flight));
}

namespace {

constexpr std::int64_t kAlignment = 64;  // payload offsets, so every tensor view is aligned

std::int64_t aligned(std::int64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

std::int64_t tensor_bytes(const torch::Tensor& t) { return t.numel() * static_cast<std::int64_t>(t.element_size()); }

}  // namespace

void Links::send(int peer, int tag, const Message& message) {
  const auto start = Trace::now();
  std::vector<std::int64_t> descriptor;
  std::vector<torch::Tensor> contiguous;
  std::int64_t payload_bytes = 0;
  for (const auto& t : message.tensors) {
    auto tensor = t.contiguous();
    descriptor.push_back(static_cast<std::int64_t>(tensor.scalar_type()));
    descriptor.push_back(tensor.dim());
    for (auto size : tensor.sizes()) descriptor.push_back(size);
    payload_bytes = aligned(payload_bytes) + tensor_bytes(tensor);
    contiguous.push_back(tensor);
  }
  const bool inline_descriptor = static_cast<std::int64_t>(descriptor.size()) <= kEnvelopeSlots - kFixedSlots;
  auto envelope = torch::zeros({kEnvelopeSlots}, torch::kInt64);
  auto* head = envelope.data_ptr<std::int64_t>();
  const std::int64_t fixed[kFixedSlots] = {static_cast<std::int64_t>(message.kind), message.batch, message.micro,
                                           static_cast<std::int64_t>(message.last_of_batch), message.origin,
                                           static_cast<std::int64_t>(message.tensors.size()),
                                           inline_descriptor ? -static_cast<std::int64_t>(descriptor.size())
                                                             : static_cast<std::int64_t>(descriptor.size()),
                                           static_cast<std::int64_t>(message.text.size())};
  std::copy(fixed, fixed + kFixedSlots, head);
  // The envelope's tail holds an abort's text, or else the descriptor when it fits.
  if (message.kind == MessageKind::kAbort) {
    std::memcpy(head + kFixedSlots, message.text.data(), std::min(message.text.size(), kMaxAbortText));
  } else if (inline_descriptor) {
    std::copy(descriptor.begin(), descriptor.end(), head + kFixedSlots);
  }
  std::vector<torch::Tensor> all{envelope};
  if (!inline_descriptor) all.push_back(torch::tensor(descriptor, torch::kInt64));
  // One payload message per micro-batch: a single tensor goes as it is, several are packed.
  if (contiguous.size() == 1) {
    all.push_back(contiguous.front().reshape({-1}).view(torch::kUInt8));
  } else if (payload_bytes > 0) {
    auto packed = torch::empty({payload_bytes}, torch::kUInt8);
    std::int64_t offset = 0;
    for (const auto& tensor : contiguous) {
      offset = aligned(offset);
      std::memcpy(packed.data_ptr<std::uint8_t>() + offset, tensor.data_ptr(), tensor_bytes(tensor));
      offset += tensor_bytes(tensor);
    }
    all.push_back(packed);
  }
  post_send(peer, tag, std::move(all));
  if (trace_) {
    trace_->add("send", "to " + std::to_string(peer) + " b" + std::to_string(message.batch) + " m" +
                            std::to_string(message.micro),
                start, Trace::now());
  }
}

c10::intrusive_ptr<::c10d::Work> Links::post_recv(int peer, int tag, torch::Tensor& tensor,
                                                  std::chrono::milliseconds timeout) {
  std::vector<torch::Tensor> one{tensor};
  try {
    return group_.group->recv(one, peer, tag);
  } catch (const std::exception& e) {
    throw peer_error("receive from", peer, timeout.count() ? timeout : group_.timeout, e);
  }
}

void Links::recv_into(int peer, int tag, torch::Tensor& tensor, std::chrono::milliseconds timeout) {
  if (tensor.numel() == 0) return;
  wait(post_recv(peer, tag, tensor, timeout), peer, "receive from", timeout);
}

Message Links::recv(int peer, int tag, std::chrono::milliseconds timeout) {
  const auto start = Trace::now();
  PostedEnvelope posted;
  auto found = posted_.find({peer, tag});
  if (found != posted_.end()) {
    posted = std::move(found->second);
    posted_.erase(found);
  } else {
    posted.envelope = torch::empty({kEnvelopeSlots}, torch::kInt64);
    posted.work = post_recv(peer, tag, posted.envelope, timeout);
  }
  wait(posted.work, peer, "receive from", timeout);
  const auto* head = posted.envelope.data_ptr<std::int64_t>();
  Message message;
  message.kind = static_cast<MessageKind>(head[0]);
  message.batch = head[1];
  message.micro = head[2];
  message.last_of_batch = head[3] != 0;
  message.origin = head[4];
  const auto num_tensors = head[5];
  torch::Tensor descriptor;
  if (head[6] <= 0) {
    descriptor = posted.envelope.slice(0, kFixedSlots, kFixedSlots - head[6]);
  } else {
    descriptor = torch::empty({head[6]}, torch::kInt64);
    recv_into(peer, tag, descriptor, timeout);
  }
  if (message.kind == MessageKind::kAbort) {
    message.text.assign(reinterpret_cast<const char*>(head + kFixedSlots),
                        std::min(static_cast<std::size_t>(head[7]), kMaxAbortText));
  }
  const auto* d = descriptor.data_ptr<std::int64_t>();
  std::vector<std::pair<std::vector<std::int64_t>, c10::ScalarType>> layouts;
  std::int64_t payload_bytes = 0;
  for (std::int64_t i = 0, at = 0; i < num_tensors; ++i) {
    const auto dtype = static_cast<c10::ScalarType>(d[at++]);
    const auto ndim = d[at++];
    std::vector<std::int64_t> shape(d + at, d + at + ndim);
    at += ndim;
    std::int64_t numel = 1;
    for (auto size : shape) numel *= size;
    payload_bytes = aligned(payload_bytes) + numel * static_cast<std::int64_t>(c10::elementSize(dtype));
    layouts.emplace_back(std::move(shape), dtype);
  }
  auto payload = torch::empty({payload_bytes}, torch::kUInt8);
  c10::intrusive_ptr<::c10d::Work> payload_work;
  if (payload_bytes > 0) payload_work = post_recv(peer, tag, payload, timeout);
  // The next envelope's receive is posted now (after the payload's: receives on one tag match in
  // the order they were posted), so that its hand-shake overlaps this stage's compute. Only
  // after data: an END or ABORT is the last message of a call.
  if (message.kind == MessageKind::kData) {
    PostedEnvelope next;
    next.envelope = torch::empty({kEnvelopeSlots}, torch::kInt64);
    next.work = post_recv(peer, tag, next.envelope, timeout);
    posted_[{peer, tag}] = std::move(next);
  }
  if (payload_work) wait(payload_work, peer, "receive from", timeout);
  std::int64_t offset = 0;
  for (const auto& [shape, dtype] : layouts) {
    offset = aligned(offset);
    std::int64_t numel = 1;
    for (auto size : shape) numel *= size;
    const auto bytes = numel * static_cast<std::int64_t>(c10::elementSize(dtype));
    message.tensors.push_back(payload.slice(0, offset, offset + bytes).view(dtype).view(shape));
    offset += bytes;
  }
  if (trace_) {
    trace_->add("recv", "from " + std::to_string(peer) + " b" + std::to_string(message.batch) + " m" +
                            std::to_string(message.micro),
                start, Trace::now());
  }
  return message;
}

void Links::wait_sends(std::size_t max_messages, std::chrono::milliseconds timeout) {
  while (in_flight_.size() > max_messages) {
    auto flight = std::move(in_flight_.front());
    in_flight_.pop_front();
    for (auto& work : flight.works) wait(work, flight.peer, "send to", timeout);
  }
}

void Links::abandon_sends() {
  for (auto& flight : in_flight_) abandoned_.push_back(std::move(flight));
  in_flight_.clear();
}

}  // namespace accel::pipeline
