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

void SlotBookkeeping::check_token(std::int64_t token, const std::string& where) const {
  if (token < 0 || (vocab_size_ > 0 && token >= vocab_size_))
    throw UsageError(where + ": token id " + std::to_string(token) + " is outside the vocabulary (ids 0.." +
                     (vocab_size_ > 0 ? std::to_string(vocab_size_ - 1) : std::string("")) + ")");
}

torch::Tensor SlotBookkeeping::prefill(int slot, const std::vector<std::int64_t>& prompt) {
  check_slot(slot, "prefill");
  auto& length = lengths_[static_cast<std::size_t>(slot)];
  if (length > 0)
    throw UsageError("prefill: slot " + std::to_string(slot) + " is busy (" + std::to_string(length) +
                     " tokens); release it first");
  if (prompt.empty()) throw UsageError("prefill: the prompt for slot " + std::to_string(slot) + " is empty");
  const auto tokens = static_cast<std::int64_t>(prompt.size());
  if (tokens > capacity_)
    throw UsageError("prefill: a prompt of " + std::to_string(tokens) + " tokens does not fit a slot of " +
                     std::to_string(capacity_));
  for (std::size_t i = 0; i < prompt.size(); ++i) check_token(prompt[i], "prefill: prompt position " + std::to_string(i));
  auto logits = run_prompt(slot, prompt);
  vocab_size_ = logits.size(-1);
  length = tokens;
  return logits;
}

torch::Tensor SlotBookkeeping::decode(const std::vector<int>& slots, const std::vector<std::int64_t>& tokens) {
  if (slots.size() != tokens.size())
    throw UsageError("decode: " + std::to_string(slots.size()) + " slots but " + std::to_string(tokens.size()) +
                     " tokens; give one token per slot");
  std::vector<bool> seen(lengths_.size(), false);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const auto slot = slots[i];
    check_slot(slot, "decode");
    const auto index = static_cast<std::size_t>(slot);
    if (seen[index]) throw UsageError("decode: slot " + std::to_string(slot) + " is given twice");
    seen[index] = true;
    if (lengths_[index] == 0) throw UsageError("decode: slot " + std::to_string(slot) + " is free; prefill it first");
    if (lengths_[index] >= capacity_)
      throw UsageError("decode: slot " + std::to_string(slot) + " is full (" + std::to_string(capacity_) +
                       " tokens)");
    check_token(tokens[i], "decode: the token for slot " + std::to_string(slot));
  }
  if (slots.empty()) return torch::empty({0, vocab_size_}, torch::kFloat32);
  auto logits = run_step(slots, tokens);
  for (const auto slot : slots) ++lengths_[static_cast<std::size_t>(slot)];
  return logits;
}

void SlotBookkeeping::release(int slot) {
  check_slot(slot, "release");
  forget(slot);
  lengths_[static_cast<std::size_t>(slot)] = 0;
}

}  // namespace accel::models::detail
