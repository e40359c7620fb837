#pragma once
// A GPT-2 config as the ecosystem writes it in config.json. Defaults are GPT-2 small's.
#include <cstdint>
#include <optional>
#include <string>

namespace accel::models {

struct GPT2Config {
  std::int64_t vocab_size = 50257;
  std::int64_t n_positions = 1024;
  std::int64_t n_embd = 768;
  std::int64_t n_layer = 12;
  std::int64_t n_head = 12;
  std::int64_t n_inner = 0;  // 0 means 4 * n_embd, as in config.json's null
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";  // gelu_new, gelu_pytorch_tanh, gelu, relu
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  double initializer_range = 0.02;
  std::int64_t num_labels = 2;  // from id2label (or num_labels) for sequence classification
  std::int64_t bos_token_id = 50256;
  std::int64_t eos_token_id = 50256;
  std::optional<std::int64_t> pad_token_id;

  std::int64_t inner_dim() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  std::int64_t head_dim() const { return n_embd / n_head; }

  // Throws UsageError naming `source` and the key when a value is out of range or the
  // dimensions do not fit together (n_embd divisible by n_head, ...).
  void validate(const std::string& source) const;

  // Parses config.json text; unknown keys are ignored (the ecosystem's files carry many).
  // Errors name `source` and the key.
  static GPT2Config from_json(const std::string& text, const std::string& source);
  static GPT2Config from_file(const std::string& path);
  std::string to_json() const;
};

}  // namespace accel::models
