#include "model.h"

#include "accel/core/error.h"
#include "accel/models/auto_model.h"
#include "accel/models/gpt2.h"
#include "accel/models/tokenizer.h"
#include "accel/models/tokenizer_json.h"

#include <algorithm>
#include <chrono>

namespace accel::examples {
namespace {

constexpr std::uint64_t kEmbeddedSeed = 20240601;

// Small enough to start in a second on a CPU, with GPT-2's own vocabulary so the BPE
// tokenizer applies unchanged.
models::GPT2Options embedded_model() {
  models::GPT2Options options;
  options.config.n_layer = 4;
  options.config.n_embd = 256;
  options.config.n_head = 4;
  options.config.n_positions = 512;
  options.seed = kEmbeddedSeed;
  return options;
}

void check(const GenerationSettings& s) {
  if (s.batch_size < 1) throw UsageError("--batch_size must be at least 1, got " + std::to_string(s.batch_size));
  if (s.temperature < 0)
    throw UsageError("--temperature must be >= 0 (0 = greedy), got " + std::to_string(s.temperature));
}

}  // namespace

TextGenerator::TextGenerator(const GenerationSettings& settings, const c10::Device& device)
    : settings_(settings) {
  check(settings_);
  const auto dtype = models::parse_dtype(settings_.dtype);
  if (settings_.model_dir.empty()) {
    auto options = embedded_model();
    options.dtype = dtype;
    options.device = device;
    auto model = std::make_shared<models::GPT2LMHeadModel>(options);
    description_ = model->describe() + " with random weights (seed " + std::to_string(kEmbeddedSeed) +
                   "): the text is noise, not a trained model's";
    model_ = model;
    tokenizer_ = std::make_unique<models::GPT2Tokenizer>(models::GPT2Tokenizer::bundled());
    return;
  }
  model_ = models::load_causal_lm(settings_.model_dir, {dtype, device}).model;
  tokenizer_ = models::load_tokenizer(settings_.model_dir);
  description_ = model_->describe() + " from " + settings_.model_dir;
}

TextGenerator::~TextGenerator() = default;

std::vector<Completion> TextGenerator::run(
    const std::vector<std::string>& prompts, std::size_t first_index,
    const std::function<void(std::size_t, std::size_t)>& after_batch) const {
  std::vector<Completion> out;
  const auto batch_size = static_cast<std::size_t>(settings_.batch_size);
  for (std::size_t start = 0; start < prompts.size(); start += batch_size) {
    const auto end = std::min(prompts.size(), start + batch_size);
    std::vector<std::vector<std::int64_t>> ids;
    for (std::size_t i = start; i < end; ++i) {
      ids.push_back(tokenizer_->prompt_ids(prompts[i]));
      // A text with no ids at all (GPT-2's empty string) starts from the model's first EOS id,
      // which GPT-2 also uses as its BOS.
      if (ids.back().empty() && !model_->eos_token_ids().empty())
        ids.back().push_back(model_->eos_token_ids().front());
    }
    models::GenerationOptions generation;
    generation.max_new_tokens = settings_.max_new_tokens;
    generation.do_sample = settings_.temperature > 0;
    generation.temperature = generation.do_sample ? settings_.temperature : 1.0;
    generation.top_k = settings_.top_k;
    generation.top_p = settings_.top_p;
    generation.seed = settings_.seed + first_index + start;
    const auto began = std::chrono::steady_clock::now();
    const auto result = models::generate(*model_, ids, generation);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    for (std::size_t k = 0; k < result.new_tokens.size(); ++k) {
      const auto& tokens = result.new_tokens[k];
      out.push_back({tokenizer_->completion_text(tokens), tokens, static_cast<std::int64_t>(ids[k].size()), seconds,
                     result.prefill_seconds});
    }
    if (after_batch) after_batch(end, prompts.size());
  }
  return out;
}

std::string one_line(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out;
}

}  // namespace accel::examples
