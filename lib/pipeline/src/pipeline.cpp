#include "accel/pipeline/pipeline.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>

#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "accel/core/hardware.h"
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

// Checks a batch on every rank, so bad input fails everywhere before anything is sent.
void check_batch(const Activations& inputs, int num_chunks, const std::string& what) {
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
  if (inputs[0].size(0) < num_chunks) {
    throw UsageError(what + " has batch size " + std::to_string(inputs[0].size(0)) + ", smaller than num_chunks = " +
                     std::to_string(num_chunks) + ": use a batch of at least " + std::to_string(num_chunks) +
                     " or fewer chunks");
  }
}

// Micro-batch sizes differ by at most one (10 rows in 4 chunks: 3, 3, 2, 2); nothing is padded.
std::vector<Activations> split_batch(const Activations& inputs, int num_chunks) {
  const auto rows = inputs[0].size(0);
  std::vector<std::int64_t> sizes(num_chunks, rows / num_chunks);
  for (std::int64_t i = 0; i < rows % num_chunks; ++i) ++sizes[i];
  std::vector<Activations> micros(num_chunks);
  for (const auto& t : inputs) {
    auto parts = t.split_with_sizes(sizes, 0);
    for (int i = 0; i < num_chunks; ++i) micros[i].push_back(parts[i]);
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

}  // namespace

class Pipeline::Impl {
 public:
  using Source = std::function<std::optional<Activations>()>;
  using Sink = std::function<void(std::size_t, Activations)>;

  runtime::GroupHandle group;
  int rank = 0;
  int num_stages = 1;
  int num_chunks = 1;
  bool gather = false;
  Plan plan;
  std::vector<std::pair<std::string, std::shared_ptr<models::Block>>> blocks;
  std::exception_ptr build_error;            // raised in the first stage run, so peers hear of it
  std::vector<double>* block_seconds = nullptr;  // set while profiling the example
  std::size_t first_block = 0;
  double compute_seconds = 0;
  Trace trace;
  std::unique_ptr<Links> links;

  bool first() const { return rank == 0; }
  bool last() const { return rank == num_stages - 1; }
  bool is_output_rank() const { return last() || gather; }

  Activations run_stage(Activations x, std::int64_t batch, std::int64_t micro) {
    const auto start = Trace::now();
    if (build_error) std::rethrow_exception(build_error);  // peers hear of it through the abort
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

  // Best effort on a broken link: tell whoever may still be waiting (ranks downstream, or every
  // rank from the last one), give them a moment to hear it, and leave.
  [[noreturn]] void fail_fast(const std::string& text) {
    if (!links) throw;
    links->abandon_sends();
    try {
      if (!last()) links->send(rank + 1, kActivationTag, Message::abort(rank, text));
      if (last()) {
        for (int r = 0; r + 1 < num_stages; ++r) links->send(r, kOutputTag, Message::abort(rank, text));
      }
      links->wait_sends(0, std::min(links->timeout(), std::chrono::milliseconds(kAbortGraceMs)));
    } catch (const PeerError&) {
      // The link that broke may be one of these; the error being raised already names it.
    }
    links->abandon_sends();
    throw;
  }

  void run(const Source& next_batch, const Sink& on_output) {
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

    std::exception_ptr local_error;
    std::optional<Message> failure;
    std::vector<Activations> batch_micros;
    std::vector<Activations> outputs_to_gather;
    auto deliver = [&](const Message& message, Activations out) {
      batch_micros.push_back(std::move(out));
      if (!message.last_of_batch) return;
      auto batch_out = concat_outputs(batch_micros);
      batch_micros.clear();
      if (gather && num_stages > 1) outputs_to_gather.push_back(batch_out);
      on_output(static_cast<std::size_t>(message.batch), std::move(batch_out));
    };

    bool upstream_done = first();
    try {
      if (first()) {
        std::int64_t batch_index = 0;
        while (auto batch = next_batch()) {
          check_batch(*batch, num_chunks, "batch " + std::to_string(batch_index));
          auto micros = split_batch(*batch, num_chunks);
          for (int m = 0; m < num_chunks; ++m) {
            Message message;
            message.batch = batch_index;
            message.micro = m;
            message.last_of_batch = m + 1 == num_chunks;
            message.tensors = run_stage(std::move(micros[m]), batch_index, m);
            if (last()) {
              deliver(message, std::move(message.tensors));
            } else {
              links->send(rank + 1, kActivationTag, message);
              links->wait_sends(num_chunks);
            }
          }
          ++batch_index;
        }
      } else {
        while (true) {
          Message message = links->recv(rank - 1, kActivationTag);
          if (message.kind != MessageKind::kData) {
            upstream_done = true;
            if (message.kind == MessageKind::kAbort) failure = std::move(message);
            break;
          }
          message.tensors = run_stage(std::move(message.tensors), message.batch, message.micro);
          if (last()) {
            deliver(message, std::move(message.tensors));
          } else {
            links->send(rank + 1, kActivationTag, message);
            links->wait_sends(num_chunks);
          }
        }
      }
    } catch (const PeerError& e) {
      fail_fast(e.what());
    } catch (...) {
      local_error = std::current_exception();
      failure = Message::abort(rank, current_error_text());
    }

    try {
      // A failed stage still consumes what upstream sends, so upstream ranks finish the call.
      while (!upstream_done) upstream_done = links->recv(rank - 1, kActivationTag).kind != MessageKind::kData;
      if (!last()) {
        Message end;
        end.kind = MessageKind::kEnd;
        links->send(rank + 1, kActivationTag, failure ? *failure : end);
      } else if (num_stages > 1) {
        for (int r = 0; r + 1 < num_stages; ++r) {
          if (failure) {
            links->send(r, kOutputTag, *failure);
            continue;
          }
          for (std::size_t b = 0; b < outputs_to_gather.size(); ++b) {
            Message out;
            out.batch = static_cast<std::int64_t>(b);
            out.tensors = outputs_to_gather[b];
            links->send(r, kOutputTag, out);
          }
          Message end;
          end.kind = MessageKind::kEnd;
          links->send(r, kOutputTag, end);
        }
      }
      if (!last()) {
        while (true) {
          // The last rank answers only after everything upstream of it: allow it a timeout of its
          // own beyond ours, so that a rank further down that times out can tell us why.
          Message message = links->recv(num_stages - 1, kOutputTag, 2 * links->timeout());
          if (message.kind == MessageKind::kEnd) break;
          if (message.kind == MessageKind::kAbort) {
            if (!failure) failure = std::move(message);
            break;
          }
          if (local_error) continue;
          try {
            on_output(static_cast<std::size_t>(message.batch), std::move(message.tensors));
          } catch (...) {
            local_error = std::current_exception();
          }
        }
      }
      if (links) links->wait_sends(0);
    } catch (const PeerError& e) {
      if (links) links->abandon_sends();
      if (local_error) std::rethrow_exception(local_error);
      throw;
    }
    if (local_error) std::rethrow_exception(local_error);
    if (failure) throw RemoteFailure(rank, static_cast<int>(failure->origin), failure->text);
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

Pipeline::Pipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;
Pipeline::~Pipeline() = default;

Activations Pipeline::forward(const Activations& inputs) {
  check_batch(inputs, impl_->num_chunks, "forward(): the batch");
  Activations result;
  impl_->run(once(inputs), [&](std::size_t, Activations out) { result = std::move(out); });
  return result;
}

std::vector<Activations> Pipeline::stream(const std::vector<Activations>& batches) {
  for (std::size_t b = 0; b < batches.size(); ++b) {
    check_batch(batches[b], impl_->num_chunks, "stream(): batch " + std::to_string(b));
  }
  std::vector<Activations> results(impl_->is_output_rank() ? batches.size() : 0);
  std::size_t next = 0;
  impl_->run(
      [&]() -> std::optional<Activations> {
        if (next == batches.size()) return std::nullopt;
        return batches[next++];
      },
      [&](std::size_t b, Activations out) { results.at(b) = std::move(out); });
  return results;
}

void Pipeline::stream(const std::function<std::optional<Activations>()>& next_batch,
                      const std::function<void(std::size_t, Activations)>& on_output) {
  impl_->run(next_batch, on_output);
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
  check_batch(example_inputs, 1, "prepare(): example_inputs");

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
  if (world > 1) impl->links = std::make_unique<Links>(group, &impl->trace);
  try {
    impl->build_blocks(model, plan.stages[group.rank]);
  } catch (...) {
    impl->build_error = std::current_exception();
  }

  std::vector<double> seconds(infos.size(), 0.0);
  impl->num_chunks = 1;
  impl->block_seconds = &seconds;
  try {
    impl->run(once(example_inputs), [](std::size_t, Activations) {});
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
  std::vector<double> measured(values, values + infos.size());

  impl->plan = make_plan(infos, world, options.split_points, measured, max_stage_parameters);
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
  return prepare(model, example_inputs, options, state.group());
}

}  // namespace accel::pipeline
