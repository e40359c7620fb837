#pragma once
// Independent sequences decoded side by side, each in a slot of its own: what continuous batching
// needs from a model. A sequence enters a free slot with its prompt (no padding, so a batch of
// mixed lengths costs the sum of its lengths, not batch x longest), then advances one token per
// step beside whichever other slots are busy or joining, each row attending over its own cached
// length only; when it ends, its slot is released and the next prompt takes it without the other
// slots' caches being copied or recomputed.
//
// Batch invariance: a row's logits depend only on its own tokens, never on which other slots
// share its step or how many there are, so greedy tokens are the same whatever the batch.
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace accel::models {

class CausalLM;

// What one step appends to one slot: a free slot's prompt (or its first part), the rest of a
// prompt, or the token a busy slot generated last.
struct SlotTokens {
  int slot = 0;
  std::vector<std::int64_t> tokens;  // at least one id
};

class SlotDecoder {
 public:
  virtual ~SlotDecoder() = default;

  virtual int slots() const = 0;
  // The longest sequence (prompt + generated tokens) one slot holds.
  virtual std::int64_t slot_capacity() const = 0;
  // Tokens cached in `slot` (0 when free).
  virtual std::int64_t length(int slot) const = 0;

  // One step over any mix of joining and busy slots: inputs[i].tokens are appended to slot
  // inputs[i].slot after its length() cached tokens, and row i of the result, [inputs.size(), vocab]
  // float32 on the CPU, holds the logits after the last of them. The weights are read once for
  // every token of the step, so prompts joining beside busy rows cost about their own tokens (a
  // whole prompt of more than 32 tokens entering a free slot may run alone, by faster products:
  // logits then depend on whether a prompt came whole, never on the other inputs).
  // UsageError, changing nothing, for a slot that does not exist or is given twice, an input
  // with no tokens, an id outside the vocabulary, or a slot it would fill beyond slot_capacity().
  virtual torch::Tensor step(const std::vector<SlotTokens>& inputs) = 0;

  // Frees `slot` (its cached length becomes 0); the other slots are untouched.
  virtual void release(int slot) = 0;

  // step() for a prompt into a free slot alone: the logits after its last token, [vocab].
  // UsageError too for a busy slot or an empty prompt.
  torch::Tensor prefill(int slot, const std::vector<std::int64_t>& prompt);
  // step() with one token for each of `slots`, which must be busy: [slots.size(), vocab].
  // UsageError too for a free slot, or sizes that differ.
  torch::Tensor decode(const std::vector<int>& slots, const std::vector<std::int64_t>& tokens);
};

// `slots` sequences of up to `capacity` tokens each over `model` (which must outlive the
// decoder). UsageError for slots < 1, capacity < 1, or a capacity beyond model.max_positions().
std::unique_ptr<SlotDecoder> make_slot_decoder(CausalLM& model, int slots, std::int64_t capacity);

}  // namespace accel::models
