#include "model.h"

#include "accel/models/gpt2.h"
#include "accel/models/tokenizer.h"

#include <filesystem>

namespace accel::examples {
namespace {

// Small enough to start in a second on a CPU, with GPT-2's own vocabulary so the BPE
// tokenizer applies unchanged.
models::GPT2Options embedded_model() {
  models::GPT2Options options;
  options.config.n_layer = 4;
  options.config.n_embd = 256;
  options.config.n_head = 4;
  options.config.n_positions = 512;
  options.seed = 20240601;
  return options;
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

}  // namespace

std::vector<std::string> run_model(const std::vector<std::string>& prompts, const c10::Device& device,
                                   const GenerationOptions& options) {
  const bool embedded = options.model_dir.empty();
  auto model_options = embedded ? embedded_model() : models::GPT2Options::from_directory(options.model_dir);
  model_options.device = device;
  models::GPT2LMHeadModel model(model_options);
  // A checkpoint directory brings its own vocabulary files; the embedded model uses the shipped one.
  const auto tokenizer = embedded ? models::GPT2Tokenizer::bundled()
                                  : models::GPT2Tokenizer::from_directory(options.model_dir);

  if (prompts.empty()) return {};
  std::vector<std::vector<std::int64_t>> ids;
  for (const auto& prompt : prompts) {
    ids.push_back(tokenizer.encode(prompt));
    // GPT-2 starts an empty text from its bos (= eos) token.
    if (ids.back().empty()) ids.back().push_back(model_options.config.bos_token_id);
  }
  models::GenerationOptions generation;
  generation.max_new_tokens = options.max_new_tokens;
  const auto result = model.generate(ids, generation);

  std::vector<std::string> outputs;
  for (auto tokens : result.new_tokens) {
    if (!tokens.empty() && tokens.back() == model_options.config.eos_token_id) tokens.pop_back();
    outputs.push_back(one_line(tokenizer.decode(tokens)));
  }
  return outputs;
}

}  // namespace accel::examples
