#include "accel/models/llama_config.h"

#include "accel/models/auto_model.h"
#include "accel/models/llama.h"

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "json_keys.h"

#include <algorithm>

namespace accel::models {
namespace {

using detail::read_key;
using detail::require_positive;
std::vector<std::string> model_types() { return {"llama", "mistral", "qwen2", "qwen3"}; }

RopeScaling read_rope_scaling(const nlohmann::json& j, const std::string& source) {
  RopeScaling r;
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return r;
  const auto& s = j["rope_scaling"];
  if (!s.is_object())
    throw UsageError(source + ": key 'rope_scaling' has value " + text::quote(s.dump()) +
                     "; expected an object or null");
  // Newer files say rope_type, older ones type.
  std::string type = "default";
  read_key(s, "type", type, source + " rope_scaling");
  read_key(s, "rope_type", type, source + " rope_scaling");
  if (type == "default") return r;
  if (type == "linear") r.type = RopeScaling::Type::kLinear;
  else if (type == "dynamic") r.type = RopeScaling::Type::kDynamic;
  else if (type == "llama3") r.type = RopeScaling::Type::kLlama3;
  else
    throw UsageError(source + ": rope_scaling type '" + type +
                     "' is not supported; accepted: default, linear, dynamic, llama3");
  if (!s.contains("factor"))
    throw UsageError(source + ": rope_scaling of type " + text::quote(type) + " needs a 'factor'");
  read_key(s, "factor", r.factor, source + " rope_scaling");
  read_key(s, "low_freq_factor", r.low_freq_factor, source + " rope_scaling");
  read_key(s, "high_freq_factor", r.high_freq_factor, source + " rope_scaling");
  read_key(s, "original_max_position_embeddings", r.original_max_position_embeddings,
           source + " rope_scaling");
  if (r.type == RopeScaling::Type::kLlama3 && r.original_max_position_embeddings <= 0)
    throw UsageError(source + ": rope_scaling of type 'llama3' needs a positive "
                              "'original_max_position_embeddings'");
  if (!(r.factor >= 1.0))
    throw UsageError(source + ": rope_scaling factor must be >= 1, got " + std::to_string(r.factor));
  if (r.type == RopeScaling::Type::kLlama3 && !(r.high_freq_factor > r.low_freq_factor))
    throw UsageError(source + ": rope_scaling high_freq_factor (" + std::to_string(r.high_freq_factor) +
                     ") must exceed low_freq_factor (" + std::to_string(r.low_freq_factor) + ")");
  return r;
}

std::vector<std::int64_t> read_token_ids(const nlohmann::json& j, const char* key,
                                         const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return {};
  if (j[key].is_number_integer()) return {j[key].get<std::int64_t>()};
  std::vector<std::int64_t> ids;
  read_key(j, key, ids, source);
  return ids;
}

// Keys absent from `j` leave `c` as it is.
void read_special_ids(const nlohmann::json& j, const std::string& source, LlamaConfig& c) {
  read_key(j, "bos_token_id", c.bos_token_id, source);
  read_key(j, "pad_token_id", c.pad_token_id, source);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null())
    c.eos_token_ids = read_token_ids(j, "eos_token_id", source);
}

}  // namespace

ModelFamily llama_family() {
  return {.name = "Llama",
          .model_types = model_types(),
          .block_names = "`model.embed_tokens`, `model.layers.0` .. `model.layers.{L-1}`, `lm_head` (with the "
                         "final `model.norm`)",
          .features = {"`rope_theta`; `rope_scaling` of type `linear`, `dynamic`, `llama3`",
                       "grouped-query attention (`num_key_value_heads`), `head_dim`",
                       "`attention_bias`, `mlp_bias` (llama); qkv bias (qwen2); q/k RMSNorm (qwen3)",
                       "`sliding_window` (mistral; qwen2/3 with `use_sliding_window` from `max_window_layers`)",
                       "`lm_head` tied (`tie_word_embeddings`) or stored",
                       "`generation_config.json`'s special token ids"},
          .load = load_from_directory<LlamaForCausalLM, LlamaOptions>};
}

void LlamaConfig::validate(const std::string& source) const {
  require_positive(vocab_size, "vocab_size", source);
  require_positive(hidden_size, "hidden_size", source);
  require_positive(intermediate_size, "intermediate_size", source);
  require_positive(num_hidden_layers, "num_hidden_layers", source);
  require_positive(num_attention_heads, "num_attention_heads", source);
  require_positive(num_key_value_heads, "num_key_value_heads", source);
  require_positive(head_dim, "head_dim", source);
  require_positive(max_position_embeddings, "max_position_embeddings", source);
  if (num_attention_heads % num_key_value_heads != 0)
    throw UsageError(source + ": num_attention_heads (" + std::to_string(num_attention_heads) +
                     ") must be a multiple of num_key_value_heads (" +
                     std::to_string(num_key_value_heads) + ")");
  if (head_dim % 2 != 0)
    throw UsageError(source + ": head_dim must be even for rotary embeddings, got " +
                     std::to_string(head_dim));
  if (!(rms_norm_eps > 0)) throw UsageError(source + ": key 'rms_norm_eps' must be positive");
  if (!(rope_theta > 0)) throw UsageError(source + ": key 'rope_theta' must be positive");
  detail::require_positive_or_unset(sliding_window, "sliding_window", source);
  for (auto id : eos_token_ids)
    if (id < 0) throw UsageError(source + ": eos_token_id " + std::to_string(id) + " is negative");
}

LlamaConfig LlamaConfig::from_json(const std::string& text, const std::string& source) {
  const auto j = detail::parse_json_object(text, source);
  LlamaConfig c;
  read_key(j, "model_type", c.model_type, source);
  const auto types = model_types();
  if (std::find(types.begin(), types.end(), c.model_type) == types.end())
    throw UsageError(source + ": model_type '" + c.model_type +
                     "' is not in the Llama family; accepted: " + text::join(types, ", "));
  std::string act = "silu";
  read_key(j, "hidden_act", act, source);
  if (act != "silu")
    throw UsageError(source + ": hidden_act " + text::quote(act) + " is not supported; accepted: silu");
  read_key(j, "vocab_size", c.vocab_size, source);
  read_key(j, "hidden_size", c.hidden_size, source);
  read_key(j, "intermediate_size", c.intermediate_size, source);
  read_key(j, "num_hidden_layers", c.num_hidden_layers, source);
  read_key(j, "num_attention_heads", c.num_attention_heads, source);
  require_positive(c.num_attention_heads, "num_attention_heads", source);
  c.num_key_value_heads = c.num_attention_heads;
  read_key(j, "num_key_value_heads", c.num_key_value_heads, source);
  // Qwen3's own default is 128; the others derive it from the hidden size.
  c.head_dim = c.model_type == "qwen3" ? 128 : c.hidden_size / c.num_attention_heads;
  read_key(j, "head_dim", c.head_dim, source);
  read_key(j, "max_position_embeddings", c.max_position_embeddings, source);
  read_key(j, "rms_norm_eps", c.rms_norm_eps, source);
  read_key(j, "rope_theta", c.rope_theta, source);
  c.rope_scaling = read_rope_scaling(j, source);
  read_key(j, "initializer_range", c.initializer_range, source);
  read_key(j, "tie_word_embeddings", c.tie_word_embeddings, source);

  bool attention_bias = false;
  read_key(j, "attention_bias", attention_bias, source);
  if (c.model_type == "llama") {
    c.qkv_bias = c.o_bias = attention_bias;
    read_key(j, "mlp_bias", c.mlp_bias, source);
  } else if (c.model_type == "qwen2") {
    c.qkv_bias = true;
  } else if (c.model_type == "qwen3") {
    c.qkv_bias = c.o_bias = attention_bias;
    c.qk_norm = true;
  }
  if (c.model_type == "mistral") {
    read_key(j, "sliding_window", c.sliding_window, source);
  } else if (c.model_type == "qwen2" || c.model_type == "qwen3") {
    bool use_sliding_window = false;
    read_key(j, "use_sliding_window", use_sliding_window, source);
    if (use_sliding_window) {
      read_key(j, "sliding_window", c.sliding_window, source);
      c.sliding_window_from_layer = 28;  // max_window_layers' default in both
      read_key(j, "max_window_layers", c.sliding_window_from_layer, source);
    }
  }
  read_special_ids(j, source, c);
  c.validate(source);
  return c;
}

LlamaConfig LlamaConfig::from_file(const std::string& path) {
  return from_json(detail::read_text_file(path, "config"), path);
}

void LlamaConfig::apply_generation_config(const std::string& path) {
  const auto j = detail::parse_json_object(detail::read_text_file(path, "generation config"), path);
  read_special_ids(j, path, *this);
  validate(path);
}

}  // namespace accel::models
