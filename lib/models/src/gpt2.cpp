#include "accel/models/gpt2.h"

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "gpt2_blocks.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace accel::models {

namespace fs = std::filesystem;

GPT2Options GPT2Options::from_directory(const std::string& dir) {
  GPT2Options options;
  options.checkpoint = Checkpoint::weights_file(dir);
  options.config = GPT2Config::from_file((fs::path(dir) / "config.json").string());
  return options;
}

GPT2::GPT2(GPT2Head head, GPT2Options options) : head_(head), options_(std::move(options)) {
  options_.config.validate(options_.checkpoint.empty() ? "GPT-2 config"
                                                       : "config of " + options_.checkpoint);
  detail::check_compute_dtype(options_.dtype, options_.device, "GPT-2");
  if (!options_.checkpoint.empty())
    checkpoint_ = std::make_shared<const Checkpoint>(options_.checkpoint);
}

GPT2::~GPT2() = default;

std::vector<BlockSpec> GPT2::blocks() const {
  const auto source = std::make_shared<const detail::WeightSource>(options_, checkpoint_);
  const auto& c = options_.config;
  const auto d = c.n_embd, inner = c.inner_dim();
  std::vector<BlockSpec> specs;
  specs.push_back({"embeddings", (c.vocab_size + c.n_positions) * d,
                   [source] { return std::make_shared<detail::Embeddings>(*source); }});
  const auto layer_params = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * inner + inner) +
                            (inner * d + d);
  for (std::int64_t i = 0; i < c.n_layer; ++i)
    specs.push_back({"h." + std::to_string(i), layer_params,
                     [source, i] { return std::make_shared<detail::TransformerBlock>(*source, i); }});
  const auto head_out = head_ == GPT2Head::kLanguageModel ? c.vocab_size * d
                        : head_ == GPT2Head::kSequenceClassification ? c.num_labels * d
                                                                      : 0;
  specs.push_back({"head", 2 * d + head_out,
                   [source, kind = head_] { return std::make_shared<detail::Head>(*source, kind); }});
  return specs;
}

void GPT2::ensure_built() {
  if (head_block_) return;
  detail::build_blocks(blocks(), embeddings_, layers_, head_block_);
  head_block_->tie_to(embeddings_->wte());
}

detail::Head& GPT2::head() {
  ensure_built();
  return *head_block_;
}

torch::Tensor GPT2::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  KVCache* cache) {
  ensure_built();
  const auto past = cache != nullptr ? cache->length() : 0;
  const auto mask = detail::model_mask(input_ids, attention_mask, past, options_.device);
  const auto tokens = input_ids.size(1);
  auto positions = detail::positions_from_mask(mask).narrow(1, past, tokens);
  auto h = embeddings_->embed(input_ids, positions);
  const auto blocked = detail::blocked_keys(mask, tokens);
  for (auto& layer : layers_) h = layer->run(h, blocked, cache);
  return h;
}

torch::Tensor GPT2::slot_hidden_states(const std::vector<std::int64_t>& tokens, detail::SlotAttention& attention) {
  ensure_built();
  std::vector<std::int64_t> positions;
  for (std::size_t r = 0; r < tokens.size(); ++r) positions.push_back(attention.position(r));
  auto h = embeddings_->embed(torch::tensor(tokens, torch::kLong), torch::tensor(positions, torch::kLong));
  for (auto& layer : layers_) h = layer->decode_rows(h, attention);
  return h;
}

NamedTensors GPT2::state_dict() {
  ensure_built();
  const std::string prefix = head_ == GPT2Head::kNone ? "" : "transformer.";
  NamedTensors out;
  auto append = [&](const detail::NamedBlock& block) {
    for (const auto& [name, tensor] : block.weights()) {
      if (name == "lm_head.weight") {
        if (!head_block_->tied()) out.emplace_back(name, tensor);
      } else if (name == "score.weight") {
        out.emplace_back(name, tensor);
      } else {
        out.emplace_back(prefix + name, tensor);
      }
    }
  };
  append(*embeddings_);
  for (const auto& layer : layers_) append(*layer);
  append(*head_block_);
  return out;
}

void GPT2::save_pretrained(const std::string& dir, bool overwrite) {
  const auto config_path = fs::path(dir) / "config.json";
  const auto weights_path = fs::path(dir) / "model.safetensors";
  // Check both before writing either, so a refusal leaves nothing half-saved.
  for (const auto& p : {config_path, weights_path})
    if (!overwrite && fs::exists(p))
      throw FileError(p.string(), "already exists; refusing to overwrite it");
  files::make_directories(dir);

  save_safetensors(weights_path.string(), state_dict(),
                   {.overwrite = overwrite, .metadata = {{"format", "pt"}}});
  files::replace_atomically(config_path.string(), options_.config.to_json());
}

torch::Tensor GPT2Model::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  torch::NoGradGuard no_grad;
  auto hidden = hidden_states(input_ids, attention_mask, nullptr);
  return head().apply(hidden, torch::Tensor()).to(torch::kFloat32);
}

torch::Tensor GPT2LMHeadModel::forward(const torch::Tensor& input_ids,
                                       const torch::Tensor& attention_mask, KVCache* cache) {
  torch::NoGradGuard no_grad;
  auto hidden = hidden_states(input_ids, attention_mask, cache);
  return head().apply(hidden, torch::Tensor()).to(torch::kFloat32);
}

torch::Tensor GPT2LMHeadModel::next_token_logits(const torch::Tensor& input_ids,
                                                 const torch::Tensor& attention_mask,
                                                 KVCache* cache) {
  c10::InferenceMode inference;
  auto hidden = hidden_states(input_ids, attention_mask, cache);
  // Only the last position feeds the next token: the vocabulary projection is the costliest
  // matmul, so it runs on one position instead of all.
  return head().apply(hidden.narrow(1, hidden.size(1) - 1, 1), torch::Tensor())
      .squeeze(1)
      .to(torch::kCPU, torch::kFloat32);
}

torch::Tensor GPT2LMHeadModel::decode_slot_rows(const std::vector<std::int64_t>& tokens,
                                                detail::SlotAttention& attention,
                                                const std::vector<std::int64_t>& logit_rows) {
  c10::InferenceMode inference;
  const auto hidden = slot_hidden_states(tokens, attention);
  return head().decode_logits(hidden.index_select(0, torch::tensor(logit_rows, torch::kLong)));
}

std::string GPT2LMHeadModel::describe() const {
  const auto& c = config();
  return "gpt2: " + std::to_string(c.n_layer) + " layers, hidden " + std::to_string(c.n_embd) +
         ", " + std::to_string(c.n_head) + " heads, vocabulary " + std::to_string(c.vocab_size);
}

bool GPT2::checkpoint_contains(const std::string& name) const {
  return detail::WeightSource(options_, checkpoint_).checkpoint_contains(name);
}

bool GPT2ForSequenceClassification::score_in_checkpoint() const {
  return options().checkpoint.empty() || checkpoint_contains("score.weight");
}

torch::Tensor GPT2ForSequenceClassification::forward(const torch::Tensor& input_ids,
                                                     const torch::Tensor& attention_mask) {
  torch::NoGradGuard no_grad;
  auto hidden = hidden_states(input_ids, attention_mask, nullptr);
  auto mask = attention_mask.defined()
                  ? attention_mask
                  : torch::ones({input_ids.size(0), input_ids.size(1)}, torch::kLong);
  return head().apply(hidden, mask.to(hidden.device())).to(torch::kFloat32);
}

}  // namespace accel::models
