#pragma once
// Independent sequences decoded side by side, each in a slot of its own: what continuous batching
// needs from a model. A sequence enters a free slot with its prompt (run alone, so a batch of
// mixed lengths costs the sum of its lengths, not batch x longest), then advances one token per
// decode step beside whichever other slots are busy, each row attending over its own cached length
// only; when it ends, its slot is released and the next prompt takes it without the other slots'
// caches being copied or recomputed.
//
// Batch invariance: a row's logits depend only on its own tokens, never on which other slots
// share its step or how many there are, so greedy tokens are the same whatever the batch.
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace accel::models {

class CausalLM;

class SlotDecoder {
 public:
  virtual ~SlotDecoder() = default;

  virtual int slots() const = 0;
  // The longest sequence (prompt + generated tokens) one slot holds.
  virtual std::int64_t slot_capacity() const = 0;
  // Tokens cached in `slot` (0 when free).
  virtual std::int64_t length(int slot) const = 0;

  // Runs `prompt` alone into the free `slot` and returns the logits of its last position,
  // [vocab] float32 on the CPU. UsageError for a busy slot, an empty prompt, an id outside the
  // vocabulary, or a prompt longer than slot_capacity().
  virtual torch::Tensor prefill(int slot, const std::vector<std::int64_t>& prompt) = 0;

  // One step: tokens[i] is appended to busy slot slots[i] (distinct), and the logits of that
  // position are row i of the result, [slots.size(), vocab] float32 on the CPU. UsageError for a
  // free or repeated slot, sizes that differ, or a slot already at slot_capacity().
  virtual torch::Tensor decode(const std::vector<int>& slots, const std::vector<std::int64_t>& tokens) = 0;

  // Frees `slot` (its cached length becomes 0); the other slots are untouched.
  virtual void release(int slot) = 0;
};

// `slots` sequences of up to `capacity` tokens each over `model` (which must outlive the
// decoder). UsageError for slots < 1, capacity < 1, or a capacity beyond model.max_positions().
std::unique_ptr<SlotDecoder> make_slot_decoder(CausalLM& model, int slots, std::int64_t capacity);

}  // namespace accel::models
