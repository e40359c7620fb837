#pragma once
// Autoregressive generation for any causal language model: greedy or seeded top-k/top-p
// sampling over a left-padded batch, with a key/value cache, stopping at the model's EOS ids.
// GPT-2 and the Llama family implement CausalLM; generate() is written once for both.
#include "accel/models/kv_cache.h"

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace accel::models {

struct GenerationOptions {
  std::int64_t max_new_tokens = 16;
  bool do_sample = false;  // false: greedy (the first maximum)
  double temperature = 1.0;
  std::int64_t top_k = 0;  // 0: no top-k filter
  double top_p = 1.0;      // 1: no nucleus filter
  std::uint64_t seed = 0;  // sampling only
  bool use_cache = true;
  bool stop_at_eos = true;  // a row stops after any of the model's EOS ids
  std::optional<std::int64_t> pad_token_id;  // finished rows and left padding; default: first EOS
};

struct Generation {
  torch::Tensor sequences;  // [B, T + steps]: the (left-padded) prompts and the new tokens
  std::vector<std::vector<std::int64_t>> new_tokens;  // per row, up to and including the EOS
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  // Logits [B, vocab] float32 on the CPU for the last position of each row. With a cache,
  // input_ids holds only the new tokens while attention_mask covers cached and new tokens
  // (1 = token, 0 = left padding), and the cache is extended.
  virtual torch::Tensor next_token_logits(const torch::Tensor& input_ids,
                                          const torch::Tensor& attention_mask, KVCache* cache) = 0;
  // The longest sequence the model accepts (prompt + new tokens); nullopt when unbounded.
  virtual std::optional<std::int64_t> max_positions() const = 0;
  virtual std::vector<std::int64_t> eos_token_ids() const = 0;
  // One line for people: the architecture and its size, e.g. "llama: 2 layers, hidden 64".
  virtual std::string describe() const = 0;
};

// Throws UsageError for empty prompts, a mask of another shape, prompts that with
// max_new_tokens exceed max_positions(), or out-of-range sampling options.
Generation generate(CausalLM& model, const torch::Tensor& input_ids,
                    const torch::Tensor& attention_mask, const GenerationOptions& options);
// Left-pads `prompts` into one batch and generates for all of them at once.
Generation generate(CausalLM& model, const std::vector<std::vector<std::int64_t>>& prompts,
                    const GenerationOptions& options);

}  // namespace accel::models
