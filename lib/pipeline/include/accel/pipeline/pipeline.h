#pragma once
// Pipeline-parallel inference: a model's blocks are cut into stages, one per process (stage k
// runs on global rank k), and micro-batches flow from rank 0 to the last rank so that every
// stage works at once. Each rank builds only its own stage's blocks (with "auto", see
// PipelineOptions::split_points for the blocks built only to time the first cut).
//
//   auto pipe = accel::pipeline::prepare(model, example_inputs,
//                                        {.split_points = "auto", .num_chunks = 4});
//   auto out = pipe.forward(inputs);  // on the last rank (every rank with gather_output)
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accel/core/env_contract.h"
#include "accel/models/blocks.h"
#include "accel/models/generation.h"
#include "accel/pipeline/partition.h"

namespace accel::runtime {
struct GroupHandle;
}

namespace accel::pipeline {

using models::Activations;
// Inputs or outputs by name (accelerate's example_kwargs: input_ids, attention_mask, ...).
using NamedActivations = std::map<std::string, torch::Tensor>;

struct PipelineOptions {
  // "auto" balances the stages by measured time, which needs the blocks built to time them.
  // prepare() therefore first cuts by equal block counts (within max_stage_bytes; by parameters
  // where that does not fit), each rank builds and times its first-cut blocks on the example,
  // and then every rank re-cuts by the measured times. A rank whose final stage differs drops
  // the blocks it no longer runs before it builds the ones it lacks, so it may briefly hold
  // blocks that end up on another rank (and a block may be built, or read from a checkpoint,
  // on two ranks), but never more than one stage's worth at a time: its peak is the larger of
  // its two stages, both within max_stage_bytes. For a stack of equal blocks the two cuts
  // coincide and nothing is built twice. Other split points build each block once, where it runs.
  // "auto" is decided from rank 0's plan, shared with every rank; identical blocks count as
  // equally fast, so repeated runs of one model on one machine cut alike.
  SplitPoints split_points = "auto";
  // Micro-batches per batch; unset: one per process (accelerate's default). A batch that does
  // not divide evenly is cut into micro-batches whose sizes differ by one; nothing is padded.
  std::optional<int> num_chunks;
  // Also deliver the output to every rank, not only the last one.
  bool gather_output = false;
  // Memory one rank may spend on weights, for "auto" (fp32 parameters); 0: this machine's memory
  // divided by the processes on it.
  std::int64_t max_stage_bytes = 0;
  // Where the main process prints the plan; nullptr: nowhere.
  std::ostream* report = &std::cout;
  // Directory for Chrome-trace files (one per rank); empty: $ACCEL_TRACE, unset there: no trace.
  std::string trace_dir;
  // Where ACCEL_TRACE is read; unset: the process environment.
  env::Lookup environment;
  // Where this rank's blocks live and compute; unset: the PartialState's device (cuda:LOCAL_RANK
  // or the CPU) for the prepare() over it, the CPU for a given group. Activations travel device
  // to device over NCCL, through pinned host memory over Gloo; outputs are on the last stage's
  // device (each receiving rank's with gather_output).
  std::optional<c10::Device> device;
  // The names forward_named() accepts, in the order the first block takes them as positional
  // inputs (e.g. {"input_ids", "attention_mask"}), and the names it gives the last block's
  // outputs (e.g. {"logits", "scores"}; unset: "0", "1", ...).
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;
  // Where rank 0 writes the plan it chose (JSON); SplitPoints::load (or --split_points FILE.json)
  // passes it back in, so that later runs cut the same way without measuring. Empty: not saved.
  std::string save_plan;
};

// A prepared pipeline. Every rank of the group calls forward/stream together (collectively).
// Failures: a failing block throws accel::Error on its own rank and accel::PeerError naming that
// rank on every other rank; a rank that dies or stops answering within the group's timeout
// makes the others throw accel::PeerError naming it. Nothing waits without a deadline.
class Pipeline {
 public:
  Pipeline(Pipeline&&) noexcept;
  Pipeline& operator=(Pipeline&&) noexcept;
  ~Pipeline();

  // One batch: every input is cut along dim 0 into micro-batches (GPipe fill-drain). Every rank
  // passes the same inputs (ranks after the first only check them). Returns the model's outputs,
  // concatenated along dim 0, on the last rank (every rank with gather_output), else {}.
  // Shapes may change from call to call.
  Activations forward(const Activations& inputs);
  Activations forward(const torch::Tensor& input) { return forward(Activations{input}); }

  // The same with named inputs and outputs (PipelineOptions::input_names / output_names). Ranks
  // that receive no output (all but the last without gather_output) get an empty map: no
  // output here, as accelerate returns None there.
  NamedActivations forward_named(const NamedActivations& inputs);

  // Several batches with no drain between them: fill and drain are paid once per stream. Same
  // contract as forward() for each batch; outputs in batch order.
  std::vector<Activations> stream(const std::vector<Activations>& batches);

  // The open-ended form: rank 0 pulls batches from `next_batch` until it returns nullopt (the
  // other ranks never call it); `on_output(batch_index, outputs)` runs on the last rank as each
  // batch completes (on every rank, at the end, with gather_output).
  void stream(const std::function<std::optional<Activations>()>& next_batch,
              const std::function<void(std::size_t, Activations)>& on_output);

  // Autoregressive generation through the stages, as models::generate() does in one process
  // (greedy, or sampled with the options' seed: the same tokens). The batch (left-padded
  // prompts) is cut into micro-batches (num_chunks) that take their decoding steps in turn, so
  // that with num_chunks >= stages every stage works on another micro-batch at each step; each
  // stage keeps the key/value cache of its own layers for each micro-batch, the last stage picks
  // the tokens and sends them back to rank 0, and a micro-batch stops when all its rows have
  // reached an EOS (or max_new_tokens). The cache is always used (options.use_cache is ignored).
  // Every rank passes the same prompts and gets the whole Generation. accel::UsageError for a
  // pipeline prepared from a model that is not a models::CausalLM (GPT2LMHeadModel,
  // LlamaForCausalLM; its blocks run with Block::forward_cached), and for the inputs and options
  // models::generate() refuses.
  models::Generation generate(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const models::GenerationOptions& options);
  // Left-pads `prompts` into one batch (models::left_pad) and generates for them.
  models::Generation generate(const std::vector<std::vector<std::int64_t>>& prompts,
                              const models::GenerationOptions& options);

  const Plan& plan() const;
  int stage() const;
  int num_stages() const;
  int num_chunks() const;
  bool is_last_stage() const { return stage() == num_stages() - 1; }
  // Wall-clock seconds this rank has spent running its blocks, over every call so far: against
  // the elapsed time it gives the rank's busy fraction (the rest is the bubble and transfers).
  double compute_seconds() const;
  // Parameters this rank actually holds (its own stage's blocks only).
  std::int64_t resident_parameter_count() const;

  class Impl;

 private:
  explicit Pipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend Pipeline prepare(const models::BlockModel&, const Activations&, const PipelineOptions&,
                          const runtime::GroupHandle&);
};

// The named inputs in the order `names` gives (accelerate's example_kwargs as positional
// inputs, e.g. for prepare()'s example). Throws accel::UsageError naming a missing or unknown
// input and the names accepted.
Activations positional_inputs(const NamedActivations& inputs, const std::vector<std::string>& names);

// Plans the stages, builds this rank's blocks, runs the example micro-batch through the pipe once
// (timing every block for "auto"; an example the model rejects is reported on every rank as
// accel::UsageError naming the block and rank) and reports the plan on rank 0. Bad options
// (split points, num_chunks < 1, more processes than blocks) throw accel::UsageError on every
// rank before any communication. Collective over `group`.
Pipeline prepare(const models::BlockModel& model, const Activations& example_inputs,
                 const PipelineOptions& options, const runtime::GroupHandle& group);

// The same over the process-wide accel::PartialState's group (formed from the launcher's
// environment; a job of one runs the whole model locally).
Pipeline prepare(const models::BlockModel& model, const Activations& example_inputs,
                 const PipelineOptions& options = {});

}  // namespace accel::pipeline
