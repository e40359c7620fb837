#pragma once
// What every SlotDecoder shares: which slots are busy and how long each is, and the checks of
// slot_decoder.h's contract, made before any work so that a refused call changes nothing.
// Subclasses only compute. Private to lib/models.
#include "accel/models/slot_decoder.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace accel::models::detail {

class SlotBookkeeping : public SlotDecoder {
 public:
  int slots() const final { return static_cast<int>(lengths_.size()); }
  std::int64_t slot_capacity() const final { return capacity_; }
  std::int64_t length(int slot) const final;

  torch::Tensor step(const std::vector<SlotTokens>& inputs) final;
  void release(int slot) final;

 protected:
  // UsageError for slots < 1, capacity < 1 or a capacity beyond `max_positions`. Token ids are
  // checked against `vocab_size` (0: unknown, learnt from the first prefill's logits; until then
  // the model checks a prompt's ids itself).
  SlotBookkeeping(int slots, std::int64_t capacity, std::int64_t vocab_size,
                  std::optional<std::int64_t> max_positions);

  // The checked inputs through the model, each after its slot's length() cached tokens (0 for a
  // free slot): the logits after each input's last token, [inputs.size(), vocab].
  virtual torch::Tensor run_step(const std::vector<SlotTokens>& inputs) = 0;
  // Called by release() before the slot's length becomes 0.
  virtual void forget(int /*slot*/) {}

 private:
  void check_slot(int slot, const char* call) const;
  void check_input(const SlotTokens& input) const;

  std::int64_t capacity_, vocab_size_;
  std::vector<std::int64_t> lengths_;
};

}  // namespace accel::models::detail
