#include "accel/pipeline/pipeline.h"

#include <algorithm>
#include <iostream>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "pipeline_impl.h"

namespace accel::pipeline {
namespace {

// Timing the example: blocks faster than this are run kRetimes more times and the fastest kept.
constexpr double kRetimeBelowSeconds = 0.05;
constexpr int kRetimes = 3;
constexpr int kAbortGraceMs = 3000;  // how long a failing rank waits for its abort to be received

std::string current_error_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return runtime::failure_reason(e);
  } catch (...) {
    return "unknown error";
  }
}

std::vector<Activations> split_batch(const Activations& inputs, int num_chunks) {
  const auto sizes = micro_batch_sizes(inputs[0].size(0), num_chunks);
  const auto count = static_cast<int>(sizes.size());
  std::vector<Activations> micros(count);
  for (const auto& t : inputs) {
    auto parts = t.split_with_sizes(sizes, 0);
    for (int i = 0; i < count; ++i) micros[i].push_back(parts[i]);
  }
  return micros;
}

Activations concat_outputs(const std::vector<Activations>& micros) {
  if (micros.size() == 1) return micros.front();
  Activations out;
  for (std::size_t j = 0; j < micros.front().size(); ++j) {
    std::vector<torch::Tensor> parts;
    for (std::size_t m = 0; m < micros.size(); ++m) {
      if (micros[m].size() != micros.front().size()) {
        throw Error("the last block returned " + std::to_string(micros[m].size()) + " tensors for micro-batch " +
                    std::to_string(m) + " but " + std::to_string(micros.front().size()) +
                    " for micro-batch 0; outputs must have the same structure for every micro-batch");
      }
      if (micros[m][j].dim() < 1) {
        throw Error("output " + std::to_string(j) +
                    " of the last block is a scalar; pipeline outputs are concatenated along dim 0 (batch)");
      }
      parts.push_back(micros[m][j]);
    }
    out.push_back(torch::cat(parts, 0));
  }
  return out;
}

std::int64_t count_parameters(const torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace

void check_batch(const Activations& inputs, const std::string& what) {
  if (inputs.empty()) throw UsageError(what + " holds no tensors; pass at least one input tensor");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& t = inputs[i];
    if (!t.defined()) throw UsageError(what + ": input " + std::to_string(i) + " is an undefined tensor");
    if (t.dim() < 1) {
      throw UsageError(what + ": input " + std::to_string(i) +
                       " is a scalar; every input needs a batch dimension (dim 0) to cut into micro-batches");
    }
    if (t.size(0) != inputs[0].size(0)) {
      throw UsageError(what + ": input " + std::to_string(i) + " has " + std::to_string(t.size(0)) +
                       " rows in dim 0 but input 0 has " + std::to_string(inputs[0].size(0)) +
                       "; every input is cut into micro-batches along dim 0");
    }
  }
  if (inputs[0].size(0) == 0) throw UsageError(what + " has no rows (dim 0 is empty); pass at least one row");
}

std::vector<std::int64_t> micro_batch_sizes(std::int64_t rows, int num_chunks) {
  const auto count = std::min<std::int64_t>(num_chunks, rows);
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(count), rows / count);
  for (std::int64_t i = 0; i < rows % count; ++i) ++sizes[static_cast<std::size_t>(i)];
  return sizes;
}

std::function<std::optional<Activations>()> once(const Activations& batch) {
  return [&batch, given = false]() mutable -> std::optional<Activations> {
    if (given) return std::nullopt;
    given = true;
    return batch;
  };
}

Activations Pipeline::Impl::timed_forward(std::size_t index, const Activations& x) {
  auto& block = *blocks[index].second;
  auto t0 = std::chrono::steady_clock::now();
  auto out = block.forward(x);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // A fast block's first run is mostly one-off costs (allocation, lazy set-up): time it again.
  if (seconds < kRetimeBelowSeconds) {
    std::vector<double> times;
    for (int r = 0; r < kRetimes; ++r) {
      t0 = std::chrono::steady_clock::now();
      out = block.forward(x);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    // The fastest run: a loaded machine only ever adds time, so the minimum is the block's cost.
    seconds = *std::min_element(times.begin(), times.end());
  }
  (*block_seconds)[first_block + index] = seconds;
  return out;
}

Activations Pipeline::Impl::run_stage(Activations x, std::int64_t batch, std::int64_t micro, models::KVCache* cache) {
  const auto start = Trace::now();
  if (build_error) std::rethrow_exception(build_error);  // peers hear of it through the abort
  for (auto& t : x) {
    if (t.device() != device) t = t.to(device, /*non_blocking=*/true);  // the caller's inputs, on stage 0
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    auto& [name, block] = blocks[i];
    // Generation picks its tokens from the last position only: a head that computes each position
    // alone gets just that one (at the first step, the prompt's last instead of all of them).
    if (cache && last() && i + 1 == blocks.size() && block->positionwise() && !x.empty() && x[0].defined() &&
        x[0].dim() == 3 && x[0].size(1) > 1)
      x[0] = x[0].narrow(1, x[0].size(1) - 1, 1);
    try {
      x = cache ? block->forward_cached(x, *cache) : block_seconds ? timed_forward(i, x) : block->forward(x);
    } catch (const std::exception& e) {
      throw Error("block '" + name + "' (rank " + std::to_string(rank) + ", stage " + std::to_string(rank) +
                  ") failed on " + (cache ? "step " : "batch ") + std::to_string(batch) + ", micro-batch " +
                  std::to_string(micro) + ": " + runtime::failure_reason(e));
    }
  }
  const auto end = Trace::now();
  compute_seconds += std::chrono::duration<double>(end - start).count();
  trace.add("compute", (cache ? "s" : "b") + std::to_string(batch) + " m" + std::to_string(micro), start, end);
  return x;
}

Pipeline::Impl::CallScope::CallScope(Impl& impl) : trace_(impl.trace) {
  if (!impl.broken.empty()) {
    throw PeerError("rank " + std::to_string(impl.rank) + ": this pipeline can no longer be used because an earlier "
                    "call lost a peer (" + impl.broken + "); prepare a new pipeline");
  }
  ++impl.calls;
}

Pipeline::Impl::CallScope::~CallScope() {
  try {
    trace_.write();
  } catch (const Error& e) {
    std::cerr << "accel pipeline: " << e.what() << "\n";
  }
}

void Pipeline::Impl::run(const Source& next_batch, const Sink& on_output, const RowsCheck& check_rows,
                          std::exception_ptr input_error) {
  CallScope scope(*this);
  torch::NoGradGuard no_grad;

  Call call;
  call.upstream_done = first();
  if (input_error) fail_locally(call, input_error);
  try {
    if (!call.failure && first()) run_first_stage(call, next_batch, on_output);
    if (!call.failure && !first()) run_later_stage(call, check_rows, on_output);
  } catch (const PeerError& e) {
    fail_fast(e.what());
  } catch (...) {
    fail_locally(call, std::current_exception());
  }
  finish_call(call, on_output);
}

void Pipeline::Impl::fail_locally(Call& call, std::exception_ptr error) {
  call.local_error = error;
  call.failure = Message::abort(rank, error_text_of(error));
}

std::string Pipeline::Impl::error_text_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (...) {
    return current_error_text();
  }
}

void Pipeline::Impl::send(int peer, int tag, Message message) {
  message.call = calls;
  links->send(peer, tag, message);
}

Message Pipeline::Impl::receive(int peer, int tag, std::chrono::milliseconds timeout) {
  Message message = links->recv(peer, tag, timeout);
  if (message.call != calls) {
    throw PeerError("rank " + std::to_string(rank) + " received a message of call #" + std::to_string(message.call) +
                    " from rank " + std::to_string(peer) + " during its own call #" + std::to_string(calls) +
                    ": the ranks' calls are out of step; every rank must make the same forward()/stream() calls "
                    "in the same order");
  }
  return message;
}

void Pipeline::Impl::deliver(Call& call, const Message& message, Activations out, const Sink& on_output) {
  call.batch_micros.push_back(std::move(out));
  if (!message.last_of_batch) return;
  auto batch_out = concat_outputs(call.batch_micros);
  call.batch_micros.clear();
  if (gather && num_stages > 1) call.outputs_to_gather.push_back(batch_out);
  on_output(static_cast<std::size_t>(message.batch), std::move(batch_out));
}

void Pipeline::Impl::pass_on(Call& call, Message message, const Sink& on_output) {
  message.tensors = run_stage(std::move(message.tensors), message.batch, message.micro);
  if (last()) {
    deliver(call, message, std::move(message.tensors), on_output);
  } else {
    send(rank + 1, kActivationTag, std::move(message));
    links->wait_sends(num_chunks);
  }
}

void Pipeline::Impl::run_first_stage(Call& call, const Source& next_batch, const Sink& on_output) {
  for (std::int64_t batch_index = 0;; ++batch_index) {
    auto batch = next_batch();
    if (!batch) return;
    check_batch(*batch, "batch " + std::to_string(batch_index));
    auto micros = split_batch(*batch, num_chunks);
    for (std::size_t m = 0; m < micros.size(); ++m) {
      Message message;
      message.batch = batch_index;
      message.micro = static_cast<std::int64_t>(m);
      message.last_of_batch = m + 1 == micros.size();
      message.batch_rows = (*batch)[0].size(0);
      message.tensors = std::move(micros[m]);
      pass_on(call, std::move(message), on_output);
    }
  }
}

void Pipeline::Impl::run_later_stage(Call& call, const RowsCheck& check_rows, const Sink& on_output) {
  while (true) {
    Message message = receive(rank - 1, kActivationTag);
    if (message.kind != MessageKind::kData) {
      call.upstream_done = true;
      if (message.kind == MessageKind::kAbort) call.failure = std::move(message);
      return;
    }
    if (message.micro == 0 && check_rows) check_rows(message.batch, message.batch_rows);
    pass_on(call, std::move(message), on_output);
  }
}

void Pipeline::Impl::finish_call(Call& call, const Sink& on_output) {
  settle(call, [&] {
    while (!call.upstream_done) call.upstream_done = receive(rank - 1, kActivationTag).kind != MessageKind::kData;
    if (!last()) send(rank + 1, kActivationTag, call.failure ? *call.failure : Message::end());
    if (last() && num_stages > 1) send_outputs(call);
    if (!last()) receive_outputs(call, on_output);
  });
}

void Pipeline::Impl::settle(Call& call, const std::function<void()>& closing) {
  try {
    closing();
    if (links) links->wait_sends(0);
  } catch (const PeerError& e) {
    broken = e.what();
    if (links) links->abandon_sends();
    if (call.local_error) std::rethrow_exception(call.local_error);
    throw;
  }
  if (call.local_error) std::rethrow_exception(call.local_error);
  if (call.failure) throw RemoteFailure(rank, static_cast<int>(call.failure->origin), call.failure->text);
}

void Pipeline::Impl::send_outputs(const Call& call) {
  for (int r = 0; r + 1 < num_stages; ++r) {
    if (call.failure) {
      send(r, kOutputTag, *call.failure);
      continue;
    }
    for (std::size_t b = 0; b < call.outputs_to_gather.size(); ++b) {
      Message out;
      out.batch = static_cast<std::int64_t>(b);
      out.tensors = call.outputs_to_gather[b];
      send(r, kOutputTag, std::move(out));
    }
    send(r, kOutputTag, Message::end());
  }
}

void Pipeline::Impl::receive_outputs(Call& call, const Sink& on_output) {
  while (true) {
    // The last rank answers only after everything upstream of it: allow it a timeout of its
    // own beyond ours, so that a rank further down that times out can tell us why.
    Message message = receive(num_stages - 1, kOutputTag, 2 * links->timeout());
    if (message.kind == MessageKind::kEnd) return;
    if (message.kind == MessageKind::kAbort) {
      if (!call.failure) call.failure = std::move(message);
      return;
    }
    if (call.local_error) continue;
    try {
      on_output(static_cast<std::size_t>(message.batch), std::move(message.tensors));
    } catch (...) {
      call.local_error = std::current_exception();
    }
  }
}

[[noreturn]] void Pipeline::Impl::fail_fast(const std::string& text) {
  broken = text;
  if (!links) throw;
  links->abandon_sends();
  try {
    if (!last()) send(rank + 1, kActivationTag, Message::abort(rank, text));
    if (last() && generating) send(0, kTokenTag, Message::abort(rank, text));
    if (last()) {
      for (int r = 0; r + 1 < num_stages; ++r) send(r, kOutputTag, Message::abort(rank, text));
    }
    links->wait_sends(0, std::min(links->timeout(), std::chrono::milliseconds(kAbortGraceMs)));
  } catch (const PeerError&) {
    // The link that broke may be one of these; the error being raised already names it.
  }
  links->abandon_sends();
  throw;
}


Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;
Pipeline::~Pipeline() = default;

namespace {

// This rank's own check of a call's batches: the exception that refuses them, if any.
std::exception_ptr refusal(const std::vector<Activations>& batches, const std::string& what) {
  try {
    for (std::size_t b = 0; b < batches.size(); ++b) {
      check_batch(batches[b], batches.size() == 1 ? what : what + " " + std::to_string(b));
    }
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

// Compares the batches rank 0 sends with this rank's own (every rank passes the same inputs).
Pipeline::Impl::RowsCheck same_rows_as(const std::vector<Activations>& batches, int rank) {
  return [&batches, rank](std::int64_t batch, std::int64_t rows) {
    const auto b = static_cast<std::size_t>(batch);
    if (b >= batches.size()) {
      throw UsageError("rank " + std::to_string(rank) + " was given " + std::to_string(batches.size()) +
                       " batch(es) but rank 0 sent batch " + std::to_string(batch) +
                       "; every rank must pass the same inputs");
    }
    const auto own = batches[b][0].size(0);
    if (own != rows) {
      throw UsageError("rank " + std::to_string(rank) + "'s batch " + std::to_string(batch) + " has " +
                       std::to_string(own) + " rows but rank 0's has " + std::to_string(rows) +
                       "; every rank must pass the same inputs");
    }
  };
}

}  // namespace

Activations Pipeline::forward(const Activations& inputs) {
  const std::vector<Activations> batches{inputs};
  Activations result;
  impl_->run(once(inputs), [&](std::size_t, Activations out) { result = std::move(out); },
             same_rows_as(batches, impl_->rank), refusal(batches, "forward(): the batch"));
  return result;
}

Activations positional_inputs(const NamedActivations& inputs, const std::vector<std::string>& names) {
  if (names.empty()) {
    throw UsageError("named inputs need PipelineOptions::input_names: the order in which the first block takes them");
  }
  Activations ordered;
  for (const auto& name : names) {
    const auto found = inputs.find(name);
    if (found == inputs.end()) {
      throw UsageError("named input '" + name + "' is missing; the pipeline takes: " + text::join(names, ", "));
    }
    ordered.push_back(found->second);
  }
  for (const auto& [name, tensor] : inputs) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      throw UsageError("named input '" + name + "' is not an input of this pipeline; it takes: " + text::join(names, ", "));
    }
  }
  return ordered;
}

NamedActivations Pipeline::forward_named(const NamedActivations& inputs) {
  // A refused input still runs the call (empty inputs fail it on every rank), so ranks stay in step.
  Activations ordered;
  std::exception_ptr refused;
  try {
    ordered = positional_inputs(inputs, impl_->input_names);
  } catch (const UsageError&) {
    refused = std::current_exception();
  }
  const std::vector<Activations> batches{ordered};
  Activations result;
  impl_->run(once(ordered), [&](std::size_t, Activations out) { result = std::move(out); },
             same_rows_as(batches, impl_->rank), refused ? refused : refusal(batches, "forward_named(): the batch"));
  NamedActivations named;
  const auto& names = impl_->output_names;
  if (!result.empty() && !names.empty() && names.size() != result.size()) {
    throw UsageError("PipelineOptions::output_names lists " + std::to_string(names.size()) + " name(s) (" +
                     text::join(names, ", ") + ") but the model returns " + std::to_string(result.size()) + " output(s)");
  }
  for (std::size_t i = 0; i < result.size(); ++i) named.emplace(names.empty() ? std::to_string(i) : names[i], result[i]);
  return named;
}

std::vector<Activations> Pipeline::stream(const std::vector<Activations>& batches) {
  std::vector<Activations> results(impl_->is_output_rank() ? batches.size() : 0);
  std::size_t next = 0;
  impl_->run(
      [&]() -> std::optional<Activations> {
        if (next == batches.size()) return std::nullopt;
        return batches[next++];
      },
      [&](std::size_t b, Activations out) { results.at(b) = std::move(out); }, same_rows_as(batches, impl_->rank),
      refusal(batches, "stream(): batch"));
  return results;
}

void Pipeline::stream(const std::function<std::optional<Activations>()>& next_batch,
                      const std::function<void(std::size_t, Activations)>& on_output) {
  impl_->run(next_batch, on_output, nullptr);
}

const Plan& Pipeline::plan() const { return impl_->plan; }
int Pipeline::stage() const { return impl_->rank; }
int Pipeline::num_stages() const { return impl_->num_stages; }
int Pipeline::num_chunks() const { return impl_->num_chunks; }
double Pipeline::compute_seconds() const { return impl_->compute_seconds; }

std::int64_t Pipeline::resident_parameter_count() const {
  std::int64_t n = 0;
  for (const auto& entry : impl_->blocks) n += count_parameters(*entry.second);
  return n;
}

}  // namespace accel::pipeline
