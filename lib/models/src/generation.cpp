#include "accel/core/error.h"
#include "accel/models/generation.h"

#include <algorithm>
#include <limits>

namespace accel::models {
namespace {

void check_options(const GenerationOptions& o) {
  if (o.max_new_tokens < 0)
    throw UsageError("max_new_tokens must be >= 0, got " + std::to_string(o.max_new_tokens));
  if (!o.do_sample) return;
  if (!(o.temperature > 0))
    throw UsageError("temperature must be > 0, got " + std::to_string(o.temperature));
  if (o.top_k < 0) throw UsageError("top_k must be >= 0 (0 = off), got " + std::to_string(o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1))
    throw UsageError("top_p must be in (0, 1] (1 = off), got " + std::to_string(o.top_p));
}

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
  return torch::multinomial(logits.softmax(1), 1, /*replacement=*/false, gen).squeeze(1);
}

// Finished rows and left padding need some id; any works since the mask hides it.
std::int64_t padding_id(const CausalLM& model, const GenerationOptions& options) {
  if (options.pad_token_id) return *options.pad_token_id;
  const auto eos = model.eos_token_ids();
  return eos.empty() ? 0 : eos.front();
}

}  // namespace

Generation generate(CausalLM& model, const torch::Tensor& input_ids,
                    const torch::Tensor& attention_mask, const GenerationOptions& options) {
  torch::NoGradGuard no_grad;
  check_options(options);
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(1) == 0 ||
      input_ids.size(0) == 0)
    throw UsageError("generate needs input_ids of shape [batch, tokens] with at least one token");
  const auto batch = input_ids.size(0);
  const auto limit = model.max_positions();
  if (limit && input_ids.size(1) + options.max_new_tokens > *limit)
    throw UsageError("a prompt of " + std::to_string(input_ids.size(1)) + " tokens plus " +
                     std::to_string(options.max_new_tokens) +
                     " new tokens exceeds the model's maximum sequence length " +
                     std::to_string(*limit));
  const auto eos = torch::tensor(model.eos_token_ids(), torch::kLong);
  const auto pad = padding_id(model, options);

  auto ids = input_ids.to(torch::kCPU, torch::kLong);
  auto mask = attention_mask.defined() ? attention_mask.to(torch::kCPU, torch::kLong)
                                       : torch::ones_like(ids);
  if (mask.sizes() != ids.sizes())
    throw UsageError("attention_mask has shape " + c10::str(mask.sizes()) +
                     " but input_ids has " + c10::str(ids.sizes()));
  if (mask.sum(1).eq(0).any().item<bool>())
    throw UsageError("every prompt needs at least one token with attention_mask 1");

  KVCache cache;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  auto finished = torch::zeros({batch}, torch::kBool);
  Generation result;
  result.new_tokens.resize(batch);
  for (std::int64_t step = 0; step < options.max_new_tokens; ++step) {
    const bool incremental = options.use_cache && step > 0;
    auto logits = model.next_token_logits(incremental ? ids.narrow(1, ids.size(1) - 1, 1) : ids, mask,
                              options.use_cache ? &cache : nullptr);
    auto next = options.do_sample ? sample(logits, options, gen) : logits.argmax(1);
    next = next.masked_fill(finished, pad);
    for (std::int64_t b = 0; b < batch; ++b)
      if (!finished[b].item<bool>()) result.new_tokens[b].push_back(next[b].item<std::int64_t>());
    ids = torch::cat({ids, next.unsqueeze(1)}, 1);
    mask = torch::cat({mask, torch::ones({batch, 1}, torch::kLong)}, 1);
    if (options.stop_at_eos && eos.numel() > 0) finished |= torch::isin(next, eos);
    if (finished.all().item<bool>()) break;
  }
  result.sequences = ids;
  return result;
}

Generation generate(CausalLM& model, const std::vector<std::vector<std::int64_t>>& prompts,
                    const GenerationOptions& options) {
  if (prompts.empty()) throw UsageError("generate needs at least one prompt");
  std::size_t longest = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      throw UsageError("prompt " + std::to_string(i) + " is empty; every prompt needs a token");
    longest = std::max(longest, prompts[i].size());
  }
  const auto rows = static_cast<std::int64_t>(prompts.size());
  const auto width = static_cast<std::int64_t>(longest);
  const auto pad = padding_id(model, options);
  auto ids = torch::full({rows, width}, pad, torch::kLong);
  auto mask = torch::zeros({rows, width}, torch::kLong);
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto& p = prompts[r];
    const auto n = static_cast<std::int64_t>(p.size());
    ids[r].narrow(0, width - n, n).copy_(torch::tensor(p, torch::kLong));
    mask[r].narrow(0, width - n, n).fill_(1);
  }
  return generate(model, ids, mask, options);
}

}  // namespace accel::models
