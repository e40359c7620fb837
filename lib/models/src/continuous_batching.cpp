#include "accel/models/continuous_batching.h"

#include <algorithm>
#include <string>
#include <utility>

#include "accel/core/error.h"
#include "accel/models/slot_decoder.h"

namespace accel::models {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void check_request(const SequenceRequest& request, std::int64_t capacity) {
  const auto name = "request " + std::to_string(request.id) + ": ";
  if (request.prompt.empty()) throw UsageError(name + "the prompt has no tokens");
  if (request.max_tokens < 1)
    throw UsageError(name + "max_tokens must be at least 1, got " + std::to_string(request.max_tokens));
  const auto needed = static_cast<std::int64_t>(request.prompt.size()) + request.max_tokens;
  if (needed > capacity) {
    throw UsageError(name + "the prompt's " + std::to_string(request.prompt.size()) + " tokens + max_tokens " +
                     std::to_string(request.max_tokens) + " exceed the " + std::to_string(capacity) +
                     " tokens a sequence may hold");
  }
}

// The request's own token chooser, once the request is known to fit.
TokenChooser checked_chooser(const SequenceRequest& request, std::int64_t capacity) {
  check_request(request, capacity);
  try {
    return TokenChooser(request.sampling);
  } catch (const UsageError& e) {
    throw UsageError("request " + std::to_string(request.id) + ": " + e.what());
  }
}

// The next step's inputs: each decoding sequence's last token, then the joining prompts, whole,
// oldest admission first, while they stay within `budget` tokens (the first one whatever its
// length). A prompt is never split, so how it runs never depends on what else is joining.
template <class Active>
std::vector<SlotTokens> plan_step(const std::vector<std::optional<Active>>& active, std::int64_t budget) {
  std::vector<SlotTokens> inputs;
  std::vector<int> joining;
  for (int slot = 0; slot < static_cast<int>(active.size()); ++slot) {
    const auto& sequence = active[static_cast<std::size_t>(slot)];
    if (!sequence) continue;
    if (sequence->tokens.empty()) joining.push_back(slot);  // its prompt has not run yet
    else inputs.push_back({slot, {sequence->tokens.back()}});
  }
  std::sort(joining.begin(), joining.end(), [&](int a, int b) {
    return active[static_cast<std::size_t>(a)]->admitted < active[static_cast<std::size_t>(b)]->admitted;
  });
  std::int64_t joined = 0;
  for (const int slot : joining) {
    const auto& prompt = active[static_cast<std::size_t>(slot)]->request.prompt;
    joined += static_cast<std::int64_t>(prompt.size());
    if (joined > budget && joined > static_cast<std::int64_t>(prompt.size())) break;
    inputs.push_back({slot, prompt});
  }
  return inputs;
}

}  // namespace

const char* to_string(FinishReason reason) { return reason == FinishReason::kStop ? "stop" : "length"; }

double BatchingStats::occupancy() const {
  if (steps_with_work_waiting == 0) return 1.0;
  return static_cast<double>(busy_slot_steps_with_work_waiting) /
         (static_cast<double>(steps_with_work_waiting) * static_cast<double>(slots));
}

struct ContinuousBatcher::Active {
  SequenceRequest request;
  TokenChooser chooser;
  std::size_t admitted = 0;  // admission order: joining prompts take the step's budget in it
  std::vector<std::int64_t> tokens;
  std::optional<FinishReason> reason;
};

ContinuousBatcher::ContinuousBatcher(SlotDecoder& decoder, std::vector<std::int64_t> eos_token_ids,
                                     Schedule schedule, std::int64_t prompt_tokens_per_step)
    : decoder_(decoder), eos_(std::move(eos_token_ids)), schedule_(schedule),
      prompt_tokens_per_step_(prompt_tokens_per_step) {
  if (prompt_tokens_per_step < 1)
    throw UsageError("prompt_tokens_per_step must be at least 1, got " + std::to_string(prompt_tokens_per_step));
}

// Appends `token` and says whether the sequence has ended (an EOS id, its max_tokens, a stop).
bool ContinuousBatcher::advance(const Callbacks& callbacks, Active& sequence, std::int64_t token) {
  sequence.tokens.push_back(token);
  if (std::find(eos_.begin(), eos_.end(), token) != eos_.end()) sequence.reason = FinishReason::kStop;
  else if (callbacks.should_stop && callbacks.should_stop(sequence.request.id, sequence.tokens))
    sequence.reason = FinishReason::kStop;
  else if (static_cast<std::int64_t>(sequence.tokens.size()) >= sequence.request.max_tokens)
    sequence.reason = FinishReason::kLength;
  return sequence.reason.has_value();
}

void ContinuousBatcher::finish(const Callbacks& callbacks, std::vector<std::optional<Active>>& active, int slot) {
  auto& sequence = *active[static_cast<std::size_t>(slot)];
  decoder_.release(slot);
  FinishedSequence done{sequence.request.id, static_cast<std::int64_t>(sequence.request.prompt.size()),
                        std::move(sequence.tokens), *sequence.reason};
  active[static_cast<std::size_t>(slot)].reset();
  stats_.requests += 1;
  stats_.new_tokens += static_cast<std::int64_t>(done.tokens.size());
  stats_.prompt_tokens += done.prompt_tokens;
  if (callbacks.finished) callbacks.finished(std::move(done));
}

// Gives free slots to the next requests: any free slot when continuous, all of them only once
// every slot is free when static. Their prompts join the following steps. `more` becomes false
// when `next` has run dry.
void ContinuousBatcher::admit(const Callbacks& callbacks, std::vector<std::optional<Active>>& active, bool& more) {
  const bool all_free = std::none_of(active.begin(), active.end(), [](const auto& a) { return a.has_value(); });
  if (!more || (schedule_ == Schedule::kStatic && !all_free)) return;
  for (auto& slot : active) {
    if (slot) continue;
    auto request = callbacks.next();
    if (!request) {
      more = false;
      return;
    }
    auto chooser = checked_chooser(*request, decoder_.slot_capacity());
    slot.emplace(Active{std::move(*request), std::move(chooser), admitted_++, {}, std::nullopt});
  }
}

BatchingStats ContinuousBatcher::run(const Callbacks& callbacks) {
  c10::InferenceMode inference;
  stats_ = {};
  stats_.slots = decoder_.slots();
  std::vector<std::optional<Active>> active(static_cast<std::size_t>(decoder_.slots()));
  bool more = true;
  while (true) {
    admit(callbacks, active, more);
    const auto inputs = plan_step(active, prompt_tokens_per_step_);
    if (inputs.empty()) break;  // nothing admitted, nothing left to admit
    if (more) {
      stats_.steps_with_work_waiting += 1;
      stats_.busy_slot_steps_with_work_waiting += static_cast<std::int64_t>(inputs.size());
    }
    const auto began = Clock::now();
    const auto logits = decoder_.step(inputs);
    std::vector<int> ended;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      auto& sequence = *active[static_cast<std::size_t>(inputs[i].slot)];
      const auto token = sequence.chooser.choose(logits.narrow(0, static_cast<std::int64_t>(i), 1))[0].item<std::int64_t>();
      if (advance(callbacks, sequence, token)) ended.push_back(inputs[i].slot);
    }
    stats_.busy_seconds += seconds_since(began);
    stats_.steps += 1;
    for (const int slot : ended) finish(callbacks, active, slot);
    if (callbacks.after_step) callbacks.after_step();
  }
  return stats_;
}

}  // namespace accel::models
