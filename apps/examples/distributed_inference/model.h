#pragma once
// The one place the example touches a model: a request's prompt in, token ids out, and generated
// ids back to text. The model is any checkpoint lib/models reads (GPT-2 or the Llama family,
// with its tokenizer.json or GPT-2 vocabulary files), or by default a small embedded GPT-2
// config with seeded random weights (the same on every rank and every run) and GPT-2's own
// vocabulary.
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accel/core/error.h"
#include "accel/models/chat.h"

namespace accel::models {
class CausalLM;
class Tokenizer;
class SlotDecoder;
}  // namespace accel::models

namespace accel::batch {
struct Request;
}

namespace accel::examples {

struct ModelSettings {
  std::string model_dir;  // empty: the embedded small GPT-2 with random weights
  std::string dtype = "float32";
};

// A request's prompt as the model reads it: the text (a completion's prompt, or a chat
// request's rendered template) and its token ids.
struct RenderedPrompt {
  std::string text;
  std::vector<std::int64_t> ids;
};

// What turns requests into prompts, without the weights: the checkpoint's tokenizer, and its chat
// template when it has one (chat_template.jinja, or tokenizer_config.json's chat_template).
class PromptBuilder {
 public:
  // Throws accel::FileError / UsageError naming the tokenizer or template file at fault.
  explicit PromptBuilder(const ModelSettings& settings);
  ~PromptBuilder();
  // Completions: the prompt with the tokenizer's BOS; chat: the template's text, encoded without
  // added special tokens. PromptRefused for a chat request to a model without a chat template,
  // or a conversation the template refuses.
  RenderedPrompt render(const batch::Request& request) const;
  const models::Tokenizer& tokenizer() const;
  // generation_config.json's eos ids and the chat template's eos_token (none without a template).
  std::vector<std::int64_t> chat_stop_ids() const;
  // generation_config.json's sampling defaults (none for the built-in GPT-2), read once.
  const models::GenerationDefaults& generation_defaults() const { return generation_defaults_; }

 private:
  std::string model_dir_;
  std::unique_ptr<models::Tokenizer> tokenizer_;  // without a chat template
  std::unique_ptr<models::ChatModel> chat_;       // with one: it holds the tokenizer
  models::GenerationDefaults generation_defaults_;
};

class TextModel {
 public:
  // Throws accel::FileError / UsageError naming the checkpoint file, key or option at fault.
  TextModel(const ModelSettings& settings, const c10::Device& device);
  ~TextModel();

  // "gpt2: 4 layers, hidden 256, ... with random weights (seed 20240601)" or "... from DIR".
  const std::string& description() const { return description_; }

  // The seam where a request becomes the model's input (PromptBuilder::render); an empty
  // completion prompt starts from the model's first EOS id.
  std::vector<std::int64_t> prompt_ids(const batch::Request& request) const;
  std::string text(const std::vector<std::int64_t>& ids) const;
  // The model's EOS ids and, with a chat template, generation_config.json's and the template's.
  std::vector<std::int64_t> eos_token_ids() const;
  std::optional<std::int64_t> max_positions() const;
  const models::GenerationDefaults& generation_defaults() const { return prompts_->generation_defaults(); }

  // `slots` sequences of up to `capacity` tokens each, decoded side by side.
  std::unique_ptr<models::SlotDecoder> slot_decoder(int slots, std::int64_t capacity) const;

 private:
  std::shared_ptr<models::CausalLM> model_;
  std::unique_ptr<PromptBuilder> prompts_;  // after the weights: a bad config.json is reported first
  std::string description_;
};

// A request the model cannot take (no chat template, an empty prompt): the reason, and the
// body key at fault. It becomes the request's error line; the job goes on.
class PromptRefused : public UsageError {
 public:
  PromptRefused(const std::string& reason, std::string param) : UsageError(reason), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

// The name output lines give as "model": the checkpoint directory's name, or "embedded-gpt2".
std::string model_name(const ModelSettings& settings);

// Newlines, tabs and carriage returns escaped so a text fits on one line of the job's printout.
std::string one_line(const std::string& text);

}  // namespace accel::examples
