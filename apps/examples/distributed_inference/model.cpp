#include "model.h"

#include <filesystem>

#include "accel/batch/request.h"
#include "accel/core/error.h"
#include "accel/models/auto_model.h"
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

}  // namespace

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
    tokenizer_ = std::make_unique<models::GPT2Tokenizer>(models::GPT2Tokenizer::bundled());
    return;
  }
  model_ = models::load_causal_lm(settings.model_dir, {dtype, device}).model;
  tokenizer_ = models::load_tokenizer(settings.model_dir);
  description_ = model_->describe() + " from " + settings.model_dir;
}

std::string model_name(const ModelSettings& settings) {
  if (settings.model_dir.empty()) return "embedded-gpt2";
  auto path = std::filesystem::path(settings.model_dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // "dir/" names "dir"
  return path.filename().string();
}

TextModel::~TextModel() = default;

std::vector<std::int64_t> TextModel::prompt_ids(const batch::Request& request) const {
  if (request.endpoint == batch::Endpoint::kChatCompletions) {
    throw PromptRefused("/v1/chat/completions is not served yet (chat templates are not wired into this job); "
                        "send /v1/completions requests with a prompt",
                        "messages");
  }
  auto ids = tokenizer_->prompt_ids(request.prompt);
  // A text with no ids at all (GPT-2's empty string) starts from the model's first EOS id,
  // which GPT-2 also uses as its BOS.
  if (ids.empty() && !model_->eos_token_ids().empty()) ids.push_back(model_->eos_token_ids().front());
  if (ids.empty()) throw PromptRefused("the prompt has no tokens", "prompt");
  return ids;
}

std::string TextModel::text(const std::vector<std::int64_t>& ids) const { return tokenizer_->completion_text(ids); }
std::vector<std::int64_t> TextModel::eos_token_ids() const { return model_->eos_token_ids(); }
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
