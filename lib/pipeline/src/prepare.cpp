#include "accel/pipeline/pipeline.h"

#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/hardware.h"
#include "accel/runtime/partial_state.h"
#include "pipeline_impl.h"

namespace accel::pipeline {
namespace {

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

void Pipeline::Impl::build_blocks(const models::BlockModel& model, const StagePlan& stage) {
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
        throw Error("building block '" + spec.name + "' on rank " + std::to_string(rank) + " failed: " + runtime::failure_reason(e));
      }
      if (!block) throw Error("building block '" + spec.name + "' on rank " + std::to_string(rank) + " returned null");
    }
    block->eval();
    if (!device.is_cpu()) block->to(device);
    blocks.emplace_back(spec.name, block);
  }
  first_block = static_cast<std::size_t>(stage.first_block);
}

void Pipeline::Impl::sum_over_group(torch::Tensor& values) {
  if (num_stages == 1) return;
  std::vector<torch::Tensor> tensors{values};
  try {
    group.group->allreduce(tensors)->wait(group.timeout);
  } catch (const std::exception& e) {
    throw PeerError("rank " + std::to_string(rank) + ": a pipeline setup collective failed (another rank failed, " +
                    "exited or stopped answering): " + runtime::failure_reason(e));
  }
}

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

// Checks what prepare() can check before any transfer, alike on every rank; returns num_chunks.
int check_options(const Activations& example_inputs, const PipelineOptions& options, const runtime::GroupHandle& group) {
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
  return num_chunks;
}

std::vector<BlockInfo> block_infos(const std::vector<models::BlockSpec>& specs) {
  std::vector<BlockInfo> infos;
  std::set<std::string> seen;
  for (const auto& spec : specs) {
    if (!seen.insert(spec.name).second) throw Error("the model lists block '" + spec.name + "' twice; block names must be unique");
    infos.push_back({spec.name, spec.parameter_count});
  }
  if (infos.empty()) throw UsageError("the model has no blocks to split into stages");
  return infos;
}

// Where the blocks are built first. "auto" first cuts into equal block counts (within the memory
// budget), times each block where it lands, then re-cuts by time: for a stack of equal blocks
// the first cut is already the final one, so nothing is built twice.
SplitPoints first_cut(const std::vector<BlockInfo>& infos, const SplitPoints& requested, int world,
                      std::int64_t max_stage_parameters) {
  if (requested.mode() != SplitPoints::Mode::kAuto) return requested;
  std::vector<double> weights;
  for (const auto& info : infos) weights.push_back(static_cast<double>(info.parameter_count));
  auto counts = linear_partition(std::vector<double>(infos.size(), 1.0), world, weights,
                                 static_cast<double>(max_stage_parameters));
  return counts.empty() ? SplitPoints("parameters") : SplitPoints::counts(counts);
}

std::unique_ptr<Pipeline::Impl> make_impl(const models::BlockModel& model, const PipelineOptions& options,
                                          const runtime::GroupHandle& group) {
  auto impl = std::make_unique<Pipeline::Impl>();
  if (const auto* language_model = dynamic_cast<const models::CausalLM*>(&model)) {
    impl->language_model = Pipeline::Impl::LanguageModel{language_model->eos_token_ids(), language_model->max_positions()};
  }
  impl->group = group;
  impl->rank = group.rank;
  impl->num_stages = group.world_size;
  impl->gather = options.gather_output;
  impl->input_names = options.input_names;
  impl->output_names = options.output_names;
  impl->device = options.device.value_or(c10::Device(c10::kCPU));
  if (group.world_size > 1) impl->links = std::make_unique<Links>(group, &impl->trace, impl->device);
  return impl;
}

// Runs the example through the pipe as one micro-batch, timing each of this rank's blocks (0 for
// the others'). An example the model rejects is a UsageError on every rank.
std::vector<double> time_example(Pipeline::Impl& impl, const Activations& example_inputs, std::size_t num_blocks) {
  std::vector<double> seconds(num_blocks, 0.0);
  impl.num_chunks = 1;
  impl.block_seconds = &seconds;
  try {
    impl.run(once(example_inputs), [](std::size_t, Activations) {}, nullptr);
  } catch (const RemoteFailure& e) {
    throw UsageError("prepare(): the trial run of the example inputs failed: " + e.text());
  } catch (const PeerError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(std::string("prepare(): the trial run of the example inputs failed: ") + e.what());
  }
  impl.block_seconds = nullptr;
  return seconds;
}

// What every rank learns from the others after the trial run: every block's time, and rank 0's
// start time and pid (to name the trace files alike).
struct SharedTimings {
  std::vector<double> block_seconds;
  double start_ms = 0;
  double pid = 0;
};

SharedTimings share_timings(Pipeline::Impl& impl, const std::vector<BlockInfo>& infos, const std::vector<double>& own) {
  const auto n = infos.size();
  auto shared = torch::zeros({static_cast<std::int64_t>(n) + 2}, torch::kFloat64);
  auto* values = shared.data_ptr<double>();
  std::copy(own.begin(), own.end(), values);
  if (impl.rank == 0) {
    values[n] = static_cast<double>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Trace::now().time_since_epoch()).count());
    values[n + 1] = static_cast<double>(::getpid());
  }
  impl.sum_over_group(shared);
  return {steady_block_times(infos, std::vector<double>(values, values + n)), values[n], values[n + 1]};
}

// After "auto" re-cut by time: every rank builds the blocks its final stage lacks, and learns
// whether every other rank could.
void build_final_stage(Pipeline::Impl& impl, const models::BlockModel& model) {
  auto status = torch::zeros({impl.num_stages}, torch::kFloat64);
  std::string own_error;
  try {
    impl.build_blocks(model, impl.plan.stages[impl.rank]);
  } catch (const std::exception& e) {
    own_error = e.what();
    status.data_ptr<double>()[impl.rank] = 1;
  }
  impl.sum_over_group(status);
  if (!own_error.empty()) throw Error(own_error);
  for (int r = 0; r < impl.num_stages; ++r) {
    if (status.data_ptr<double>()[r] != 0) {
      throw PeerError("rank " + std::to_string(r) + " could not build its stage's blocks (its own error says why)");
    }
  }
}

void open_trace(Pipeline::Impl& impl, const PipelineOptions& options, const SharedTimings& shared) {
  std::string trace_dir = options.trace_dir;
  if (trace_dir.empty()) {
    const env::Lookup& environment = options.environment ? options.environment : env::process_environment();
    trace_dir = environment(env::kTrace).value_or("");
  }
  if (trace_dir.empty()) return;
  files::make_directories(trace_dir);
  const auto name = trace_file_name(shared.start_ms, shared.pid);
  impl.trace = Trace((std::filesystem::path(trace_dir) / (name + "-rank" + std::to_string(impl.rank) + ".json")).string(),
                     impl.rank);
}

}  // namespace

Pipeline prepare(const models::BlockModel& model, const Activations& example_inputs, const PipelineOptions& options,
                 const runtime::GroupHandle& group) {
  const int world = group.world_size;
  const int num_chunks = check_options(example_inputs, options, group);
  const auto infos = block_infos(model.blocks());
  const bool balance_by_time = options.split_points.mode() == SplitPoints::Mode::kAuto;
  const std::int64_t budget = options.max_stage_bytes > 0 ? options.max_stage_bytes : default_stage_bytes(world);
  const std::int64_t max_stage_parameters = budget / 4;
  const Plan initial = make_plan(infos, world, first_cut(infos, options.split_points, world, max_stage_parameters));

  auto impl = make_impl(model, options, group);
  try {
    impl->build_blocks(model, initial.stages[group.rank]);
  } catch (...) {
    impl->build_error = std::current_exception();  // raised in the trial run, so peers hear of it
  }
  const auto shared = share_timings(*impl, infos, time_example(*impl, example_inputs, infos.size()));
  impl->num_chunks = num_chunks;

  impl->plan = make_plan(infos, world, options.split_points, shared.block_seconds, max_stage_parameters);
  if (balance_by_time) impl->plan = adopt_rank0_cut(*impl, infos, shared.block_seconds, options.split_points);
  if (group.rank == 0 && !options.save_plan.empty()) save_plan(impl->plan, options.save_plan);
  if (balance_by_time) build_final_stage(*impl, model);
  open_trace(*impl, options, shared);
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
