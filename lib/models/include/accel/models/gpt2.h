#pragma once
// The GPT-2 family (GPT2Model, GPT2LMHeadModel, GPT2ForSequenceClassification) as a BlockModel:
// blocks "embeddings", "h.0" .. "h.{n_layer-1}", "head". Weights come from a seeded random
// initialisation or from a model.safetensors with the public GPT-2 parameter names and layouts
// (Conv1D weights stored [in, out], lm_head tied to wte, names with or without "transformer.").
//
// What flows between blocks (the pipeline's stage boundaries):
//   embeddings: {input_ids [B,T] int64, attention_mask [B,T] (optional)} -> {hidden, mask}
//   h.i:        {hidden [B,T,D], attention_mask [B,T] int64}             -> {hidden, mask}
//   head:       {hidden, attention_mask} -> {logits [B,T,V]}       (language model)
//                                        -> {logits [B,num_labels]} (sequence classification,
//                                           pooled at each row's last non-padding token)
//                                        -> {last_hidden_state}     (bare GPT2Model)
// Position ids follow the attention mask (cumsum - 1), so a left-padded row gives the same
// outputs for its real tokens as the row run alone.
#include "accel/models/blocks.h"
#include "accel/models/checkpoint.h"
#include "accel/models/generation.h"
#include "accel/models/gpt2_config.h"
#include "accel/models/safetensors.h"

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace accel::models {

enum class GPT2Head { kNone, kLanguageModel, kSequenceClassification };

struct GPT2Options {
  GPT2Config config;
  std::string checkpoint;  // a weights file, index or checkpoint directory; empty: seeded random initialisation
  std::uint64_t seed = 0;  // random initialisation only; each tensor's values depend on its name
  torch::ScalarType dtype = torch::kFloat32;  // float32 or bfloat16 on CPU; float16 needs CUDA
  torch::Device device = torch::kCPU;

  // config.json and the weights (model.safetensors or a sharded index) of a checkpoint
  // directory. Throws FileError naming the missing file.
  static GPT2Options from_directory(const std::string& dir);
};

namespace detail {
class Embeddings;
class TransformerBlock;
class Head;
class SlotAttention;
}  // namespace detail

class GPT2 : public BlockModel {
 public:
  GPT2(GPT2Head head, GPT2Options options);
  ~GPT2() override;

  std::vector<BlockSpec> blocks() const override;
  const GPT2Config& config() const { return options_.config; }
  const GPT2Options& options() const { return options_; }
  GPT2Head head_kind() const { return head_; }

  // Weights with their public names ("transformer." prefixed for the models with a head, as
  // the ecosystem saves them; a tied lm_head is not stored).
  NamedTensors state_dict();

  // Writes config.json and model.safetensors into `dir` (created if needed). Throws FileError
  // when either exists and !overwrite.
  void save_pretrained(const std::string& dir, bool overwrite = false);

 protected:
  // Behind the constructors that take only a config (the README's `Model(config)`): seeded
  // random weights with GPT2Options' defaults (seed 0, float32, CPU).
  static GPT2Options with_defaults(GPT2Config config) {
    GPT2Options options;
    options.config = std::move(config);
    return options;
  }
  // Builds every block in this process on first use (wte and lm_head share memory).
  void ensure_built();
  // Runs every block; with a cache, input_ids holds only the new tokens while attention_mask
  // covers past and new tokens, and the cache is extended.
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              KVCache* cache);
  detail::Head& head();
  // Whether the checkpoint holds `name` (with or without "transformer."); false without one.
  bool checkpoint_contains(const std::string& name) const;
  // The last hidden states [rows, n_embd] of one decode step over the rows `attention` holds.
  torch::Tensor slot_hidden_states(const std::vector<std::int64_t>& tokens, detail::SlotAttention& attention);

 private:
  GPT2Head head_;
  GPT2Options options_;
  std::shared_ptr<const Checkpoint> checkpoint_;
  std::shared_ptr<detail::Embeddings> embeddings_;
  std::vector<std::shared_ptr<detail::TransformerBlock>> layers_;
  std::shared_ptr<detail::Head> head_block_;
};

class GPT2Model : public GPT2 {
 public:
  explicit GPT2Model(GPT2Options options) : GPT2(GPT2Head::kNone, std::move(options)) {}
  explicit GPT2Model(GPT2Config config) : GPT2Model(with_defaults(std::move(config))) {}
  // Last hidden state [B,T,n_embd] (after ln_f).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
};

class GPT2LMHeadModel : public GPT2, public CausalLM {
 public:
  explicit GPT2LMHeadModel(GPT2Options options)
      : GPT2(GPT2Head::kLanguageModel, std::move(options)) {}
  explicit GPT2LMHeadModel(GPT2Config config) : GPT2LMHeadModel(with_defaults(std::move(config))) {}
  // Logits [B,T,vocab_size] in float32. See GPT2::hidden_states for the cache contract.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        KVCache* cache = nullptr);

  // accel::models::generate on this model; ids outside the vocabulary are a UsageError.
  Generation generate(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const GenerationOptions& options) {
    return models::generate(*this, input_ids, attention_mask, options);
  }
  Generation generate(const std::vector<std::vector<std::int64_t>>& prompts,
                      const GenerationOptions& options) {
    return models::generate(*this, prompts, options);
  }

  torch::Tensor next_token_logits(const torch::Tensor& input_ids,
                                  const torch::Tensor& attention_mask, KVCache* cache) override;
  // Internal to lib/models, the step behind make_slot_decoder (slot_decoder.h): tokens[r] at
  // row r's position of its slot -> the logits of rows `logit_rows`, [logit_rows.size(), vocab]
  // float32, each row's bitwise independent of the others.
  torch::Tensor decode_slot_rows(const std::vector<std::int64_t>& tokens, detail::SlotAttention& attention,
                                 const std::vector<std::int64_t>& logit_rows);
  std::optional<std::int64_t> max_positions() const override { return config().n_positions; }
  std::vector<std::int64_t> eos_token_ids() const override { return {config().eos_token_id}; }
  std::string describe() const override;
};

class GPT2ForSequenceClassification : public GPT2 {
 public:
  explicit GPT2ForSequenceClassification(GPT2Options options)
      : GPT2(GPT2Head::kSequenceClassification, std::move(options)) {}
  explicit GPT2ForSequenceClassification(GPT2Config config)
      : GPT2ForSequenceClassification(with_defaults(std::move(config))) {}
  // False when the checkpoint (a causal LM's, say) has no score.weight: the head is then
  // initialised from options.seed, as transformers does, and its labels mean nothing until trained.
  bool score_in_checkpoint() const;
  // Logits [B,num_labels] in float32, from each row's last token with attention_mask == 1.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
};

}  // namespace accel::models
