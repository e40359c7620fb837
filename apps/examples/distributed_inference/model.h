#pragma once
// The one place the example touches a model: prompts in, completions out. The model is any
// checkpoint lib/models reads (GPT-2 or the Llama family, with its tokenizer.json or GPT-2
// vocabulary files), or by default a small embedded GPT-2 config with seeded random weights
// (the same on every rank and every run) and GPT-2's own vocabulary.
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace accel::models {
class CausalLM;
class Tokenizer;
}  // namespace accel::models

namespace accel::examples {

struct GenerationSettings {
  std::string model_dir;  // empty: the embedded small GPT-2 with random weights
  std::string dtype = "float32";
  int batch_size = 8;  // prompts per forward, left-padded
  int max_new_tokens = 16;
  double temperature = 0;  // 0: greedy; > 0: sampling
  int top_k = 0;           // 0: off
  double top_p = 1.0;      // 1: off
  std::uint64_t seed = 0;
};

struct Completion {
  std::string text;  // newlines and tabs kept; see one_line() for result files
  std::vector<std::int64_t> new_tokens;  // generated ids, the EOS that stopped it included
  std::int64_t prompt_tokens = 0;
  double batch_seconds = 0;  // wall time of the batch the prompt ran in
  double prefill_seconds = 0;  // of that batch: its prompts through the model to the first tokens
};

class TextGenerator {
 public:
  // Throws accel::FileError / UsageError naming the checkpoint file, key or option at fault.
  TextGenerator(const GenerationSettings& settings, const c10::Device& device);
  ~TextGenerator();

  // "gpt2: 4 layers, hidden 256, ... with random weights (seed 20240601)" or "... from DIR".
  const std::string& description() const { return description_; }

  // Completions of `prompts` in order, batch_size at a time; `after_batch(done, total)` is
  // called after each batch. `first_index` (the global index of prompts[0]) seeds sampling,
  // so a prompt's sample does not depend on which rank ran it.
  std::vector<Completion> run(const std::vector<std::string>& prompts, std::size_t first_index,
                              const std::function<void(std::size_t, std::size_t)>& after_batch) const;

 private:
  GenerationSettings settings_;
  std::shared_ptr<models::CausalLM> model_;
  std::unique_ptr<models::Tokenizer> tokenizer_;
  std::string description_;
};

// Newlines, tabs and carriage returns escaped so a text fits on one line of a result file.
std::string one_line(const std::string& text);

}  // namespace accel::examples
