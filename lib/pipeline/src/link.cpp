#include "link.h"

#include <cstdio>
#include <cstring>
#include <thread>

#include "accel/core/error.h"
#include "accel/runtime/rendezvous.h"

namespace accel::pipeline {
namespace {

const std::string kFailureCount = "accel/pipeline/failures";
constexpr std::chrono::milliseconds kWatchInterval{20};

std::string report_key(int rank) { return "accel/pipeline/failed/" + std::to_string(rank); }

}  // namespace

Links::Links(const runtime::GroupHandle& group, Trace* trace, c10::Device device)
    : group_(group),
      trace_(trace),
      compute_(device),
      wire_(group.group && group.group->getBackendName() == "nccl" ? device : c10::Device(c10::kCPU)) {
  if (!group_.store) return;
  failures_at_start_ = group_.store->add(kFailureCount, 0);
  watcher_ = std::thread([this] { watch(); });
}

Links::~Links() {
  {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    stop_watching_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

void Links::watch() {
  std::unique_lock<std::mutex> lock(watch_mutex_);
  while (!stop_watching_) {
    watch_cv_.wait(lock, [&] { return stop_watching_ || watched_; });
    // The first look comes one interval into a wait: the common, short waits never touch the store.
    while (!stop_watching_ && watched_ && !aborted_) {
      const auto work = watched_;
      if (watch_cv_.wait_for(lock, kWatchInterval, [&] { return stop_watching_ || watched_ != work; })) break;
      lock.unlock();
      std::optional<std::int64_t> failures;
      try {
        failures = group_.store->add(kFailureCount, 0);
      } catch (const std::exception&) {
        // The store's host is gone; the wait's own timeout or error ends it.
      }
      lock.lock();
      if (failures && *failures > failures_at_start_ && watched_ == work) {
        aborted_ = true;
        work->abort();
      }
    }
    if (aborted_) watch_cv_.wait(lock, [&] { return stop_watching_ || !watched_; });
  }
}

void Links::wait(const c10::intrusive_ptr<::c10d::Work>& work, int peer, const char* what,
                 std::chrono::milliseconds timeout) {
  if (timeout.count() == 0) timeout = group_.timeout;
  if (watcher_.joinable()) {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    if (aborted_) throw PeerError("rank " + std::to_string(group_.rank) + ": " + failed_peers());
    watched_ = work;
  }
  watch_cv_.notify_all();
  bool completed = false;
  std::exception_ptr error;
  try {
    completed = work->wait(timeout);
  } catch (const std::exception&) {
    error = std::current_exception();
  }
  if (watcher_.joinable()) {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    watched_.reset();
  }
  watch_cv_.notify_all();
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      throw peer_error(what, peer, timeout, e);
    }
  }
  if (!completed) {
    group_.health->peer_failed = true;
    throw PeerError("rank " + std::to_string(group_.rank) + " stopped waiting to " + what + " rank " +
                    std::to_string(peer) + " because " + failed_peers());
  }
}

std::string Links::failed_peers() const {
  std::vector<std::string> reports;
  try {
    for (int r = 0; r < group_.world_size; ++r) {
      if (r == group_.rank || !group_.store->check({report_key(r)})) continue;
      const auto raw = group_.store->get(report_key(r));
      reports.emplace_back(raw.begin(), raw.end());
    }
  } catch (const std::exception&) {
    // The store's host is gone: say what is known.
  }
  if (reports.empty()) return "another rank reported a failure";
  std::string text = "another rank failed: " + reports.front();
  for (std::size_t i = 1; i < reports.size(); ++i) text += "; " + reports[i];
  return text;
}

// One wording for every transport failure, whether posting or waiting failed. The failure is
// also written to the group's store, because a rank that times out loses every connection at
// once: its peers then learn from the store which rank it was waiting for, and name that one.
PeerError Links::peer_error(const char* what, int peer, std::chrono::milliseconds timeout,
                            const std::exception& cause) {
  group_.health->peer_failed = true;
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f", timeout.count() / 1000.0);
  const std::string head = "rank " + std::to_string(group_.rank) + " could not " + what + " rank " + std::to_string(peer);
  const std::string own = head + ": rank " + std::to_string(peer) + " failed, exited or stopped answering within the " +
                          seconds + " s timeout (" + runtime::failure_reason(cause) + ")";
  publish_report(own);  // at once: a peer may be looking for it already
  const auto report = peer_report(peer);
  if (!report) return PeerError(own);
  const std::string text = head + ", which had failed itself: " + *report;
  publish_report(text);
  return PeerError(text);
}

void Links::publish_report(const std::string& text) {
  if (!group_.store) return;
  try {
    group_.store->set(report_key(group_.rank), std::vector<std::uint8_t>(text.begin(), text.end()));
    const auto failures = group_.store->add(kFailureCount, 1);
    // This rank's own report must not abort its last sends (the aborts it tells its peers).
    std::lock_guard<std::mutex> lock(watch_mutex_);
    failures_at_start_ = failures;
  } catch (const std::exception&) {
    // The store's host is gone: nobody is left to read the report.
  }
}

std::optional<std::string> Links::peer_report(int peer) const {
  if (!group_.store) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + kReportWait;
  try {
    while (!group_.store->check({report_key(peer)})) {
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const auto raw = group_.store->get(report_key(peer));
    return std::string(raw.begin(), raw.end());
  } catch (const std::exception&) {
    return std::nullopt;
  }
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

torch::Tensor Links::to_wire(const torch::Tensor& t) const {
  if (t.device() == wire_) return t;
  if (wire_.is_cpu()) {
    // Gloo moves host memory: a device tensor is staged through pinned memory.
    auto host = torch::empty(t.sizes(), t.options().device(torch::kCPU).pinned_memory(true));
    host.copy_(t);
    return host;
  }
  return t.to(wire_);
}

torch::Tensor Links::wire_buffer(std::int64_t size, c10::ScalarType dtype) const {
  // Received on the host for a device stage: pinned, so that the copy to the device is fast.
  const bool pinned = wire_.is_cpu() && compute_.is_cuda();
  return torch::empty({size}, torch::TensorOptions().dtype(dtype).device(wire_).pinned_memory(pinned));
}

void Links::send(int peer, int tag, const Message& message) {
  const auto start = Trace::now();
  std::vector<torch::Tensor> contiguous;
  std::int64_t payload_bytes = 0;
  for (const auto& t : message.tensors) {
    contiguous.push_back(to_wire(t.contiguous()));
    payload_bytes = aligned(payload_bytes) + tensor_bytes(contiguous.back());
  }
  const auto descriptor = describe_tensors(contiguous);
  std::vector<torch::Tensor> all{to_wire(encode_envelope(message, descriptor))};
  if (!descriptor_inline(descriptor)) all.push_back(to_wire(torch::tensor(descriptor, torch::kInt64)));
  // One payload message per micro-batch: a single tensor goes as it is, several are packed.
  if (contiguous.size() == 1) {
    all.push_back(contiguous.front().reshape({-1}).view(torch::kUInt8));
  } else if (payload_bytes > 0 && wire_.is_cpu()) {
    auto packed = torch::empty({payload_bytes}, torch::kUInt8);
    std::int64_t offset = 0;
    for (const auto& tensor : contiguous) {
      offset = aligned(offset);
      std::memcpy(packed.data_ptr<std::uint8_t>() + offset, tensor.data_ptr(), tensor_bytes(tensor));
      offset += tensor_bytes(tensor);
    }
    all.push_back(packed);
  } else if (payload_bytes > 0) {
    // On the device (NCCL) the same layout is packed by copies there.
    auto packed = torch::zeros({payload_bytes}, torch::TensorOptions().dtype(torch::kUInt8).device(wire_));
    std::int64_t offset = 0;
    for (const auto& tensor : contiguous) {
      offset = aligned(offset);
      packed.narrow(0, offset, tensor_bytes(tensor)).copy_(tensor.reshape({-1}).view(torch::kUInt8));
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
    posted.envelope = wire_buffer(kEnvelopeSlots, torch::kInt64);
    posted.work = post_recv(peer, tag, posted.envelope, timeout);
  }
  wait(posted.work, peer, "receive from", timeout);
  const auto envelope = posted.envelope.cpu();
  auto decoded = decode_envelope(envelope, peer);
  Message message = std::move(decoded.message);
  std::vector<std::int64_t> descriptor;
  if (decoded.inline_descriptor) {
    descriptor = inline_descriptor(envelope, decoded);
  } else {
    auto received = wire_buffer(decoded.descriptor_size, torch::kInt64);
    recv_into(peer, tag, received, timeout);
    received = received.cpu();
    descriptor.assign(received.data_ptr<std::int64_t>(), received.data_ptr<std::int64_t>() + decoded.descriptor_size);
  }
  const auto layouts = decode_descriptor(descriptor, decoded.num_tensors, peer);
  std::int64_t payload_bytes = 0;
  for (const auto& layout : layouts) payload_bytes = aligned(payload_bytes) + layout.bytes();
  auto payload = wire_buffer(payload_bytes, torch::kUInt8);
  c10::intrusive_ptr<::c10d::Work> payload_work;
  if (payload_bytes > 0) payload_work = post_recv(peer, tag, payload, timeout);
  // The next envelope's receive is posted now (after the payload's: receives on one tag match in
  // the order they were posted), so that its hand-shake overlaps this stage's compute. Only
  // after data: an END or ABORT is the last message of a call.
  if (message.kind == MessageKind::kData) {
    PostedEnvelope next;
    next.envelope = wire_buffer(kEnvelopeSlots, torch::kInt64);
    next.work = post_recv(peer, tag, next.envelope, timeout);
    posted_[{peer, tag}] = std::move(next);
  }
  if (payload_work) wait(payload_work, peer, "receive from", timeout);
  std::int64_t offset = 0;
  for (const auto& layout : layouts) {
    offset = aligned(offset);
    auto tensor = payload.slice(0, offset, offset + layout.bytes()).view(layout.dtype).view(layout.shape);
    message.tensors.push_back(tensor.device() == compute_ ? tensor : tensor.to(compute_, /*non_blocking=*/true));
    offset += layout.bytes();
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
