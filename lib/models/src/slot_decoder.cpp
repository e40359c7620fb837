#include "accel/models/slot_decoder.h"

#include "accel/models/generation.h"
#include "accel/models/gpt2.h"
#include "accel/models/llama.h"
#include "slot_attention.h"
#include "slot_bookkeeping.h"

#include <algorithm>

namespace accel::models {
namespace {

// The vocabulary of the families this library knows; 0 (learnt at the first prefill) for others.
std::int64_t vocab_size(const CausalLM& model) {
  if (const auto* gpt2 = dynamic_cast<const GPT2LMHeadModel*>(&model)) return gpt2->config().vocab_size;
  if (const auto* llama = dynamic_cast<const LlamaForCausalLM*>(&model)) return llama->config().vocab_size;
  return 0;
}

// Each slot holds a cache of its own and every row runs alone through next_token_logits(): a
// row's logits are those of generate() on its prompt alone, whatever else is busy, at the cost
// of reading the weights once per row. It serves any CausalLM.
class RowByRowDecoder final : public detail::SlotBookkeeping {
 public:
  RowByRowDecoder(CausalLM& model, int slots, std::int64_t capacity)
      : SlotBookkeeping(slots, capacity, vocab_size(model), model.max_positions()), model_(model) {
    for (int s = 0; s < slots; ++s) caches_.emplace_back(capacity);
  }

 private:
  torch::Tensor run_prompt(int slot, const std::vector<std::int64_t>& prompt) override {
    const auto ids = torch::tensor(prompt, torch::kLong).unsqueeze(0);
    KVCache cache(slot_capacity());
    auto logits = model_.next_token_logits(ids, torch::ones_like(ids), &cache);
    caches_[static_cast<std::size_t>(slot)] = std::move(cache);  // only once the model took the prompt
    return logits[0];
  }

  torch::Tensor run_step(const std::vector<int>& slots, const std::vector<std::int64_t>& tokens) override {
    std::vector<torch::Tensor> rows;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const auto ids = torch::full({1, 1}, tokens[i], torch::kLong);
      const auto mask = torch::ones({1, length(slots[i]) + 1}, torch::kLong);
      rows.push_back(model_.next_token_logits(ids, mask, &caches_[static_cast<std::size_t>(slots[i])]));
    }
    return torch::cat(rows, 0);
  }

  void forget(int slot) override { caches_[static_cast<std::size_t>(slot)].clear(); }

  CausalLM& model_;
  std::vector<KVCache> caches_;
};

// A model of this library on the CPU: a prompt runs alone through next_token_logits() (no
// padding; the head on its last position only) and its keys and values move into the slot; a
// step runs all its rows at once through the model's decode_slot_rows(), reading each weight
// once for all of them, every row attending over its own slot only.
template <class Model>
class BatchedDecoder final : public detail::SlotBookkeeping {
 public:
  BatchedDecoder(Model& model, int slots, std::int64_t capacity, const detail::SlotCacheShape& shape)
      : SlotBookkeeping(slots, capacity, model.config().vocab_size, model.max_positions()),
        model_(model),
        attention_(shape) {}

 private:
  torch::Tensor run_prompt(int slot, const std::vector<std::int64_t>& prompt) override {
    const auto ids = torch::tensor(prompt, torch::kLong).unsqueeze(0);
    KVCache cache(ids.size(1));
    auto logits = model_.next_token_logits(ids, torch::ones_like(ids), &cache);
    attention_.store_prompt(slot, cache);
    return logits[0];
  }

  torch::Tensor run_step(const std::vector<int>& slots, const std::vector<std::int64_t>& tokens) override {
    std::vector<std::int64_t> lengths;
    for (const auto slot : slots) lengths.push_back(length(slot));
    attention_.begin_step(slots, lengths);
    return model_.decode_slot_rows(tokens, attention_);
  }

  Model& model_;
  detail::SlotAttention attention_;
};

}  // namespace

std::unique_ptr<SlotDecoder> make_slot_decoder(CausalLM& model, int slots, std::int64_t capacity) {
  // The slot cache's shape is only made once the decoder's checks have passed (base first).
  const auto shape = [&](std::int64_t layers, std::int64_t kv_heads, std::int64_t head_dim, torch::ScalarType dtype) {
    return detail::SlotCacheShape{layers, std::max(slots, 1), kv_heads, std::max<std::int64_t>(capacity, 1), head_dim,
                                  dtype};
  };
  if (auto* gpt2 = dynamic_cast<GPT2LMHeadModel*>(&model); gpt2 && gpt2->options().device.is_cpu()) {
    const auto& c = gpt2->config();
    return std::make_unique<BatchedDecoder<GPT2LMHeadModel>>(
        *gpt2, slots, capacity, shape(c.n_layer, c.n_head, c.head_dim(), gpt2->options().dtype));
  }
  if (auto* llama = dynamic_cast<LlamaForCausalLM*>(&model); llama && llama->options().device.is_cpu()) {
    const auto& c = llama->config();
    return std::make_unique<BatchedDecoder<LlamaForCausalLM>>(
        *llama, slots, capacity, shape(c.num_hidden_layers, c.num_key_value_heads, c.head_dim, llama->options().dtype));
  }
  return std::make_unique<RowByRowDecoder>(model, slots, capacity);
}

}  // namespace accel::models
