#include "accel/pipeline/pipeline.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <torch/cuda.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/hardware.h"
#include "accel/core/text.h"
#include "accel/runtime/group.h"
#include "accel/runtime/partial_state.h"
#include "link.h"
#include "trace.h"

namespace accel::pipeline {
namespace {

// Timing the example: blocks faster than this are run kRetimes more times and the median kept.
constexpr double kRetimeBelowSeconds = 0.05;
constexpr int kRetimes = 3;
constexpr int kAbortGraceMs = 3000;  // how long a failing rank waits for its abort to be received

// Another rank failed and told this one; `text` is that rank's own message.
class RemoteFailure : public PeerError {
 public:
  RemoteFailure(int self, int origin, const std::string& text)
      : PeerError("rank " + std::to_string(self) + " stopped because rank " + std::to_string(origin) +
                  " failed: " + text),
        text_(text) {}
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

std::string error_text(const std::exception& e) {
  if (auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

std::string current_error_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return error_text(e);
  } catch (...) {
    return "unknown error";
  }
}

// Checks a batch, so bad input fails before anything of it is sent.
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

// Micro-batch sizes differ by at most one (10 rows in 4 chunks: 3, 3, 2, 2); nothing is padded.
// A batch of fewer rows than num_chunks runs as one micro-batch per row.
std::vector<Activations> split_batch(const Activations& inputs, int num_chunks) {
  const auto rows = inputs[0].size(0);
  const auto count = static_cast<int>(std::min<std::int64_t>(num_chunks, rows));
  std::vector<std::int64_t> sizes(count, rows / count);
  for (std::int64_t i = 0; i < rows % count; ++i) ++sizes[i];
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

// A batch source that yields `batch` once.
std::function<std::optional<Activations>()> once(const Activations& batch) {
  return [&batch, given = false]() mutable -> std::optional<Activations> {
    if (given) return std::nullopt;
    given = true;
    return batch;
  };
}

std::int64_t count_parameters(const torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

// Memory for weights one rank may use when "auto" balances: the machine's memory shared by the
// processes on it.
std::int64_t default_stage_bytes(int world_size) {
  int local_processes = world_size;
  try {
    auto world = env::detect_world();
    if (world.distributed()) local_processes = world.local_world_size;
  } catch (const Error&) {
    // A malformed launcher environment is reported by the runtime; the world size is a safe bound.
  }
  const auto memory = hardware::probe().memory_bytes;
  return memory == 0 ? 0 : static_cast<std::int64_t>(memory / std::max(1, local_processes));
}

std::string trace_file_name(double start_ms, double pid) {
  const auto seconds = static_cast<std::time_t>(start_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[64];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
  return std::string("pipeline-") + stamp + "-" + std::to_string(static_cast<long long>(pid));
}

// Measured block times with the noise between identical blocks removed: blocks of equal
// parameter count (a stack of transformer layers) all get their median, so that "auto" cuts
// the same way on every run instead of following which layer happened to be timed slower.
std::vector<double> steady_block_times(const std::vector<BlockInfo>& blocks, std::vector<double> seconds) {
  std::map<std::int64_t, std::vector<double>> by_size;
  for (std::size_t i = 0; i < blocks.size(); ++i) by_size[blocks[i].parameter_count].push_back(seconds[i]);
  for (auto& [size, times] : by_size) std::sort(times.begin(), times.end());
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto& times = by_size[blocks[i].parameter_count];
    seconds[i] = times[times.size() / 2];
  }
  return seconds;
}

}  // namespace

class Pipeline::Impl {
 public:
  using Source = std::function<std::optional<Activations>()>;
  using Sink = std::function<void(std::size_t, Activations)>;

  runtime::GroupHandle group;
  c10::Device device{c10::kCPU};
  int rank = 0;
  int num_stages = 1;
  int num_chunks = 1;
  bool gather = false;
  std::vector<std::string> input_names, output_names;
  Plan plan;
  std::vector<std::pair<std::string, std::shared_ptr<models::Block>>> blocks;
  std::exception_ptr build_error;            // raised in the first stage run, so peers hear of it
  std::vector<double>* block_seconds = nullptr;  // set while profiling the example
  std::size_t first_block = 0;
  double compute_seconds = 0;
  Trace trace;
  std::unique_ptr<Links> links;
  std::int64_t calls = 0;  // numbers this pipeline's calls alike on every rank
  std::string broken;      // why no further call can run (a peer was lost); empty: usable

  bool first() const { return rank == 0; }
  bool last() const { return rank == num_stages - 1; }
  bool is_output_rank() const { return last() || gather; }

  Activations run_stage(Activations x, std::int64_t batch, std::int64_t micro) {
    const auto start = Trace::now();
    if (build_error) std::rethrow_exception(build_error);  // peers hear of it through the abort
    for (auto& t : x) {
      if (t.device() != device) t = t.to(device, /*non_blocking=*/true);  // the caller's inputs, on stage 0
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      auto& [name, block] = blocks[i];
      try {
        if (block_seconds) {
          auto t0 = std::chrono::steady_clock::now();
          auto out = block->forward(x);
          double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          // A fast block's first run is mostly one-off costs (allocation, lazy set-up): time it again.
          if (seconds < kRetimeBelowSeconds) {
            std::vector<double> times;
            for (int r = 0; r < kRetimes; ++r) {
              t0 = std::chrono::steady_clock::now();
              out = block->forward(x);
              times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            std::sort(times.begin(), times.end());
            seconds = times[times.size() / 2];
          }
          (*block_seconds)[first_block + i] = seconds;
          x = std::move(out);
        } else {
          x = block->forward(x);
        }
      } catch (const std::exception& e) {
        throw Error("block '" + name + "' (rank " + std::to_string(rank) + ", stage " + std::to_string(rank) +
                           ") failed on batch " + std::to_string(batch) + ", micro-batch " + std::to_string(micro) +
                           ": " + error_text(e));
      }
    }
    const auto end = Trace::now();
    compute_seconds += std::chrono::duration<double>(end - start).count();
    trace.add("compute", "b" + std::to_string(batch) + " m" + std::to_string(micro), start, end);
    return x;
  }

  // Checks, on a rank after the first, that batch `batch` of this call has `rows` rows as in this
  // rank's own inputs (throws accel::UsageError); the callback stream has none to compare with.
  using RowsCheck = std::function<void(std::int64_t batch, std::int64_t rows)>;

  // One call's progress on this rank.
  struct Call {
    std::exception_ptr local_error;  // this rank's own failure, rethrown at the end of the call
    std::optional<Message> failure;  // the abort every later rank hears of
    bool upstream_done = false;
    std::vector<Activations> batch_micros;        // the last stage's outputs of the current batch
    std::vector<Activations> outputs_to_gather;   // with gather_output: every batch's outputs
  };

  // Runs one call (forward or stream) on this rank. `input_error`: this rank's own inputs were
  // refused; the call still runs its protocol, so that every rank fails it and no rank keeps a
  // message meant for this call.
  void run(const Source& next_batch, const Sink& on_output, const RowsCheck& check_rows,
           std::exception_ptr input_error = nullptr) {
    if (!broken.empty()) {
      throw PeerError("rank " + std::to_string(rank) + ": this pipeline can no longer be used because an earlier call "
                      "lost a peer (" + broken + "); prepare a new pipeline");
    }
    ++calls;
    torch::NoGradGuard no_grad;
    struct WriteTrace {
      Trace& trace;
      ~WriteTrace() {
        try {
          trace.write();
        } catch (const Error& e) {
          std::cerr << "accel pipeline: " << e.what() << "\n";
        }
      }
    } write_trace{trace};

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

  void fail_locally(Call& call, std::exception_ptr error) {
    call.local_error = error;
    call.failure = Message::abort(rank, error_text_of(error));
  }

  static std::string error_text_of(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (...) {
      return current_error_text();
    }
  }

  void send(int peer, int tag, Message message) {
    message.call = calls;
    links->send(peer, tag, message);
  }

  // A message of this call from `peer`; one from another call means the ranks' calls are out of
  // step, which no later call could repair.
  Message receive(int peer, int tag, std::chrono::milliseconds timeout = {}) {
    Message message = links->recv(peer, tag, timeout);
    if (message.call != calls) {
      throw PeerError("rank " + std::to_string(rank) + " received a message of call #" + std::to_string(message.call) +
                      " from rank " + std::to_string(peer) + " during its own call #" + std::to_string(calls) +
                      ": the ranks' calls are out of step; every rank must make the same forward()/stream() calls "
                      "in the same order");
    }
    return message;
  }

  void deliver(Call& call, const Message& message, Activations out, const Sink& on_output) {
    call.batch_micros.push_back(std::move(out));
    if (!message.last_of_batch) return;
    auto batch_out = concat_outputs(call.batch_micros);
    call.batch_micros.clear();
    if (gather && num_stages > 1) call.outputs_to_gather.push_back(batch_out);
    on_output(static_cast<std::size_t>(message.batch), std::move(batch_out));
  }

  void pass_on(Call& call, Message message, const Sink& on_output) {
    message.tensors = run_stage(std::move(message.tensors), message.batch, message.micro);
    if (last()) {
      deliver(call, message, std::move(message.tensors), on_output);
    } else {
      send(rank + 1, kActivationTag, std::move(message));
      links->wait_sends(num_chunks);
    }
  }

  void run_first_stage(Call& call, const Source& next_batch, const Sink& on_output) {
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

  void run_later_stage(Call& call, const RowsCheck& check_rows, const Sink& on_output) {
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

  // Ends the call on this rank: a failed stage still consumes what upstream sends, so upstream
  // ranks finish the call; the end (or the failure) travels downstream; the last rank hands
  // every other rank the outputs (gather_output) or the failure.
  void finish_call(Call& call, const Sink& on_output) {
    try {
      while (!call.upstream_done) call.upstream_done = receive(rank - 1, kActivationTag).kind != MessageKind::kData;
      if (!last()) send(rank + 1, kActivationTag, call.failure ? *call.failure : Message::end());
      if (last() && num_stages > 1) send_outputs(call);
      if (!last()) receive_outputs(call, on_output);
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

  void send_outputs(const Call& call) {
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

  void receive_outputs(Call& call, const Sink& on_output) {
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

  // Best effort on a broken link: tell whoever may still be waiting (ranks downstream, or every
  // rank from the last one), give them a moment to hear it, and leave. The pipeline is unusable
  // afterwards: messages of this call may still be in flight.
  [[noreturn]] void fail_fast(const std::string& text) {
    broken = text;
    if (!links) throw;
    links->abandon_sends();
    try {
      if (!last()) send(rank + 1, kActivationTag, Message::abort(rank, text));
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

  void build_blocks(const models::BlockModel& model, const StagePlan& stage) {
    auto specs = model.blocks();
    std::map<std::string, std::shared_ptr<models::Block>> kept;
    for (auto& [name, block] : blocks) kept[name] = block;
    blocks.clear();
    std::set<std::string> wanted;
    for (int i = stage.first_block; i < stage.first_block + stage.num_blocks; ++i) wanted.insert(specs[i].name);
    for (auto it = kept.begin(); it != kept.end();) it = wanted.count(it->first) ? std::next(it) : kept.erase(it);
    for (int i = stage.first_block; i < stage.first_block + stage.num_blocks; ++i) {
      const auto& spec = specs[i];
      auto found = kept.find(spec.name);
      std::shared_ptr<models::Block> block;
      if (found != kept.end()) {
        block = found->second;
      } else {
        try {
          block = spec.build();
        } catch (const std::exception& e) {
          throw Error("building block '" + spec.name + "' on rank " + std::to_string(rank) + " failed: " + error_text(e));
        }
        if (!block) throw Error("building block '" + spec.name + "' on rank " + std::to_string(rank) + " returned null");
      }
      block->eval();
      if (!device.is_cpu()) block->to(device);
      blocks.emplace_back(spec.name, block);
    }
    first_block = static_cast<std::size_t>(stage.first_block);
  }

  // Sums a vector over the group (each rank fills its own entries).
  void sum_over_group(torch::Tensor& values) {
    if (num_stages == 1) return;
    std::vector<torch::Tensor> tensors{values};
    try {
      group.group->allreduce(tensors)->wait(group.timeout);
    } catch (const std::exception& e) {
      throw PeerError("rank " + std::to_string(rank) + ": a pipeline setup collective failed (another rank failed, " +
                      "exited or stopped answering): " + error_text(e));
    }
  }
};

namespace {

// Every rank planned from the same numbers; rank 0's cut is nevertheless the one every rank
// adopts, so that the ranks can never disagree on who runs which block.
Plan adopt_rank0_cut(Pipeline::Impl& impl, const std::vector<BlockInfo>& infos, const std::vector<double>& seconds,
                     const SplitPoints& requested) {
  auto counts = torch::zeros({impl.num_stages}, torch::kFloat64);
  if (impl.rank == 0) {
    for (int k = 0; k < impl.num_stages; ++k) counts.data_ptr<double>()[k] = impl.plan.stages[k].num_blocks;
  }
  impl.sum_over_group(counts);
  std::vector<int> cut;
  for (int k = 0; k < impl.num_stages; ++k) cut.push_back(static_cast<int>(counts.data_ptr<double>()[k]));
  auto plan = make_plan(infos, impl.num_stages, SplitPoints::counts(cut), seconds);
  plan.method = requested.describe();
  return plan;
}

void save_plan(const Plan& plan, const std::string& path) {
  nlohmann::json json;
  std::vector<std::string> split_points;
  std::vector<int> counts;
  for (std::size_t k = 0; k < plan.stages.size(); ++k) {
    if (k > 0) split_points.push_back(plan.blocks[plan.stages[k].first_block].name);
    counts.push_back(plan.stages[k].num_blocks);
  }
  json["split_points"] = split_points;
  json["block_counts"] = counts;
  json["method"] = plan.method;
  files::replace_atomically(path, json.dump(2) + "\n");
}

}  // namespace

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

Pipeline prepare(const models::BlockModel& model, const Activations& example_inputs, const PipelineOptions& options,
                 const runtime::GroupHandle& group) {
  const int world = group.world_size;
  if (world > 1 && !group.group) throw Error("prepare(): the group handle has world size " + std::to_string(world) + " but no process group");
  const int num_chunks = options.num_chunks.value_or(world);
  if (num_chunks < 1) {
    throw UsageError("num_chunks = " + std::to_string(num_chunks) +
                     " is not allowed: it is the number of micro-batches per batch, at least 1 (1: naive model parallelism)");
  }
  check_batch(example_inputs, "prepare(): example_inputs");
  if (options.device && options.device->is_cuda() && !torch::cuda::is_available()) {
    throw UsageError("PipelineOptions::device is " + options.device->str() +
                     " but this machine (or this LibTorch build) has no CUDA device; leave it unset or use the CPU");
  }

  const auto specs = model.blocks();
  std::vector<BlockInfo> infos;
  std::set<std::string> seen;
  for (const auto& spec : specs) {
    if (!seen.insert(spec.name).second) throw Error("the model lists block '" + spec.name + "' twice; block names must be unique");
    infos.push_back({spec.name, spec.parameter_count});
  }
  if (infos.empty()) throw UsageError("the model has no blocks to split into stages");

  const bool balance_by_time = options.split_points.mode() == SplitPoints::Mode::kAuto;
  const std::int64_t budget = options.max_stage_bytes > 0 ? options.max_stage_bytes : default_stage_bytes(world);
  const std::int64_t max_stage_parameters = budget / 4;
  // "auto" first cuts into equal block counts (within the memory budget), times each block where
  // it lands, then re-cuts by time: for a stack of equal blocks the first cut is already the
  // final one, so nothing is built twice.
  SplitPoints first_cut = options.split_points;
  if (balance_by_time) {
    std::vector<double> weights;
    for (const auto& info : infos) weights.push_back(static_cast<double>(info.parameter_count));
    auto counts = linear_partition(std::vector<double>(infos.size(), 1.0), world, weights,
                                   static_cast<double>(max_stage_parameters));
    first_cut = counts.empty() ? SplitPoints("parameters") : SplitPoints::counts(counts);
  }
  Plan plan = make_plan(infos, world, first_cut);

  auto impl = std::make_unique<Pipeline::Impl>();
  impl->group = group;
  impl->rank = group.rank;
  impl->num_stages = world;
  impl->gather = options.gather_output;
  impl->input_names = options.input_names;
  impl->output_names = options.output_names;
  impl->device = options.device.value_or(c10::Device(c10::kCPU));
  if (world > 1) impl->links = std::make_unique<Links>(group, &impl->trace, impl->device);
  try {
    impl->build_blocks(model, plan.stages[group.rank]);
  } catch (...) {
    impl->build_error = std::current_exception();
  }

  std::vector<double> seconds(infos.size(), 0.0);
  impl->num_chunks = 1;
  impl->block_seconds = &seconds;
  try {
    impl->run(once(example_inputs), [](std::size_t, Activations) {}, nullptr);
  } catch (const RemoteFailure& e) {
    throw UsageError("prepare(): the trial run of the example inputs failed: " + e.text());
  } catch (const PeerError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(std::string("prepare(): the trial run of the example inputs failed: ") + e.what());
  }
  impl->block_seconds = nullptr;
  impl->num_chunks = num_chunks;

  // Every rank learns every block's time, and rank 0's start time and pid (to name the trace).
  auto shared = torch::zeros({static_cast<std::int64_t>(infos.size()) + 2}, torch::kFloat64);
  auto* values = shared.data_ptr<double>();
  for (std::size_t i = 0; i < infos.size(); ++i) values[i] = seconds[i];
  if (group.rank == 0) {
    values[infos.size()] = static_cast<double>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Trace::now().time_since_epoch()).count());
    values[infos.size() + 1] = static_cast<double>(::getpid());
  }
  impl->sum_over_group(shared);
  const auto measured = steady_block_times(infos, std::vector<double>(values, values + infos.size()));

  impl->plan = make_plan(infos, world, options.split_points, measured, max_stage_parameters);
  if (balance_by_time) impl->plan = adopt_rank0_cut(*impl, infos, measured, options.split_points);
  if (group.rank == 0 && !options.save_plan.empty()) save_plan(impl->plan, options.save_plan);
  if (balance_by_time) {
    auto status = torch::zeros({world}, torch::kFloat64);
    std::string own_error;
    try {
      impl->build_blocks(model, impl->plan.stages[group.rank]);
    } catch (const std::exception& e) {
      own_error = e.what();
      status.data_ptr<double>()[group.rank] = 1;
    }
    impl->sum_over_group(status);
    if (!own_error.empty()) throw Error(own_error);
    for (int r = 0; r < world; ++r) {
      if (status.data_ptr<double>()[r] != 0) {
        throw PeerError("rank " + std::to_string(r) + " could not build its stage's blocks (its own error says why)");
      }
    }
  }

  std::string trace_dir = options.trace_dir;
  if (trace_dir.empty()) {
    if (const char* from_env = std::getenv(env::kTrace)) trace_dir = from_env;
  }
  if (!trace_dir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(trace_dir, error);
    if (error) throw FileError(trace_dir, "could not be created for " + std::string(env::kTrace) + ": " + error.message());
    const auto name = trace_file_name(values[infos.size()], values[infos.size() + 1]);
    impl->trace = Trace((std::filesystem::path(trace_dir) / (name + "-rank" + std::to_string(group.rank) + ".json")).string(),
                        group.rank);
  }
  if (group.rank == 0 && options.report) *options.report << impl->plan.to_string() << std::flush;
  return Pipeline(std::move(impl));
}

Pipeline prepare(const models::BlockModel& model, const Activations& example_inputs, const PipelineOptions& options) {
  PartialState state;
  auto on_device = options;
  if (!on_device.device) on_device.device = state.device();
  return prepare(model, example_inputs, on_device, state.group());
}

}  // namespace accel::pipeline
