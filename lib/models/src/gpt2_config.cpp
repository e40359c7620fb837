#include "accel/models/gpt2_config.h"

#include "accel/models/auto_model.h"
#include "accel/models/gpt2.h"

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "json_keys.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>
#include <vector>

namespace accel::models {
using detail::read_key;
using detail::require_positive;
namespace {

constexpr const char* kActivations[] = {"gelu_new", "gelu_pytorch_tanh", "gelu", "relu"};

}  // namespace

ModelFamily gpt2_family() {
  const std::vector<std::string> activations(std::begin(kActivations), std::end(kActivations));
  return {.name = "GPT-2",
          .model_types = {"gpt2"},
          .untyped_key = "n_embd",  // files from before model_type existed
          .block_names = "`embeddings`, `h.0` .. `h.{n_layer-1}`, `head`",
          .features = {"`activation_function`: " + text::join(activations, ", "),
                       "`scale_attn_weights`, `scale_attn_by_inverse_layer_idx`", "`lm_head` tied to `wte` or stored",
                       "`GPT2ForSequenceClassification`'s labels from `id2label` or `num_labels`"},
          .load = load_from_directory<GPT2LMHeadModel, GPT2Options>};
}

void GPT2Config::validate(const std::string& source) const {
  require_positive(vocab_size, "vocab_size", source);
  require_positive(n_positions, "n_positions", source);
  require_positive(n_embd, "n_embd", source);
  require_positive(n_layer, "n_layer", source);
  require_positive(n_head, "n_head", source);
  require_positive(num_labels, "num_labels", source);
  detail::require_positive_or_unset(n_inner, "n_inner", source);
  if (n_embd % n_head != 0)
    throw UsageError(source + ": n_embd (" + std::to_string(n_embd) +
                     ") must be divisible by n_head (" + std::to_string(n_head) + ")");
  if (!(layer_norm_epsilon > 0))
    throw UsageError(source + ": key 'layer_norm_epsilon' must be positive");
  const std::vector<std::string> accepted(std::begin(kActivations), std::end(kActivations));
  if (std::find(accepted.begin(), accepted.end(), activation_function) == accepted.end())
    throw UsageError(source + ": activation_function " + text::quote(activation_function) +
                     " is not supported; accepted: " + text::join(accepted, ", "));
}

GPT2Config GPT2Config::from_json(const std::string& text, const std::string& source) {
  const auto j = detail::parse_json_object(text, source);
  GPT2Config c;
  for (const auto& [key, member] :
       {std::pair{"vocab_size", &GPT2Config::vocab_size}, {"n_positions", &GPT2Config::n_positions},
        {"n_embd", &GPT2Config::n_embd}, {"n_layer", &GPT2Config::n_layer},
        {"n_head", &GPT2Config::n_head}, {"n_inner", &GPT2Config::n_inner}})
    read_key(j, key, c.*member, source);
  read_key(j, "layer_norm_epsilon", c.layer_norm_epsilon, source);
  read_key(j, "activation_function", c.activation_function, source);
  read_key(j, "scale_attn_weights", c.scale_attn_weights, source);
  read_key(j, "scale_attn_by_inverse_layer_idx", c.scale_attn_by_inverse_layer_idx, source);
  read_key(j, "initializer_range", c.initializer_range, source);
  read_key(j, "bos_token_id", c.bos_token_id, source);
  read_key(j, "eos_token_id", c.eos_token_id, source);
  read_key(j, "pad_token_id", c.pad_token_id, source);
  // The ecosystem stores the label count as id2label; num_labels is accepted too.
  if (j.contains("id2label") && j["id2label"].is_object())
    c.num_labels = static_cast<std::int64_t>(j["id2label"].size());
  read_key(j, "num_labels", c.num_labels, source);
  c.validate(source);
  return c;
}

GPT2Config GPT2Config::from_file(const std::string& path) {
  return from_json(detail::read_text_file(path, "config"), path);
}

std::string GPT2Config::to_json() const {
  nlohmann::json j = {
      {"model_type", "gpt2"},
      {"vocab_size", vocab_size},
      {"n_positions", n_positions},
      {"n_embd", n_embd},
      {"n_layer", n_layer},
      {"n_head", n_head},
      {"n_inner", n_inner > 0 ? nlohmann::json(n_inner) : nlohmann::json()},
      {"layer_norm_epsilon", layer_norm_epsilon},
      {"activation_function", activation_function},
      {"scale_attn_weights", scale_attn_weights},
      {"scale_attn_by_inverse_layer_idx", scale_attn_by_inverse_layer_idx},
      {"initializer_range", initializer_range},
      {"num_labels", num_labels},
      {"bos_token_id", bos_token_id},
      {"eos_token_id", eos_token_id},
  };
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  return j.dump(2) + "\n";
}

}  // namespace accel::models
