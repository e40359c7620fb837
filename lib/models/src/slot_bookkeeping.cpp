#include "slot_bookkeeping.h"

#include "accel/core/error.h"

#include <algorithm>
#include <string>

namespace accel::models::detail {

SlotBookkeeping::SlotBookkeeping(int slots, std::int64_t capacity, std::int64_t vocab_size,
                                 std::optional<std::int64_t> max_positions)
    : capacity_(capacity), vocab_size_(vocab_size) {
  if (slots < 1) throw UsageError("a slot decoder needs at least 1 slot, got " + std::to_string(slots));
  if (capacity < 1)
    throw UsageError("a slot decoder's capacity must be at least 1 token, got " + std::to_string(capacity));
  if (max_positions && capacity > *max_positions)
    throw UsageError("a slot capacity of " + std::to_string(capacity) + " tokens exceeds the model's maximum " +
                     "sequence length " + std::to_string(*max_positions));
  lengths_.assign(static_cast<std::size_t>(slots), 0);
}

std::int64_t SlotBookkeeping::length(int slot) const {
  check_slot(slot, "length");
  return lengths_[static_cast<std::size_t>(slot)];
}

void SlotBookkeeping::check_slot(int slot, const char* call) const {
  if (slot < 0 || slot >= slots())
    throw UsageError(std::string(call) + ": slot " + std::to_string(slot) + " does not exist (slots 0.." +
                     std::to_string(slots() - 1) + ")");
}

void SlotBookkeeping::check_input(const SlotTokens& input) const {
  const auto slot = std::to_string(input.slot);
  const auto cached = lengths_[static_cast<std::size_t>(input.slot)];
  const auto tokens = static_cast<std::int64_t>(input.tokens.size());
  if (tokens == 0) throw UsageError("step: no tokens for slot " + slot);
  if (cached + tokens > capacity_) {
    if (cached == 0)
      throw UsageError("step: a prompt of " + std::to_string(tokens) + " tokens does not fit a slot of " +
                       std::to_string(capacity_));
    if (cached == capacity_) throw UsageError("step: slot " + slot + " is full (" + std::to_string(capacity_) + " tokens)");
    throw UsageError("step: slot " + slot + " holds " + std::to_string(cached) + " tokens; " + std::to_string(tokens) +
                     " more do not fit its " + std::to_string(capacity_));
  }
  for (std::size_t i = 0; i < input.tokens.size(); ++i) {
    const auto token = input.tokens[i];
    if (token >= 0 && (vocab_size_ == 0 || token < vocab_size_)) continue;
    const auto where = tokens == 1 ? "the token for slot " + slot : "slot " + slot + "'s token " + std::to_string(i);
    throw UsageError("step: " + where + ": token id " + std::to_string(token) + " is outside the vocabulary (ids 0.." +
                     (vocab_size_ > 0 ? std::to_string(vocab_size_ - 1) : std::string("")) + ")");
  }
}

torch::Tensor SlotBookkeeping::step(const std::vector<SlotTokens>& inputs) {
  std::vector<bool> seen(lengths_.size(), false);
  for (const auto& input : inputs) {
    check_slot(input.slot, "step");
    const auto index = static_cast<std::size_t>(input.slot);
    if (seen[index]) throw UsageError("step: slot " + std::to_string(input.slot) + " is given twice");
    seen[index] = true;
    check_input(input);
  }
  if (inputs.empty()) return torch::empty({0, vocab_size_}, torch::kFloat32);
  auto logits = run_step(inputs);
  vocab_size_ = logits.size(-1);
  for (const auto& input : inputs)
    lengths_[static_cast<std::size_t>(input.slot)] += static_cast<std::int64_t>(input.tokens.size());
  return logits;
}

void SlotBookkeeping::release(int slot) {
  check_slot(slot, "release");
  forget(slot);
  lengths_[static_cast<std::size_t>(slot)] = 0;
}

}  // namespace accel::models::detail
