#pragma once
// Continuous batching over a SlotDecoder: up to slots() sequences in flight; when one ends (an EOS
// id, its own max_tokens, or a stop the caller detects) its slot is freed and the next request
// takes it: its prompt joins the next step whole, beside the busy rows (the weights are read once
// for both), while the step's joining prompts stay within `prompt_tokens_per_step` tokens (a
// longer prompt joins a step alone); the others go on where they were.
// Each request samples with a generator of its own (TokenChooser with the request's options), so
// its tokens depend only on its prompt, its options and its logits: with a batch-invariant
// decoder, on nothing else (not the batch, the schedule, the rank, a restart).
//
// Schedule::kStatic keeps the old plan for comparison: a fixed batch of requests is admitted
// together and no slot is refilled until every row of the batch has ended.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "accel/models/generation.h"

namespace accel::models {

class SlotDecoder;

struct SequenceRequest {
  std::size_t id = 0;                 // the caller's, handed back with the result
  std::vector<std::int64_t> prompt;   // at least one id
  std::int64_t max_tokens = 16;       // new tokens at most, >= 1
  // Sampling of this request alone: do_sample, temperature, top_k, top_p, seed (the rest unused).
  GenerationOptions sampling;
};

enum class FinishReason { kStop, kLength };
const char* to_string(FinishReason reason);  // "stop", "length" (OpenAI's finish_reason)

struct FinishedSequence {
  std::size_t id = 0;
  std::int64_t prompt_tokens = 0;
  std::vector<std::int64_t> tokens;  // the new tokens, the EOS that ended it included
  FinishReason reason = FinishReason::kLength;
};

enum class Schedule { kContinuous, kStatic };

// What a run did, for the per-rank summary and the benchmark.
struct BatchingStats {
  int slots = 0;
  std::size_t requests = 0;
  std::int64_t prompt_tokens = 0, new_tokens = 0;
  std::int64_t steps = 0;          // decoder steps (prompts joining, rows decoding, or both)
  double busy_seconds = 0;         // in the decoder's steps and choosing tokens
  // Slot occupancy over the steps taken while requests were still waiting to be admitted:
  // busy slot-steps over slots x steps (1 when no such step was taken).
  std::int64_t steps_with_work_waiting = 0, busy_slot_steps_with_work_waiting = 0;
  double occupancy() const;
};

class ContinuousBatcher {
 public:
  struct Callbacks {
    // The next request to admit, or nullopt when there are no more (never asked again after).
    std::function<std::optional<SequenceRequest>()> next;
    // Called after each new token; true ends the sequence with FinishReason::kStop (e.g. its
    // text reached a stop string). Optional.
    std::function<bool(std::size_t id, const std::vector<std::int64_t>& tokens)> should_stop;
    // Each sequence as it ends, in the order they end.
    std::function<void(FinishedSequence)> finished;
    // After every decode step (e.g. to report progress). Optional.
    std::function<void()> after_step;
  };

  static constexpr std::int64_t kPromptTokensPerStep = 256;

  // `decoder` must outlive the batcher; a token in `eos_token_ids` ends its sequence.
  // UsageError for prompt_tokens_per_step < 1.
  ContinuousBatcher(SlotDecoder& decoder, std::vector<std::int64_t> eos_token_ids,
                    Schedule schedule = Schedule::kContinuous,
                    std::int64_t prompt_tokens_per_step = kPromptTokensPerStep);

  // Runs until `next` has no more requests and every admitted one has finished. UsageError
  // naming the request id for max_tokens < 1, an empty prompt, prompt + max_tokens beyond the
  // decoder's slot_capacity(), or sampling options out of range (checked when it is admitted).
  BatchingStats run(const Callbacks& callbacks);

 private:
  struct Active;
  void admit(const Callbacks& callbacks, std::vector<std::optional<Active>>& active, bool& more);
  bool advance(const Callbacks& callbacks, Active& sequence, std::int64_t token);
  void finish(const Callbacks& callbacks, std::vector<std::optional<Active>>& active, int slot);

  SlotDecoder& decoder_;
  std::vector<std::int64_t> eos_;
  Schedule schedule_;
  std::int64_t prompt_tokens_per_step_;
  std::size_t admitted_ = 0;
  BatchingStats stats_;
};

}  // namespace accel::models
