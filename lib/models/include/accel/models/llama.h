#pragma once
// The Llama family (llama, mistral, qwen2, qwen3) as a causal language model and as blocks:
// "model.embed_tokens", "model.layers.0" .. "model.layers.{L-1}", "lm_head" (the final
// model.norm and the vocabulary projection), so pipeline::prepare splits it by HF names.
// Weights come from a checkpoint in Hugging Face layout (one model.safetensors or a sharded
// index; stored as float32, bfloat16 or float16, converted to the compute dtype on load) or from
// a seeded random initialisation.
//
// What flows between blocks:
//   model.embed_tokens: {input_ids [B,T] int64, attention_mask [B,T] (optional)} -> {hidden, mask}
//   model.layers.i:     {hidden [B,T,hidden_size], attention_mask [B,T] int64}  -> {hidden, mask}
//   lm_head:            {hidden, attention_mask}                                -> {logits [B,T,V]}
// Rotary positions follow the attention mask (cumsum - 1), so a left-padded row gives the same
// outputs for its real tokens as the row run alone.
#include "accel/models/blocks.h"
#include "accel/models/checkpoint.h"
#include "accel/models/generation.h"
#include "accel/models/llama_config.h"

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace accel::models {

struct LlamaOptions {
  LlamaConfig config;
  std::string checkpoint;  // a weights file, index or checkpoint directory; empty: random weights
  std::uint64_t seed = 0;  // random initialisation only; each tensor's values depend on its name
  torch::ScalarType dtype = torch::kFloat32;  // float32 or bfloat16 on CPU; float16 needs CUDA
  torch::Device device = torch::kCPU;

  // config.json (+ generation_config.json when present) and the weights of `dir`. Throws
  // FileError naming the missing file, UsageError naming a bad config key.
  static LlamaOptions from_directory(const std::string& dir);
};

namespace detail {
class LlamaEmbedding;
class LlamaLayer;
class LlamaHead;
class SlotAttention;
}  // namespace detail

class LlamaForCausalLM : public BlockModel, public CausalLM {
 public:
  // Throws UsageError for an invalid config or an unsupported dtype/device pair.
  explicit LlamaForCausalLM(LlamaOptions options);
  ~LlamaForCausalLM() override;

  std::vector<BlockSpec> blocks() const override;
  const LlamaConfig& config() const { return options_.config; }
  const LlamaOptions& options() const { return options_; }
  // The weights being read; null with random initialisation.
  const Checkpoint* checkpoint() const { return checkpoint_.get(); }

  // Logits [B,T,vocab_size] in float32. With a cache, input_ids holds only the new tokens while
  // attention_mask covers cached and new tokens, and the cache is extended.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        KVCache* cache = nullptr);

  torch::Tensor next_token_logits(const torch::Tensor& input_ids,
                                  const torch::Tensor& attention_mask, KVCache* cache) override;
  // Internal to lib/models, the step behind make_slot_decoder (slot_decoder.h): tokens[r] at
  // row r's position of its slot -> the logits of rows `logit_rows`, [logit_rows.size(), vocab]
  // float32, each row's bitwise independent of the others.
  torch::Tensor decode_slot_rows(const std::vector<std::int64_t>& tokens, detail::SlotAttention& attention,
                                 const std::vector<std::int64_t>& logit_rows);
  // Rotary embeddings have no hard limit (as in transformers); max_position_embeddings only
  // matters to dynamic rope scaling.
  std::optional<std::int64_t> max_positions() const override { return std::nullopt; }
  std::vector<std::int64_t> eos_token_ids() const override { return options_.config.eos_token_ids; }
  std::string describe() const override;

 private:
  // Builds every block in this process on first use (a tied lm_head shares embed_tokens).
  void ensure_built();
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              KVCache* cache);

  LlamaOptions options_;
  std::shared_ptr<const Checkpoint> checkpoint_;
  std::shared_ptr<detail::LlamaEmbedding> embedding_;
  std::vector<std::shared_ptr<detail::LlamaLayer>> layers_;
  std::shared_ptr<detail::LlamaHead> head_;
};

}  // namespace accel::models
