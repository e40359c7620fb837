#pragma once
// Autoregressive generation for any causal language model: greedy or seeded top-k/top-p
// sampling over a left-padded batch, with a key/value cache, stopping at the model's EOS ids.
// GPT-2 and the Llama family implement CausalLM; generate() is written once for both.
#include "accel/models/kv_cache.h"

#include <torch/types.h>

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
  double prefill_seconds = 0;  // the first step: the prompts through the model to every row's first token
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

// UsageError naming the option at fault: max_new_tokens < 0, or, when sampling, a temperature,
// top_k or top_p out of range.
void check_generation_options(const GenerationOptions& options);

// The id given to finished rows and to left padding (the mask hides it): options.pad_token_id,
// else the first EOS id, else 0.
std::int64_t padding_id(const std::vector<std::int64_t>& eos_token_ids, const GenerationOptions& options);

// Prompts of different lengths as one batch, left-padded with `pad_id` to the longest:
// input_ids and attention_mask [prompts, longest] int64. UsageError for no prompts or an
// empty one.
struct PromptBatch {
  torch::Tensor input_ids, attention_mask;
};
PromptBatch left_pad(const std::vector<std::vector<std::int64_t>>& prompts, std::int64_t pad_id);

// The prompts generate() takes, as int64 on the CPU (no mask: every token is real). UsageError
// for input_ids that are not [batch, tokens] with a token, a mask of another shape or with a row
// without a token, or prompts that with max_new_tokens exceed `max_positions`.
PromptBatch checked_prompts(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                            std::optional<std::int64_t> max_positions, const GenerationOptions& options);

// Picks each row's next token from its logits as generate() does: the first maximum (greedy),
// or a draw with the options' temperature, top_k, top_p and seed. A draw takes one exponential
// variate per (row, vocabulary entry) in row order from one generator, so rows drawn in
// consecutive parts (a pipeline's micro-batches, in order) get the tokens the whole batch gets
// at once; skip() consumes the variates of rows left out of a step.
class TokenChooser {
 public:
  // UsageError for out-of-range options (check_generation_options).
  explicit TokenChooser(const GenerationOptions& options);
  // logits [rows, vocab] float32 on the CPU -> the next token of each row [rows] int64.
  torch::Tensor choose(const torch::Tensor& logits);
  void skip(std::int64_t rows, std::int64_t vocab);

 private:
  GenerationOptions options_;
  at::Generator generator_;
};

// Throws UsageError for empty prompts, a mask of another shape, prompts that with
// max_new_tokens exceed max_positions(), or out-of-range sampling options.
Generation generate(CausalLM& model, const torch::Tensor& input_ids,
                    const torch::Tensor& attention_mask, const GenerationOptions& options);
// Left-pads `prompts` into one batch and generates for all of them at once.
Generation generate(CausalLM& model, const std::vector<std::vector<std::int64_t>>& prompts,
                    const GenerationOptions& options);

}  // namespace accel::models
