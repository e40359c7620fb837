#include "model.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "accel/batch/request.h"
#include "accel/core/error.h"
#include "accel/models/auto_model.h"
#include "accel/models/chat.h"
#include "accel/models/gpt2.h"
#include "accel/models/slot_decoder.h"
#include "accel/models/tokenizer.h"
#include "accel/models/tokenizer_json.h"

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

// Whether `dir` holds a chat template. A tokenizer_config.json that cannot be read says yes, so
// that ChatModel's error names what is wrong with it.
bool has_chat_template(const std::string& dir) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(dir) / "chat_template.jinja")) return true;
  std::ifstream config(fs::path(dir) / "tokenizer_config.json");
  if (!config) return false;
  const auto json = nlohmann::json::parse(config, nullptr, false);
  return json.is_discarded() || (json.is_object() && json.contains("chat_template"));
}

}  // namespace

PromptBuilder::PromptBuilder(const ModelSettings& settings) : model_dir_(settings.model_dir) {
  if (model_dir_.empty()) {
    tokenizer_ = std::make_unique<models::GPT2Tokenizer>(models::GPT2Tokenizer::bundled());
  } else if (has_chat_template(model_dir_)) {
    chat_ = std::make_unique<models::ChatModel>(models::ChatModel::from_directory(model_dir_));
  } else {
    tokenizer_ = models::load_tokenizer(model_dir_);
  }
  if (chat_) generation_defaults_ = chat_->generation_defaults();
  else if (!model_dir_.empty()) generation_defaults_ = models::load_generation_defaults(model_dir_);
}

PromptBuilder::~PromptBuilder() = default;

const models::Tokenizer& PromptBuilder::tokenizer() const { return chat_ ? chat_->tokenizer() : *tokenizer_; }

std::vector<std::int64_t> PromptBuilder::chat_stop_ids() const {
  return chat_ ? chat_->stop_token_ids() : std::vector<std::int64_t>{};
}

RenderedPrompt PromptBuilder::render(const batch::Request& request) const {
  if (request.endpoint == batch::Endpoint::kCompletions) return {request.prompt, tokenizer().prompt_ids(request.prompt)};
  if (!chat_) {
    const auto where = model_dir_.empty() ? std::string("the built-in GPT-2 has none")
                                          : model_dir_ + " has no chat_template.jinja and no chat_template in "
                                                         "tokenizer_config.json";
    throw PromptRefused("the model has no chat template (" + where +
                            "); send /v1/completions requests with a prompt, or use a checkpoint with a chat template",
                        "messages");
  }
  models::ChatRequest chat;
  chat.messages = request.chat.messages;
  chat.tools = request.chat.tools;
  chat.documents = request.chat.documents;
  chat.template_kwargs = request.chat.chat_template_kwargs;
  try {
    auto prompt = chat_->prompt(chat);
    return {std::move(prompt.text), std::move(prompt.ids)};
  } catch (const UsageError& e) {
    throw PromptRefused(e.what(), "messages");
  }
}

TextModel::TextModel(const ModelSettings& settings, const c10::Device& device) {
  const auto dtype = models::parse_dtype(settings.dtype);
  if (settings.model_dir.empty()) {
    auto options = embedded_model();
    options.dtype = dtype;
    options.device = device;
    auto model = std::make_shared<models::GPT2LMHeadModel>(options);
    description_ = model->describe() + " with random weights (seed " + std::to_string(kEmbeddedSeed) +
                   "): the text is noise, not a trained model's";
    model_ = model;
  } else {
    model_ = models::load_causal_lm(settings.model_dir, {dtype, device}).model;
    description_ = model_->describe() + " from " + settings.model_dir;
  }
  prompts_ = std::make_unique<PromptBuilder>(settings);
}

std::string model_name(const ModelSettings& settings) {
  if (settings.model_dir.empty()) return "embedded-gpt2";
  auto path = std::filesystem::path(settings.model_dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // "dir/" names "dir"
  return path.filename().string();
}

TextModel::~TextModel() = default;

std::vector<std::int64_t> TextModel::prompt_ids(const batch::Request& request) const {
  auto ids = prompts_->render(request).ids;
  // A text with no ids at all (GPT-2's empty string) starts from the model's first EOS id,
  // which GPT-2 also uses as its BOS.
  if (ids.empty() && !model_->eos_token_ids().empty()) ids.push_back(model_->eos_token_ids().front());
  if (ids.empty()) throw PromptRefused("the prompt has no tokens", "prompt");
  return ids;
}

std::string TextModel::text(const std::vector<std::int64_t>& ids) const {
  return prompts_->tokenizer().completion_text(ids);
}

std::vector<std::int64_t> TextModel::eos_token_ids() const {
  auto ids = model_->eos_token_ids();
  for (const auto id : prompts_->chat_stop_ids())
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}
std::optional<std::int64_t> TextModel::max_positions() const { return model_->max_positions(); }

std::unique_ptr<models::SlotDecoder> TextModel::slot_decoder(int slots, std::int64_t capacity) const {
  return models::make_slot_decoder(*model_, slots, capacity);
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
