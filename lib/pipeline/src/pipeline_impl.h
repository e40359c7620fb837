#pragma once
// The state of a prepared pipeline on one rank, shared by the files that run its calls
// (pipeline.cpp), prepare it (prepare.cpp) and generate through it (generate.cpp). Private to
// lib/pipeline.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accel/core/error.h"
#include "accel/models/generation.h"
#include "accel/pipeline/pipeline.h"
#include "accel/runtime/group.h"
#include "accel/runtime/rendezvous.h"
#include "link.h"
#include "trace.h"

namespace accel::pipeline {

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

// Checks a batch, so bad input fails before anything of it is sent; accel::UsageError starting
// with `what` otherwise.
void check_batch(const Activations& inputs, const std::string& what);

// Micro-batch sizes differ by at most one (10 rows in 4 chunks: 3, 3, 2, 2); nothing is padded.
// A batch of fewer rows than num_chunks runs as one micro-batch per row.
std::vector<std::int64_t> micro_batch_sizes(std::int64_t rows, int num_chunks);

// A batch source that yields `batch` once.
std::function<std::optional<Activations>()> once(const Activations& batch);

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
  // What generate() needs of the model, set by prepare() when it is a models::CausalLM.
  struct LanguageModel {
    std::vector<std::int64_t> eos_token_ids;
    std::optional<std::int64_t> max_positions;
  };
  std::optional<LanguageModel> language_model;
  bool generating = false;  // a generate() call is running: the last rank's tokens go back to rank 0

  // generate() on this rank (generate.cpp); `refused`: this rank's prompts were refused before.
  models::Generation generate(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const models::GenerationOptions& options, std::exception_ptr refused = nullptr);

  bool first() const { return rank == 0; }
  bool last() const { return rank == num_stages - 1; }
  bool is_output_rank() const { return last() || gather; }

  // Runs this rank's blocks on one micro-batch (`batch`, `micro` name it in errors and the
  // trace); with a cache, as one decoding step of generate() (Block::forward_cached).
  Activations run_stage(Activations x, std::int64_t batch, std::int64_t micro, models::KVCache* cache = nullptr);
  // Block `index` of this stage on the example, its time recorded in block_seconds.
  Activations timed_forward(std::size_t index, const Activations& x);

  // Lives as long as one call on this rank: refuses the call when an earlier one lost a peer,
  // numbers it, and writes the trace at its end.
  class CallScope {
   public:
    explicit CallScope(Impl& impl);
    ~CallScope();
    CallScope(const CallScope&) = delete;
    CallScope& operator=(const CallScope&) = delete;

   private:
    Trace& trace_;
  };

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
           std::exception_ptr input_error = nullptr);

  void fail_locally(Call& call, std::exception_ptr error);

  static std::string error_text_of(const std::exception_ptr& error);

  void send(int peer, int tag, Message message);

  // A message of this call from `peer`; one from another call means the ranks' calls are out of
  // step, which no later call could repair.
  Message receive(int peer, int tag, std::chrono::milliseconds timeout = {});

  void deliver(Call& call, const Message& message, Activations out, const Sink& on_output);

  void pass_on(Call& call, Message message, const Sink& on_output);

  void run_first_stage(Call& call, const Source& next_batch, const Sink& on_output);

  void run_later_stage(Call& call, const RowsCheck& check_rows, const Sink& on_output);

  // Ends the call on this rank: a failed stage still consumes what upstream sends, so upstream
  // ranks finish the call; the end (or the failure) travels downstream; the last rank hands
  // every other rank the outputs (gather_output) or the failure.
  void finish_call(Call& call, const Sink& on_output);

  // Runs `closing` (the rest of a call's protocol on this rank) and raises the call's outcome:
  // this rank's own error, else the failure it heard of. A lost peer makes the pipeline unusable.
  void settle(Call& call, const std::function<void()>& closing);

  void send_outputs(const Call& call);

  void receive_outputs(Call& call, const Sink& on_output);

  // Best effort on a broken link: tell whoever may still be waiting (ranks downstream, or every
  // rank from the last one), give them a moment to hear it, and leave. The pipeline is unusable
  // afterwards: messages of this call may still be in flight.
  [[noreturn]] void fail_fast(const std::string& text);

  void build_blocks(const models::BlockModel& model, const StagePlan& stage);

  // Sums a vector over the group (each rank fills its own entries).
  void sum_over_group(torch::Tensor& values);
};

}  // namespace accel::pipeline
