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

void Links::send(int peer, int tag, const Message& message) {
  const auto start = Trace::now();
  std::vector<std::int64_t> descriptor;
  std::vector<torch::Tensor> payload;
  for (const auto& t : message.tensors) {
    auto tensor = t.contiguous();
    descriptor.push_back(static_cast<std::int64_t>(tensor.scalar_type()));
    descriptor.push_back(tensor.dim());
    for (auto size : tensor.sizes()) descriptor.push_back(size);
    payload.push_back(tensor);
  }
  auto envelope = torch::zeros({kEnvelopeSlots}, torch::kInt64);
  auto* head = envelope.data_ptr<std::int64_t>();
  const std::int64_t fixed[kFixedSlots] = {static_cast<std::int64_t>(message.kind), message.batch, message.micro,
                                           static_cast<std::int64_t>(message.last_of_batch), message.origin,
                                           static_cast<std::int64_t>(message.tensors.size()),
                                           static_cast<std::int64_t>(descriptor.size()),
                                           static_cast<std::int64_t>(message.text.size())};
  std::copy(fixed, fixed + kFixedSlots, head);
  std::memcpy(head + kFixedSlots, message.text.data(), std::min(message.text.size(), kMaxAbortText));
  std::vector<torch::Tensor> all{envelope};
  if (!descriptor.empty()) all.push_back(torch::tensor(descriptor, torch::kInt64));
  all.insert(all.end(), payload.begin(), payload.end());
  post_send(peer, tag, std::move(all));
  if (trace_) {
    trace_->add("send", "to " + std::to_string(peer) + " b" + std::to_string(message.batch) + " m" +
                            std::to_string(message.micro),
                start, Trace::now());
  }
}

void Links::recv_into(int peer, int tag, torch::Tensor& tensor, std::chrono::milliseconds timeout) {
  if (tensor.numel() == 0) return;
  std::vector<torch::Tensor> one{tensor};
  c10::intrusive_ptr<::c10d::Work> work;
  try {
    work = group_.group->recv(one, peer, tag);
  } catch (const std::exception& e) {
    throw peer_error("receive from", peer, timeout.count() ? timeout : group_.timeout, e);
  }
  wait(work, peer, "receive from", timeout);
}

Message Links::recv(int peer, int tag, std::chrono::milliseconds timeout) {
  const auto start = Trace::now();
  auto envelope = torch::empty({kEnvelopeSlots}, torch::kInt64);
  recv_into(peer, tag, envelope, timeout);
  const auto* head = envelope.data_ptr<std::int64_t>();
  Message message;
  message.kind = static_cast<MessageKind>(head[0]);
  message.batch = head[1];
  message.micro = head[2];
  message.last_of_batch = head[3] != 0;
  message.origin = head[4];
  const auto num_tensors = head[5];
  message.text.assign(reinterpret_cast<const char*>(head + kFixedSlots),
                      std::min(static_cast<std::size_t>(head[7]), kMaxAbortText));
  auto descriptor = torch::empty({head[6]}, torch::kInt64);
  recv_into(peer, tag, descriptor, timeout);
  const auto* d = descriptor.data_ptr<std::int64_t>();
  for (std::int64_t i = 0, at = 0; i < num_tensors; ++i) {
    const auto dtype = static_cast<c10::ScalarType>(d[at++]);
    const auto ndim = d[at++];
    std::vector<std::int64_t> shape(d + at, d + at + ndim);
    at += ndim;
    auto tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    recv_into(peer, tag, tensor, timeout);
    message.tensors.push_back(tensor);
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
