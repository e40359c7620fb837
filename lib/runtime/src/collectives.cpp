// PartialState's collectives: byte exchanges for objects, tensor gather/broadcast/reduce/pad,
// split of tensors. Every collective runs under guarded(), which turns a transport failure into
// a PeerError naming the ranks that never reached the collective.
#include <torch/types.h>

#include <algorithm>
#include <cstring>

#include "accel/core/text.h"
#include "accel/runtime/partial_state.h"
#include "accel/runtime/rendezvous.h"
#include "shared_state.h"

namespace accel {
namespace {

using detail::SharedState;

std::string failure_message(SharedState& s, const char* op, std::uint64_t seq, const std::string& reason) {
  const std::string head =
      std::string(op) + " (collective #" + std::to_string(seq) + ") failed on rank " + std::to_string(s.group.rank);
  std::vector<std::string> behind;
  try {
    if (s.group.store) behind = runtime::ranks_behind(*s.group.store, s.group.world_size, seq);
  } catch (const std::exception&) {
    return head + ": rank 0, which hosts the rendezvous store, is unreachable (it has probably died); " + reason;
  }
  if (behind.empty()) {
    return head + " after every rank had entered it (a rank probably died during the transfer); " + reason;
  }
  return head + ": " + text::join(behind, ", ") + " never reached it (died, or is stuck elsewhere); " + reason;
}

constexpr std::int64_t kOpNameBytes = 32;

// Debug mode: every rank's operation for collective `seq`, compared before any data moves.
void verify_same_operation(SharedState& s, const char* op, std::uint64_t seq) {
  auto mine = at::zeros({kOpNameBytes}, at::kByte);
  std::strncpy(reinterpret_cast<char*>(mine.data_ptr<std::uint8_t>()), op, kOpNameBytes - 1);
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < s.group.world_size; ++r) outputs[0].push_back(at::empty_like(mine));
  std::vector<at::Tensor> inputs{mine};
  s.group.group->allgather(outputs, inputs)->wait();
  auto name_of = [&](int r) { return std::string(reinterpret_cast<const char*>(outputs[0][r].data_ptr<std::uint8_t>())); };
  for (int r = 1; r < s.group.world_size; ++r) {
    if (name_of(r) != name_of(0)) {
      throw UsageError("debug mode: collective #" + std::to_string(seq) + " is " + name_of(0) + " on rank 0 but " +
                       name_of(r) + " on rank " + std::to_string(r) +
                       "; every rank must call the same collectives in the same order");
    }
  }
}

template <class F>
auto guarded(SharedState& s, const char* op, F&& body) -> decltype(body()) {
  if (!s.group.group) {
    throw UsageError(std::string(op) +
                     ": the process group was destroyed (destroy_process_group()); no collective may follow it");
  }
  const std::uint64_t seq = ++s.sequence;
  try {
    if (s.group.store) runtime::record_progress(*s.group.store, s.group.rank, seq, op);
    if (s.debug) verify_same_operation(s, op, seq);
    return body();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    s.group.health->peer_failed = true;
    throw PeerError(failure_message(s, op, seq, runtime::failure_reason(e)));
  }
}

c10::Device comm_device(const SharedState& s) { return s.backend == Backend::kNccl ? s.device : c10::Device(c10::kCPU); }

std::vector<at::Tensor> all_gather_equal(SharedState& s, const at::Tensor& tensor) {
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < s.group.world_size; ++r) outputs[0].push_back(at::empty_like(tensor));
  std::vector<at::Tensor> inputs{tensor};
  s.group.group->allgather(outputs, inputs)->wait();
  return outputs[0];
}

void broadcast_in_place(SharedState& s, at::Tensor& tensor, int from) {
  std::vector<at::Tensor> tensors{tensor};
  ::c10d::BroadcastOptions options;
  options.rootRank = from;
  s.group.group->broadcast(tensors, options)->wait();
}

void require_defined(const at::Tensor& t, const char* op) {
  if (!t.defined()) throw UsageError(std::string(op) + ": the tensor is undefined; pass a tensor with data");
}

// dtype followed by the sizes: what ranks compare before moving tensor data.
using TensorMeta = std::vector<std::int64_t>;

TensorMeta meta_of(const at::Tensor& t) {
  TensorMeta meta{static_cast<std::int64_t>(t.scalar_type())};
  for (auto d : t.sizes()) meta.push_back(d);
  return meta;
}

std::string describe(const TensorMeta& meta) {
  std::vector<std::string> dims;
  for (std::size_t i = 1; i < meta.size(); ++i) dims.push_back(std::to_string(meta[i]));
  return std::string(c10::toString(static_cast<c10::ScalarType>(meta[0]))) + " tensor of shape [" +
         text::join(dims, ", ") + "]";
}

// Every rank's dtype and shape; throws the same UsageError on every rank when they disagree in
// anything but dimension `free_dim` (-1: they must agree entirely).
std::vector<TensorMeta> agreed_meta(const PartialState& state, const at::Tensor& t, const char* op,
                                    std::int64_t free_dim) {
  std::vector<TensorMeta> metas;
  const auto parts = state.all_gather_bytes(encode(meta_of(t)), op);
  for (std::size_t r = 0; r < parts.size(); ++r) metas.push_back(decode<TensorMeta>(parts[r], static_cast<int>(r)));
  for (std::size_t r = 1; r < metas.size(); ++r) {
    bool same = metas[r].size() == metas[0].size() && metas[r][0] == metas[0][0];
    for (std::size_t i = 1; same && i < metas[r].size(); ++i) {
      same = static_cast<std::int64_t>(i - 1) == free_dim || metas[r][i] == metas[0][i];
    }
    if (!same) {
      throw UsageError(std::string(op) + ": rank " + std::to_string(r) + " passed a " + describe(metas[r]) +
                       " but rank 0 passed a " + describe(metas[0]) + "; the dtype and " +
                       (free_dim < 0 ? std::string("every dimension")
                                     : "every dimension except dim " + std::to_string(free_dim)) +
                       " must agree across ranks");
    }
  }
  return metas;
}

// t grown along dim to `size` with `value`, before or after the existing entries.
at::Tensor pad_to(const at::Tensor& t, std::int64_t dim, std::int64_t size, double value, bool pad_first) {
  const auto missing = size - t.size(dim);
  if (missing <= 0) return t;
  auto shape = t.sizes().vec();
  shape[dim] = missing;
  const auto fill = at::full(shape, value, t.options());
  return pad_first ? at::cat({fill, t}, dim) : at::cat({t, fill}, dim);
}

}  // namespace

namespace detail {

std::size_t split_length(const at::Tensor& t) {
  require_defined(t, "split_between_processes");
  if (t.dim() == 0) {
    throw UsageError("split_between_processes: a 0-d tensor (a single value) cannot be split; pass a tensor whose "
                     "first dimension indexes the items");
  }
  return static_cast<std::size_t>(t.size(0));
}

at::Tensor take_chunk(const at::Tensor& t, const ChunkPlan& plan) {
  auto chunk = t.narrow(0, static_cast<std::int64_t>(plan.start), static_cast<std::int64_t>(plan.count));
  if (plan.padded == plan.count) return chunk;
  const auto last = t.narrow(0, t.size(0) - 1, 1);  // the input's last row, as accelerate pads
  auto shape = last.sizes().vec();
  shape[0] = static_cast<std::int64_t>(plan.padded - plan.count);
  return at::cat({chunk, last.expand(shape)}, 0);
}

}  // namespace detail

Split<at::Tensor> PartialState::split_between_processes(const at::Tensor& input, bool apply_padding) const {
  return split_sequence(input, apply_padding);
}

void PartialState::wait_for_everyone() const {
  if (!distributed()) return;
  auto& s = *impl_;
  guarded(s, "wait_for_everyone", [&] { s.group.group->barrier()->wait(); });
}

std::vector<Bytes> PartialState::all_gather_bytes(const Bytes& mine, const char* op) const {
  if (!distributed()) return {mine};
  auto& s = *impl_;
  return guarded(s, op, [&] {
    const auto device = comm_device(s);
    const auto sizes =
        all_gather_equal(s, at::full({1}, static_cast<std::int64_t>(mine.size()), at::dtype(at::kLong).device(device)));
    std::vector<std::int64_t> lengths;
    for (const auto& t : sizes) lengths.push_back(t.item<std::int64_t>());
    // Gloo moves equal-sized buffers only: pad everyone to the longest (at least 1 byte).
    const auto longest = std::max<std::int64_t>(1, *std::max_element(lengths.begin(), lengths.end()));
    auto payload = at::zeros({longest}, at::kByte);
    if (!mine.empty()) std::memcpy(payload.data_ptr<std::uint8_t>(), mine.data(), mine.size());
    const auto parts = all_gather_equal(s, payload.to(device));
    std::vector<Bytes> out;
    for (std::size_t r = 0; r < parts.size(); ++r) {
      const auto part = parts[r].cpu();
      const auto* begin = part.data_ptr<std::uint8_t>();
      out.emplace_back(begin, begin + lengths[r]);
    }
    return out;
  });
}

Bytes PartialState::broadcast_bytes(const Bytes& mine, int from, const char* op) const {
  const bool source = is_process(from, op);
  if (!distributed()) return mine;
  auto& s = *impl_;
  return guarded(s, op, [&] {
    const auto device = comm_device(s);
    auto length = at::full({1}, static_cast<std::int64_t>(source ? mine.size() : 0), at::dtype(at::kLong).device(device));
    broadcast_in_place(s, length, from);
    const auto n = length.item<std::int64_t>();
    auto payload = at::zeros({std::max<std::int64_t>(1, n)}, at::kByte);
    if (source && !mine.empty()) std::memcpy(payload.data_ptr<std::uint8_t>(), mine.data(), mine.size());
    payload = payload.to(device);
    broadcast_in_place(s, payload, from);
    const auto host = payload.cpu();
    const auto* begin = host.data_ptr<std::uint8_t>();
    return Bytes(begin, begin + n);
  });
}

at::Tensor PartialState::gather(const at::Tensor& tensor) const {
  require_defined(tensor, "gather");
  const auto t = tensor.dim() == 0 ? tensor.reshape({1}) : tensor;
  if (!distributed()) return t;
  const auto metas = agreed_meta(*this, t, "gather", 0);
  std::int64_t longest = 1;
  for (const auto& m : metas) longest = std::max(longest, m[1]);
  auto& s = *impl_;
  return guarded(s, "gather", [&] {
    const auto parts = all_gather_equal(s, pad_to(t.to(comm_device(s)), 0, longest, 0, false).contiguous());
    std::vector<at::Tensor> rows;
    for (std::size_t r = 0; r < parts.size(); ++r) rows.push_back(parts[r].narrow(0, 0, metas[r][1]));
    return at::cat(rows, 0).to(tensor.device());
  });
}

at::Tensor PartialState::broadcast(const at::Tensor& tensor, int from) const {
  const bool source = is_process(from, "broadcast");
  if (source) require_defined(tensor, "broadcast");
  if (!distributed()) return tensor;
  const auto meta =
      decode<TensorMeta>(broadcast_bytes(source ? encode(meta_of(tensor)) : Bytes{}, from, "broadcast"), from);
  auto& s = *impl_;
  return guarded(s, "broadcast", [&] {
    const auto device = comm_device(s);
    const std::vector<std::int64_t> shape(meta.begin() + 1, meta.end());
    auto buffer = source ? tensor.to(device).contiguous()
                         : at::empty(shape, at::dtype(static_cast<c10::ScalarType>(meta[0])).device(device));
    broadcast_in_place(s, buffer, from);
    return buffer.to(tensor.defined() ? tensor.device() : this->device());
  });
}

at::Tensor PartialState::reduce(const at::Tensor& tensor, ReduceOp op, double scale) const {
  require_defined(tensor, "reduce");
  // The same finishing steps alone and distributed, so the result's dtype never depends on the
  // number of processes.
  auto finish = [&](at::Tensor sum_or_extreme) {
    if (op == ReduceOp::Mean) sum_or_extreme = at::div(sum_or_extreme, static_cast<double>(num_processes()));
    if (scale != 1.0) sum_or_extreme = sum_or_extreme * scale;
    return sum_or_extreme.to(tensor.device());
  };
  if (!distributed()) return finish(tensor.clone());
  agreed_meta(*this, tensor, "reduce", -1);
  auto& s = *impl_;
  return guarded(s, "reduce", [&] {
    auto buffer = tensor.to(comm_device(s)).contiguous().clone();
    ::c10d::AllreduceOptions options;
    options.reduceOp = op == ReduceOp::Max   ? ::c10d::ReduceOp::MAX
                       : op == ReduceOp::Min ? ::c10d::ReduceOp::MIN
                                             : ::c10d::ReduceOp::SUM;  // Gloo has no mean: sum, then divide
    std::vector<at::Tensor> tensors{buffer};
    s.group.group->allreduce(tensors, options)->wait();
    return finish(buffer);
  });
}

at::Tensor PartialState::pad_across_processes(const at::Tensor& tensor, std::int64_t dim, double pad_value,
                                              bool pad_first) const {
  require_defined(tensor, "pad_across_processes");
  if (tensor.dim() == 0) return tensor;
  const auto d = dim < 0 ? dim + tensor.dim() : dim;
  if (d < 0 || d >= tensor.dim()) {
    throw UsageError("pad_across_processes: dim " + std::to_string(dim) + " is out of range for a tensor with " +
                     std::to_string(tensor.dim()) + " dimension(s)");
  }
  if (!distributed()) return tensor;
  std::int64_t longest = 0;
  for (const auto& m : agreed_meta(*this, tensor, "pad_across_processes", d)) longest = std::max(longest, m[d + 1]);
  return pad_to(tensor, d, longest, pad_value, pad_first);
}

void PartialState::agree_structure(const std::string& structure, const char* op) const {
  if (!distributed()) return;
  const auto parts = all_gather_bytes(encode(structure), op);
  for (std::size_t r = 1; r < parts.size(); ++r) {
    const auto theirs = decode<std::string>(parts[r], static_cast<int>(r));
    const auto main = decode<std::string>(parts[0], 0);
    if (theirs != main) {
      throw UsageError(std::string(op) + ": rank " + std::to_string(r) + " passed nested data shaped " + theirs +
                       " but rank 0 passed " + main + "; every rank must pass the same structure");
    }
  }
}

at::Tensor PartialState::gather_unpadded_rows(const at::Tensor& results, std::size_t num_real, std::size_t num_items,
                                              std::size_t total) const {
  require_defined(results, "gather_unpadded");
  const auto rows = results.dim() == 0 ? 0 : static_cast<std::size_t>(results.size(0));
  if (results.dim() == 0 || rows != num_items) throw_split_mismatch(rows, num_items);
  auto all = gather(results.narrow(0, 0, static_cast<std::int64_t>(num_real)));
  if (static_cast<std::size_t>(all.size(0)) != total) throw_total_mismatch(static_cast<std::size_t>(all.size(0)), total);
  return all;
}

}  // namespace accel
