#include "accel/core/error.h"
#include "accel/models/generation.h"

#include <algorithm>
#include <chrono>
#include <limits>

namespace accel::models {

void check_generation_options(const GenerationOptions& o) {
  if (o.max_new_tokens < 0)
    throw UsageError("max_new_tokens must be >= 0, got " + std::to_string(o.max_new_tokens));
  if (!o.do_sample) return;
  if (!(o.temperature > 0))
    throw UsageError("temperature must be > 0, got " + std::to_string(o.temperature));
  if (o.top_k < 0) throw UsageError("top_k must be >= 0 (0 = off), got " + std::to_string(o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1))
    throw UsageError("top_p must be in (0, 1] (1 = off), got " + std::to_string(o.top_p));
}

namespace {

// Logits [B,V] float32 on CPU -> one sampled id per row.
torch::Tensor sample(torch::Tensor logits, const GenerationOptions& o, at::Generator& gen) {
  logits = logits / o.temperature;
  const auto lowest = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < logits.size(1)) {
    const auto kth = std::get<0>(logits.topk(o.top_k, 1)).narrow(1, o.top_k - 1, 1);
    logits = logits.masked_fill(logits < kth, lowest);
  }
  if (o.top_p < 1) {
    auto [sorted, order] = logits.sort(1, /*descending=*/true);
    const auto probs = sorted.softmax(1);
    // Drop a token when the tokens ranked above it already reach top_p; the first always stays.
    auto drop = (probs.cumsum(1) - probs) >= o.top_p;
    logits = logits.scatter(1, order, sorted.masked_fill(drop, lowest));
  }
  // multinomial's own method for one draw, spelled out so that TokenChooser::skip() can take the
  // same variates: the largest p / Exp(1) is a draw with probability p.
  const auto probs = logits.softmax(1);
  return (probs / torch::empty_like(probs).exponential_(1, gen)).argmax(1);
}

// Generates into ids[:, prompt:] step by step (in inference mode; ids and mask stay normal
// tensors) and returns how many columns of ids hold tokens when every row has stopped.
std::int64_t fill_tokens(CausalLM& model, torch::Tensor& ids, const torch::Tensor& mask,
                         std::int64_t prompt, const GenerationOptions& options, Generation& result) {
  c10::InferenceMode inference;
  const auto began = std::chrono::steady_clock::now();
  auto& new_tokens = result.new_tokens;
  const auto batch = ids.size(0), width = ids.size(1);
  const auto eos = torch::tensor(model.eos_token_ids(), torch::kLong);
  const bool stopping = options.stop_at_eos && eos.numel() > 0;
  const auto pad = padding_id(model.eos_token_ids(), options);
  KVCache cache(width);
  TokenChooser chooser(options);
  std::vector<bool> finished(static_cast<std::size_t>(batch), false);
  auto length = prompt;
  while (length < width) {
    const bool incremental = options.use_cache && length > prompt;
    const auto step_ids = incremental ? ids.narrow(1, length - 1, 1) : ids.narrow(1, 0, length);
    auto logits = model.next_token_logits(step_ids, mask.narrow(1, 0, length),
                                          options.use_cache ? &cache : nullptr);
    auto next = chooser.choose(logits).contiguous();
    const auto ends = stopping ? torch::isin(next, eos) : torch::zeros_like(next, torch::kBool);
    auto next_id = next.accessor<std::int64_t, 1>();
    const auto ended = ends.accessor<bool, 1>();
    bool all_finished = true;
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto row = static_cast<std::size_t>(b);
      if (finished[row]) {
        next_id[b] = pad;
        continue;
      }
      new_tokens[row].push_back(next_id[b]);
      finished[row] = ended[b];
      all_finished = all_finished && finished[row];
    }
    ids.select(1, length).copy_(next);
    if (length == prompt)
      result.prefill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    ++length;
    if (all_finished) break;
  }
  return length;
}

}  // namespace

std::int64_t padding_id(const std::vector<std::int64_t>& eos_token_ids, const GenerationOptions& options) {
  if (options.pad_token_id) return *options.pad_token_id;
  return eos_token_ids.empty() ? 0 : eos_token_ids.front();
}

PromptBatch left_pad(const std::vector<std::vector<std::int64_t>>& prompts, std::int64_t pad_id) {
  if (prompts.empty()) throw UsageError("generate needs at least one prompt");
  std::size_t longest = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      throw UsageError("prompt " + std::to_string(i) + " is empty; every prompt needs a token");
    longest = std::max(longest, prompts[i].size());
  }
  const auto rows = static_cast<std::int64_t>(prompts.size());
  const auto width = static_cast<std::int64_t>(longest);
  PromptBatch batch{torch::full({rows, width}, pad_id, torch::kLong), torch::zeros({rows, width}, torch::kLong)};
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto& p = prompts[static_cast<std::size_t>(r)];
    const auto n = static_cast<std::int64_t>(p.size());
    batch.input_ids[r].narrow(0, width - n, n).copy_(torch::tensor(p, torch::kLong));
    batch.attention_mask[r].narrow(0, width - n, n).fill_(1);
  }
  return batch;
}

PromptBatch checked_prompts(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                            std::optional<std::int64_t> max_positions, const GenerationOptions& options) {
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(1) == 0 || input_ids.size(0) == 0)
    throw UsageError("generate needs input_ids of shape [batch, tokens] with at least one token");
  if (max_positions && input_ids.size(1) + options.max_new_tokens > *max_positions)
    throw UsageError("a prompt of " + std::to_string(input_ids.size(1)) + " tokens plus " +
                     std::to_string(options.max_new_tokens) +
                     " new tokens exceeds the model's maximum sequence length " + std::to_string(*max_positions));
  PromptBatch batch{input_ids.to(torch::kCPU, torch::kLong), torch::Tensor()};
  batch.attention_mask = attention_mask.defined() ? attention_mask.to(torch::kCPU, torch::kLong)
                                                  : torch::ones_like(batch.input_ids);
  if (batch.attention_mask.sizes() != batch.input_ids.sizes())
    throw UsageError("attention_mask has shape " + c10::str(batch.attention_mask.sizes()) + " but input_ids has " +
                     c10::str(batch.input_ids.sizes()));
  if (batch.attention_mask.sum(1).eq(0).any().item<bool>())
    throw UsageError("every prompt needs at least one token with attention_mask 1");
  return batch;
}

TokenChooser::TokenChooser(const GenerationOptions& options)
    : options_(options), generator_(at::make_generator<at::CPUGeneratorImpl>(options.seed)) {
  check_generation_options(options);
}

torch::Tensor TokenChooser::choose(const torch::Tensor& logits) {
  return options_.do_sample ? sample(logits, options_, generator_) : logits.argmax(1);
}

void TokenChooser::skip(std::int64_t rows, std::int64_t vocab) {
  if (options_.do_sample) torch::empty({rows, vocab}, torch::kFloat32).exponential_(1, generator_);
}

Generation generate(CausalLM& model, const torch::Tensor& input_ids,
                    const torch::Tensor& attention_mask, const GenerationOptions& options) {
  check_generation_options(options);
  const auto prompts = checked_prompts(input_ids, attention_mask, model.max_positions(), options);
  const auto batch = input_ids.size(0), prompt = input_ids.size(1);
  const auto width = prompt + options.max_new_tokens;

  // The prompts and every token to come, and their mask, allocated once: a step writes one
  // column and passes views.
  auto ids = torch::full({batch, width}, padding_id(model.eos_token_ids(), options), torch::kLong);
  ids.narrow(1, 0, prompt).copy_(prompts.input_ids);
  auto mask = torch::ones({batch, width}, torch::kLong);
  mask.narrow(1, 0, prompt).copy_(prompts.attention_mask);

  Generation result;
  result.new_tokens.resize(static_cast<std::size_t>(batch));
  const auto length = fill_tokens(model, ids, mask, prompt, options, result);
  result.sequences = ids.narrow(1, 0, length);
  return result;
}

Generation generate(CausalLM& model, const std::vector<std::vector<std::int64_t>>& prompts,
                    const GenerationOptions& options) {
  const auto batch = left_pad(prompts, padding_id(model.eos_token_ids(), options));
  return generate(model, batch.input_ids, batch.attention_mask, options);
}

}  // namespace accel::models
