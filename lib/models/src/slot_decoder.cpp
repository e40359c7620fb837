#include "accel/models/slot_decoder.h"

#include "accel/core/error.h"
#include "accel/models/generation.h"
#include "accel/models/gpt2.h"
#include "accel/models/llama.h"
#include "rows_product.h"
#include "slot_attention.h"
#include "slot_bookkeeping.h"

#include <algorithm>
#include <string>

namespace accel::models {
namespace {

// The vocabulary of the families this library knows; 0 (learnt at the first prefill) for others.
std::int64_t vocab_size(const CausalLM& model) {
  if (const auto* gpt2 = dynamic_cast<const GPT2LMHeadModel*>(&model)) return gpt2->config().vocab_size;
  if (const auto* llama = dynamic_cast<const LlamaForCausalLM*>(&model)) return llama->config().vocab_size;
  return 0;
}

// Each slot holds a cache of its own and every input runs alone through next_token_logits(): a
// row's logits are those of generate() on its prompt alone, whatever else is busy, at the cost
// of reading the weights once per input. It serves any CausalLM.
class RowByRowDecoder final : public detail::SlotBookkeeping {
 public:
  RowByRowDecoder(CausalLM& model, int slots, std::int64_t capacity)
      : SlotBookkeeping(slots, capacity, vocab_size(model), model.max_positions()), model_(model) {
    for (int s = 0; s < slots; ++s) caches_.emplace_back(capacity);
  }

 private:
  torch::Tensor run_step(const std::vector<SlotTokens>& inputs) override {
    std::vector<torch::Tensor> rows;
    for (const auto& input : inputs) {
      const auto ids = torch::tensor(input.tokens, torch::kLong).unsqueeze(0);
      const auto mask = torch::ones({1, length(input.slot) + ids.size(1)}, torch::kLong);
      rows.push_back(model_.next_token_logits(ids, mask, &caches_[static_cast<std::size_t>(input.slot)]));
    }
    return torch::cat(rows, 0);
  }

  void forget(int slot) override { caches_[static_cast<std::size_t>(slot)].clear(); }

  CausalLM& model_;
  std::vector<KVCache> caches_;
};

// A model of this library on the CPU. A step runs the tokens of its inputs as one block of rows
// through the model's decode_slot_rows(), reading each weight once for all of them; each row
// attends over its own slot up to its own position (a joining prompt's rows over the rows before
// them), and the head runs on each input's last row only. The exception is a whole prompt longer
// than kRowsFasterThanGemm tokens: its products are bound by arithmetic, where BLAS is faster, so
// it runs alone through next_token_logits() and its keys and values move into the slot. Either way a row's result depends only on its own sequence (and whether its
// prompt came whole and long), never on the other inputs of the step.
template <class Model>
class BatchedDecoder final : public detail::SlotBookkeeping {
 public:
  BatchedDecoder(Model& model, int slots, std::int64_t capacity, const detail::SlotCacheShape& shape)
      : SlotBookkeeping(slots, capacity, model.config().vocab_size, model.max_positions()),
        model_(model),
        attention_(shape) {}

 private:
  torch::Tensor run_step(const std::vector<SlotTokens>& inputs) override {
    std::vector<torch::Tensor> logits(inputs.size());
    std::vector<int> row_slots;
    std::vector<std::int64_t> tokens, positions, last_rows;
    std::vector<std::size_t> joined;  // the inputs that run as rows, in order
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto& input = inputs[i];
      const auto cached = length(input.slot);
      if (cached == 0 && static_cast<std::int64_t>(input.tokens.size()) > detail::kRowsFasterThanGemm) {
        logits[i] = run_alone(input);
        continue;
      }
      for (std::size_t t = 0; t < input.tokens.size(); ++t) {
        row_slots.push_back(input.slot);
        tokens.push_back(input.tokens[t]);
        positions.push_back(cached + static_cast<std::int64_t>(t));
      }
      last_rows.push_back(static_cast<std::int64_t>(tokens.size()) - 1);
      joined.push_back(i);
    }
    if (!joined.empty()) {
      attention_.begin_step(row_slots, positions);
      auto rows = model_.decode_slot_rows(tokens, attention_, last_rows);
      if (joined.size() == inputs.size()) return rows;  // the usual step: nothing ran alone
      for (std::size_t k = 0; k < joined.size(); ++k) logits[joined[k]] = rows[static_cast<std::int64_t>(k)];
    }
    return torch::stack(logits);
  }

  torch::Tensor run_alone(const SlotTokens& prompt) {
    const auto ids = torch::tensor(prompt.tokens, torch::kLong).unsqueeze(0);
    KVCache cache(ids.size(1));
    auto logits = model_.next_token_logits(ids, torch::ones_like(ids), &cache);
    attention_.store_prompt(prompt.slot, cache);
    return logits[0];
  }

  Model& model_;
  detail::SlotAttention attention_;
};

}  // namespace

torch::Tensor SlotDecoder::prefill(int slot, const std::vector<std::int64_t>& prompt) {
  const bool exists = slot >= 0 && slot < slots();
  if (exists && length(slot) > 0)
    throw UsageError("prefill: slot " + std::to_string(slot) + " is busy (" + std::to_string(length(slot)) +
                     " tokens); release it first");
  if (prompt.empty()) throw UsageError("prefill: the prompt for slot " + std::to_string(slot) + " is empty");
  return step({{slot, prompt}})[0];
}

torch::Tensor SlotDecoder::decode(const std::vector<int>& slots, const std::vector<std::int64_t>& tokens) {
  if (slots.size() != tokens.size())
    throw UsageError("decode: " + std::to_string(slots.size()) + " slots but " + std::to_string(tokens.size()) +
                     " tokens; give one token per slot");
  std::vector<SlotTokens> inputs;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] >= 0 && slots[i] < this->slots() && length(slots[i]) == 0)
      throw UsageError("decode: slot " + std::to_string(slots[i]) + " is free; prefill it first");
    inputs.push_back({slots[i], {tokens[i]}});
  }
  return step(inputs);
}

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
