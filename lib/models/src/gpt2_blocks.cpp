#include "gpt2_blocks.h"

#include "accel/core/error.h"
#include "rows_product.h"

#include <cmath>
#include <limits>

namespace accel::models::detail {
namespace {

constexpr const char* kPrefix = "transformer.";

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return torch::gelu(x);
  return torch::gelu(x, "tanh");  // gelu_new and gelu_pytorch_tanh
}

}  // namespace

WeightSource::WeightSource(const GPT2Options& options,
                           std::shared_ptr<const Checkpoint> checkpoint)
    : options_(options), checkpoint_(std::move(checkpoint)) {}

bool WeightSource::checkpoint_contains(const std::string& name) const {
  return checkpoint_ && (checkpoint_->contains(name) || checkpoint_->contains(kPrefix + name));
}

torch::Tensor WeightSource::load(const std::string& name, const std::vector<std::int64_t>& shape,
                                 Init init, double stddev, Missing missing) const {
  torch::Tensor value;
  if (checkpoint_ && (missing == Missing::kError || checkpoint_contains(name))) {
    const std::string prefixed = kPrefix + name;
    if (!checkpoint_->contains(name) && !checkpoint_->contains(prefixed))
      throw FileError(checkpoint_->path(), "missing tensor '" + name + "' (also looked for '" +
                                               prefixed + "')");
    value = checkpoint_->get_floating(checkpoint_->contains(name) ? name : prefixed, shape,
                                      options_.dtype);
  } else {
    value = initial_weight(init, options_.seed, name, shape, stddev, options_.dtype);
  }
  return value.to(options_.device);
}

Embeddings::Embeddings(const WeightSource& source) {
  const auto& c = source.config();
  using Init = WeightSource::Init;
  wte_ = add("wte.weight", source.load("wte.weight", {c.vocab_size, c.n_embd}, Init::kNormal,
                                       c.initializer_range));
  wpe_ = add("wpe.weight", source.load("wpe.weight", {c.n_positions, c.n_embd}, Init::kNormal,
                                       c.initializer_range));
}

torch::Tensor Embeddings::embed(const torch::Tensor& input_ids, const torch::Tensor& position_ids) {
  if (input_ids.numel() > 0) {
    check_token_ids(input_ids, wte_.size(0));
    const auto last_position = position_ids.max().item<std::int64_t>();
    if (last_position >= wpe_.size(0))
      throw UsageError("sequence reaches position " + std::to_string(last_position) +
                       " but the model has n_positions " + std::to_string(wpe_.size(0)));
  }
  const auto ids = input_ids.to(wte_.device());
  return torch::embedding(wte_, ids) + torch::embedding(wpe_, position_ids.to(wte_.device()));
}

Activations Embeddings::forward(const Activations& inputs) { return embed_new_tokens(inputs, false); }

Activations Embeddings::forward_cached(const Activations& inputs, KVCache& /*cache*/) {
  return embed_new_tokens(inputs, true);
}

Activations Embeddings::embed_new_tokens(const Activations& inputs, bool after_cache) {
  if (inputs.empty() || !inputs[0].defined() || inputs[0].dim() != 2)
    throw UsageError("the embeddings block takes {input_ids [batch, tokens], attention_mask}");
  const auto& ids = inputs[0];
  const auto tokens = ids.size(1);
  const auto mask = block_mask(inputs, ids.size(0), tokens, after_cache, wte_.device(), "embeddings");
  return {embed(ids, positions_from_mask(mask).narrow(1, mask.size(1) - tokens, tokens)), mask};
}

TransformerBlock::TransformerBlock(const WeightSource& source, std::int64_t index)
    : config_(source.config()), index_(index) {
  const auto& c = config_;
  const auto d = c.n_embd, inner = c.inner_dim();
  const std::string p = "h." + std::to_string(index) + ".";
  using Init = WeightSource::Init;
  // The ecosystem scales residual projections by 1/sqrt(2 * n_layer) at initialisation.
  const double proj_std = c.initializer_range / std::sqrt(2.0 * c.n_layer);
  auto load = [&](const std::string& name, std::vector<std::int64_t> shape, Init init,
                  double stddev = 0.0) {
    return add(p + name, source.load(p + name, shape, init, stddev));
  };
  // The [in, out] matrices are stored column-major (a copy at load): decode steps then read
  // them as the kernels' [out, in] kind, which in bfloat16 takes pairs as 32-bit words (15%
  // faster than the [in, out] kind for one row), and for several rows sums about twice as fast
  // in float32 as the [in, out] kind (models_bench --kernels 1, docs/benchmarks.md).
  auto matrix = [&](const std::string& name, std::vector<std::int64_t> shape, double stddev) {
    return add(p + name, source.load(p + name, shape, Init::kNormal, stddev).t().contiguous().t());
  };
  ln_1_w_ = load("ln_1.weight", {d}, Init::kOnes);
  ln_1_b_ = load("ln_1.bias", {d}, Init::kZeros);
  c_attn_w_ = matrix("attn.c_attn.weight", {d, 3 * d}, c.initializer_range);
  c_attn_b_ = load("attn.c_attn.bias", {3 * d}, Init::kZeros);
  attn_proj_w_ = matrix("attn.c_proj.weight", {d, d}, proj_std);
  attn_proj_b_ = load("attn.c_proj.bias", {d}, Init::kZeros);
  ln_2_w_ = load("ln_2.weight", {d}, Init::kOnes);
  ln_2_b_ = load("ln_2.bias", {d}, Init::kZeros);
  c_fc_w_ = matrix("mlp.c_fc.weight", {d, inner}, c.initializer_range);
  c_fc_b_ = load("mlp.c_fc.bias", {inner}, Init::kZeros);
  mlp_proj_w_ = matrix("mlp.c_proj.weight", {inner, d}, proj_std);
  mlp_proj_b_ = load("mlp.c_proj.bias", {d}, Init::kZeros);
}

Activations TransformerBlock::forward(const Activations& inputs) { return run_block(inputs, nullptr); }

Activations TransformerBlock::forward_cached(const Activations& inputs, KVCache& cache) {
  return run_block(inputs, &cache);
}

Activations TransformerBlock::run_block(const Activations& inputs, KVCache* cache) {
  const auto [hidden, mask] = hidden_inputs(inputs, cache != nullptr, "h." + std::to_string(index_), "n_embd");
  return {run(hidden, blocked_keys(mask, hidden.size(1)), cache), mask};
}

torch::Tensor TransformerBlock::run(const torch::Tensor& hidden, const torch::Tensor& blocked,
                                    KVCache* cache) {
  const auto batch = hidden.size(0), tokens = hidden.size(1), d = config_.n_embd;
  const auto heads = config_.n_head, head_dim = config_.head_dim();
  const auto eps = config_.layer_norm_epsilon;

  auto x = torch::layer_norm(hidden, {d}, ln_1_w_, ln_1_b_, eps);
  auto qkv = conv1d(x, c_attn_w_, c_attn_b_).view({batch, tokens, 3, heads, head_dim})
                 .permute({2, 0, 3, 1, 4});
  auto q = qkv[0], k = qkv[1], v = qkv[2];
  extend_cache(cache, index_, blocked.size(3) - tokens, k, v);
  auto attended = attend(q, k, v, blocked, attention_scale()).permute({0, 2, 1, 3}).reshape({batch, tokens, d});
  auto h = hidden + conv1d(attended, attn_proj_w_, attn_proj_b_);

  auto m = torch::layer_norm(h, {d}, ln_2_w_, ln_2_b_, eps);
  m = conv1d(activation(conv1d(m, c_fc_w_, c_fc_b_), config_.activation_function), mlp_proj_w_,
             mlp_proj_b_);
  return h + m;
}

double TransformerBlock::attention_scale() const {
  double scale = config_.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(config_.head_dim())) : 1.0;
  if (config_.scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(index_ + 1);
  return scale;
}

torch::Tensor TransformerBlock::decode_rows(const torch::Tensor& hidden, SlotAttention& attention) {
  const auto rows = hidden.size(0), d = config_.n_embd;
  const auto eps = config_.layer_norm_epsilon;
  // Conv1D weights are [in, out]: their .t() is the logical [out, in] rows_product takes.
  const auto x = torch::layer_norm(hidden, {d}, ln_1_w_, ln_1_b_, eps);
  const auto qkv = rows_product(x, c_attn_w_.t(), c_attn_b_).view({rows, 3, config_.n_head, config_.head_dim()});
  const auto attended = attention.attend(index_, qkv.select(1, 0), qkv.select(1, 1), qkv.select(1, 2), attention_scale());
  const auto h = hidden + rows_product(attended, attn_proj_w_.t(), attn_proj_b_);
  const auto m = torch::layer_norm(h, {d}, ln_2_w_, ln_2_b_, eps);
  const auto inner = each_row(rows_product(m, c_fc_w_.t(), c_fc_b_),
                              [&](const torch::Tensor& row) { return activation(row, config_.activation_function); });
  return h + rows_product(inner, mlp_proj_w_.t(), mlp_proj_b_);
}

Head::Head(const WeightSource& source, GPT2Head kind) : config_(source.config()), kind_(kind) {
  const auto& c = config_;
  using Init = WeightSource::Init;
  ln_f_w_ = add("ln_f.weight", source.load("ln_f.weight", {c.n_embd}, Init::kOnes));
  ln_f_b_ = add("ln_f.bias", source.load("ln_f.bias", {c.n_embd}, Init::kZeros));
  if (kind == GPT2Head::kLanguageModel) {
    // A tied lm_head is stored as wte alone; random init gives it wte's values by name.
    tied_ = !source.checkpoint_contains("lm_head.weight");
    const std::string name = tied_ ? "wte.weight" : "lm_head.weight";
    out_w_ = add("lm_head.weight", source.load(name, {c.vocab_size, c.n_embd}, Init::kNormal,
                                               c.initializer_range));
  } else if (kind == GPT2Head::kSequenceClassification) {
    // A causal LM's checkpoint has no score head; transformers then initialises it, and so do we.
    out_w_ = add("score.weight", source.load("score.weight", {c.num_labels, c.n_embd}, Init::kNormal,
                                             c.initializer_range, WeightSource::Missing::kInitialise));
  }
}

void Head::tie_to(const torch::Tensor& wte) {
  if (tied_) out_w_.set_(wte);
}

torch::Tensor Head::apply(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  auto x = torch::layer_norm(hidden, {config_.n_embd}, ln_f_w_, ln_f_b_, config_.layer_norm_epsilon);
  if (kind_ == GPT2Head::kNone) return x;
  if (kind_ == GPT2Head::kLanguageModel) return linear(x, out_w_, torch::Tensor());
  // Pool at each row's last real token, which works for left and right padding alike.
  const auto batch = x.size(0), tokens = x.size(1);
  const auto real = key_mask(attention_mask, batch, tokens).to(torch::kLong);
  const auto last = (tokens - 1) - real.flip({1}).argmax(1);
  const auto rows = torch::arange(batch, last.options());
  return torch::matmul(x.index({rows, last}), out_w_.t());
}

torch::Tensor Head::decode_logits(const torch::Tensor& hidden) {
  if (kind_ != GPT2Head::kLanguageModel) throw UsageError("decoding needs GPT-2's language model head");
  const auto x = torch::layer_norm(hidden, {config_.n_embd}, ln_f_w_, ln_f_b_, config_.layer_norm_epsilon);
  return rows_product(x, out_w_, torch::Tensor()).to(torch::kFloat32);
}

Activations Head::forward(const Activations& inputs) {
  if (inputs.empty() || !inputs[0].defined() || inputs[0].dim() != 3)
    throw UsageError("the head block takes {hidden [batch, tokens, n_embd], attention_mask}");
  auto mask = inputs.size() > 1 && inputs[1].defined()
                  ? inputs[1]
                  : torch::ones({inputs[0].size(0), inputs[0].size(1)},
                                torch::TensorOptions().dtype(torch::kLong).device(inputs[0].device()));
  return {apply(inputs[0], mask)};
}

}  // namespace accel::models::detail
