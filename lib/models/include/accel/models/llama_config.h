#pragma once
// The Llama family's config.json (model_type llama, mistral, qwen2, qwen3): one decoder with
// RMSNorm, rotary embeddings, a SwiGLU MLP and grouped-query attention, whose members differ
// in a few switches (qkv bias, q/k norm, sliding window), all read into one struct.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace accel::models {

struct RopeScaling {
  enum class Type { kNone, kLinear, kDynamic, kLlama3 };
  Type type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  // llama3 and dynamic: the context the model was trained with; 0 = max_position_embeddings.
  std::int64_t original_max_position_embeddings = 0;
};

struct LlamaConfig {
  std::string model_type = "llama";  // llama, mistral, qwen2, qwen3
  std::int64_t vocab_size = 32000;
  std::int64_t hidden_size = 4096;
  std::int64_t intermediate_size = 11008;
  std::int64_t num_hidden_layers = 32;
  std::int64_t num_attention_heads = 32;
  std::int64_t num_key_value_heads = 32;
  std::int64_t head_dim = 128;
  std::int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double initializer_range = 0.02;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // qwen2 always; llama's attention_bias
  bool o_bias = false;    // llama's attention_bias
  bool mlp_bias = false;  // llama's mlp_bias
  bool qk_norm = false;   // qwen3: RMSNorm over each head of q and k before the rotation
  // Keys a query may see, counting itself, in layers index >= sliding_window_from_layer;
  // 0 = all (mistral's sliding_window; qwen2/3's with use_sliding_window and max_window_layers).
  std::int64_t sliding_window = 0;
  std::int64_t sliding_window_from_layer = 0;
  std::optional<std::int64_t> bos_token_id;
  std::vector<std::int64_t> eos_token_ids;  // an int or a list in config.json
  std::optional<std::int64_t> pad_token_id;

  std::int64_t window_of_layer(std::int64_t layer) const {
    return layer >= sliding_window_from_layer ? sliding_window : 0;
  }

  // Throws UsageError naming `source` and the key when values do not fit together.
  void validate(const std::string& source) const;

  // Parses config.json text; unknown keys are ignored. A model_type outside the family, an
  // activation other than silu or an unsupported rope_scaling is a UsageError naming `source`,
  // the key, the value and what is accepted.
  static LlamaConfig from_json(const std::string& text, const std::string& source);
  static LlamaConfig from_file(const std::string& path);

  // generation_config.json's bos/eos/pad ids replace config.json's, as transformers' generate
  // prefers them. Errors name `path` and the key.
  void apply_generation_config(const std::string& path);
};

}  // namespace accel::models
