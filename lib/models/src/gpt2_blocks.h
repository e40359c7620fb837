#pragma once
// The GPT-2 blocks behind accel/models/gpt2.h. Private to lib/models.
#include "accel/models/gpt2.h"
#include "block_common.h"
#include "slot_attention.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace accel::models::detail {

// Where a block's weights come from: a checkpoint (names with or without "transformer.") or
// a seeded random initialisation in which every tensor's values depend only on the seed and
// the tensor's name, so a block built alone equals the same block built in the whole model.
class WeightSource {
 public:
  using Init = detail::Init;

  WeightSource(const GPT2Options& options, std::shared_ptr<const Checkpoint> checkpoint);

  const GPT2Config& config() const { return options_.config; }
  bool has_checkpoint() const { return checkpoint_ != nullptr; }
  bool checkpoint_contains(const std::string& name) const;

  // `name` is the unprefixed public name, e.g. "h.0.attn.c_attn.weight". A tensor the
  // checkpoint lacks is an error unless `missing` says to initialise it from the seed.
  enum class Missing { kError, kInitialise };
  torch::Tensor load(const std::string& name, const std::vector<std::int64_t>& shape, Init init,
                     double stddev = 0.0, Missing missing = Missing::kError) const;

 private:
  GPT2Options options_;
  std::shared_ptr<const Checkpoint> checkpoint_;
};

class Embeddings : public NamedBlock {
 public:
  explicit Embeddings(const WeightSource& source);
  Activations forward(const Activations& inputs) override;
  Activations forward_cached(const Activations& inputs, KVCache& cache) override;
  torch::Tensor embed(const torch::Tensor& input_ids, const torch::Tensor& position_ids);
  const torch::Tensor& wte() const { return wte_; }

 private:
  Activations embed_new_tokens(const Activations& inputs, bool after_cache);

  torch::Tensor wte_, wpe_;
};

class TransformerBlock : public NamedBlock {
 public:
  TransformerBlock(const WeightSource& source, std::int64_t index);
  Activations forward(const Activations& inputs) override;
  Activations forward_cached(const Activations& inputs, KVCache& cache) override;
  // `blocked` (see blocked_keys) covers the cached keys and the new ones; the cache (if any)
  // is extended.
  torch::Tensor run(const torch::Tensor& hidden, const torch::Tensor& blocked, KVCache* cache);
  // One decode step of the rows `attention` holds: hidden [rows, n_embd], one new token each.
  // Every row's result is bitwise independent of the other rows (rows_product.h, each_row).
  torch::Tensor decode_rows(const torch::Tensor& hidden, SlotAttention& attention);

 private:
  Activations run_block(const Activations& inputs, KVCache* cache);
  double attention_scale() const;

  GPT2Config config_;
  std::int64_t index_;
  torch::Tensor ln_1_w_, ln_1_b_, c_attn_w_, c_attn_b_, attn_proj_w_, attn_proj_b_;
  torch::Tensor ln_2_w_, ln_2_b_, c_fc_w_, c_fc_b_, mlp_proj_w_, mlp_proj_b_;
};

class Head : public NamedBlock {
 public:
  Head(const WeightSource& source, GPT2Head kind);
  Activations forward(const Activations& inputs) override;
  // Every head but sequence classification's, which pools at each row's last real token.
  bool positionwise() const override { return kind_ != GPT2Head::kSequenceClassification; }
  // hidden [B,T,D] after the last block -> logits (see gpt2.h) in the model's dtype.
  torch::Tensor apply(const torch::Tensor& hidden, const torch::Tensor& attention_mask);
  // A language model head over hidden [rows, n_embd] of a decode step -> logits [rows, vocab]
  // float32, each row's bitwise independent of the others.
  torch::Tensor decode_logits(const torch::Tensor& hidden);
  // Shares `wte` as the lm_head weight when the checkpoint has no lm_head of its own.
  void tie_to(const torch::Tensor& wte);
  bool tied() const { return tied_; }

 private:
  GPT2Config config_;
  GPT2Head kind_;
  torch::Tensor ln_f_w_, ln_f_b_, out_w_;
  bool tied_ = false;  // out_w_ is wte (lm_head.weight absent or random init)
};

}  // namespace accel::models::detail
