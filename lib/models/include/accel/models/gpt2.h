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
#include "accel/models/gpt2_config.h"
#include "accel/models/safetensors.h"

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace accel::models {

enum class GPT2Head { kNone, kLanguageModel, kSequenceClassification };

struct GPT2Options {
  GPT2Config config;
  std::string checkpoint;  // a model.safetensors; empty: seeded random initialisation
  std::uint64_t seed = 0;  // random initialisation only; each tensor's values depend on its name
  torch::ScalarType dtype = torch::kFloat32;  // float32 or bfloat16 on CPU; float16 needs CUDA
  torch::Device device = torch::kCPU;

  // config.json + model.safetensors from a checkpoint directory. Throws FileError naming the
  // missing file.
  static GPT2Options from_directory(const std::string& dir);
};

// "float32"/"fp32", "bfloat16"/"bf16", "float16"/"fp16"; UsageError listing these otherwise.
torch::ScalarType parse_dtype(const std::string& name);

// Keys and values of every layer seen so far, [B, n_head, T_past, head_dim] each.
struct KVCache {
  std::vector<torch::Tensor> keys;
  std::vector<torch::Tensor> values;
  std::int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
};

namespace detail {
class Embeddings;
class TransformerBlock;
class Head;
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

 private:
  GPT2Head head_;
  GPT2Options options_;
  std::shared_ptr<const SafetensorsFile> checkpoint_;
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

struct GenerationOptions {
  std::int64_t max_new_tokens = 16;
  bool do_sample = false;  // false: greedy
  double temperature = 1.0;
  std::int64_t top_k = 0;  // 0: no top-k filter
  double top_p = 1.0;      // 1: no nucleus filter
  std::uint64_t seed = 0;  // sampling only
  bool use_cache = true;
  bool stop_at_eos = true;                  // a row stops after config.eos_token_id
  std::optional<std::int64_t> pad_token_id;  // for finished rows and left padding; default eos
};

struct Generation {
  torch::Tensor sequences;  // [B, T + steps]: the (left-padded) prompts and the new tokens
  std::vector<std::vector<std::int64_t>> new_tokens;  // per row, up to and including eos
};

class GPT2LMHeadModel : public GPT2 {
 public:
  explicit GPT2LMHeadModel(GPT2Options options)
      : GPT2(GPT2Head::kLanguageModel, std::move(options)) {}
  explicit GPT2LMHeadModel(GPT2Config config) : GPT2LMHeadModel(with_defaults(std::move(config))) {}
  // Logits [B,T,vocab_size] in float32. See GPT2::hidden_states for the cache contract.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        KVCache* cache = nullptr);

  // Greedy or seeded top-k/top-p sampling. attention_mask marks left padding (1 = token).
  // Throws UsageError for empty prompts, ids outside the vocabulary, prompts that with
  // max_new_tokens exceed n_positions, or out-of-range sampling options.
  Generation generate(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const GenerationOptions& options);
  // Left-pads `prompts` into one batch and generates for all of them at once.
  Generation generate(const std::vector<std::vector<std::int64_t>>& prompts,
                      const GenerationOptions& options);

 private:
  torch::Tensor last_logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                            KVCache* cache);
};

class GPT2ForSequenceClassification : public GPT2 {
 public:
  explicit GPT2ForSequenceClassification(GPT2Options options)
      : GPT2(GPT2Head::kSequenceClassification, std::move(options)) {}
  explicit GPT2ForSequenceClassification(GPT2Config config)
      : GPT2ForSequenceClassification(with_defaults(std::move(config))) {}
  // Logits [B,num_labels] in float32, from each row's last token with attention_mask == 1.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
};

}  // namespace accel::models
