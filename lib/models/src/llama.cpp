#include "accel/models/llama.h"

#include "accel/core/error.h"
#include "block_common.h"
#include "rows_product.h"
#include "slot_attention.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <utility>

namespace accel::models {
namespace detail {
namespace {

// Where a block's weights come from: the checkpoint, or seeded random values by name.
class LlamaWeights {
 public:
  LlamaWeights(const LlamaOptions& options, std::shared_ptr<const Checkpoint> checkpoint)
      : options_(options), checkpoint_(std::move(checkpoint)) {}

  const LlamaConfig& config() const { return options_.config; }

  torch::Tensor load(const std::string& name, const std::vector<std::int64_t>& shape,
                     Init init) const {
    const auto value = checkpoint_ ? checkpoint_->get_floating(name, shape, options_.dtype)
                                   : initial_weight(init, options_.seed, name, shape,
                                                    config().initializer_range, options_.dtype);
    return value.to(options_.device);
  }

 private:
  LlamaOptions options_;
  std::shared_ptr<const Checkpoint> checkpoint_;
};

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  // In float32 whatever the model's dtype, then cast back before the weight, as HF does.
  const auto f = x.to(torch::kFloat32);
  const auto normed = f * torch::rsqrt(f.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

// Rotary inverse frequencies [head_dim / 2] in float32 for a call whose longest sequence is
// `seq_len` (only dynamic scaling depends on it).
torch::Tensor inverse_frequencies(const LlamaConfig& c, std::int64_t seq_len) {
  const auto& r = c.rope_scaling;
  const double dim = static_cast<double>(c.head_dim);
  double base = c.rope_theta;
  if (r.type == RopeScaling::Type::kDynamic && seq_len > c.max_position_embeddings)
    base *= std::pow(r.factor * static_cast<double>(seq_len) / c.max_position_embeddings -
                         (r.factor - 1.0),
                     dim / (dim - 2.0));
  auto inv_freq =
      1.0 / torch::pow(base, torch::arange(0, c.head_dim, 2, torch::kLong).to(torch::kFloat32) / dim);
  if (r.type == RopeScaling::Type::kLinear) return inv_freq / r.factor;
  if (r.type != RopeScaling::Type::kLlama3) return inv_freq;
  // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
  const double old_context = static_cast<double>(r.original_max_position_embeddings);
  const double low_freq_wavelen = old_context / r.low_freq_factor;
  const double high_freq_wavelen = old_context / r.high_freq_factor;
  const auto wavelen = 2.0 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / r.factor, inv_freq);
  const auto smooth = (old_context / wavelen - r.low_freq_factor) /
                      (r.high_freq_factor - r.low_freq_factor);
  const auto smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
  const auto medium = wavelen.ge(high_freq_wavelen) & wavelen.le(low_freq_wavelen);
  return torch::where(medium, smoothed, scaled);
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const auto half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// What every layer of one forward pass shares, computed once per pass instead of once per
// layer: the rotary angles of the new tokens' positions and the masks of blocked keys.
class LlamaStep {
 public:
  // `mask` covers the cached and the `tokens` new tokens; rotary tables are made in `dtype`.
  LlamaStep(const LlamaConfig& c, const torch::Tensor& mask, std::int64_t tokens,
            torch::ScalarType dtype)
      : mask_(mask), tokens_(tokens) {
    const auto all_positions = positions_from_mask(mask);
    const auto positions = all_positions.narrow(1, mask.size(1) - tokens, tokens).to(torch::kFloat32);
    const auto inv_freq = inverse_frequencies(c, all_positions.max().item<std::int64_t>() + 1)
                              .to(mask.device());
    const auto freqs = positions.unsqueeze(-1) * inv_freq.view({1, 1, -1});
    const auto angles = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // [B,1,T,hd]
    cos_ = angles.cos().to(dtype);
    sin_ = angles.sin().to(dtype);
  }

  // The rotary angles of a decode step whose rows hold positions[r] tokens before their new one:
  // each row's computed alone, as a one-row step computes them, so that no row's angles depend
  // on the others (the vectorised and scalar cos/sin round differently). Masks are not made.
  static LlamaStep decode_rows(const LlamaConfig& c, const std::vector<std::int64_t>& positions,
                               torch::ScalarType dtype) {
    std::vector<torch::Tensor> cos, sin;
    for (const auto position : positions) {
      const LlamaStep row(c, torch::ones({1, position + 1}, torch::kLong), 1, dtype);
      cos.push_back(row.cos_);
      sin.push_back(row.sin_);
    }
    return LlamaStep(torch::cat(cos, 0), torch::cat(sin, 0));
  }

  // x [B,heads,T,hd] turned by each token's position.
  torch::Tensor rotate(const torch::Tensor& x) const { return x * cos_ + rotate_half(x) * sin_; }

  // blocked_keys for a sliding window of `window` keys (0: none), made on first use.
  const torch::Tensor& blocked(std::int64_t window) {
    auto found = blocked_.find(window);
    if (found == blocked_.end()) found = blocked_.emplace(window, blocked_keys(mask_, tokens_, window)).first;
    return found->second;
  }

  std::int64_t past() const { return mask_.size(1) - tokens_; }

 private:
  LlamaStep(torch::Tensor cos, torch::Tensor sin) : cos_(std::move(cos)), sin_(std::move(sin)), tokens_(1) {}

  torch::Tensor mask_, cos_, sin_;
  std::int64_t tokens_;
  std::map<std::int64_t, torch::Tensor> blocked_;
};

}  // namespace

class LlamaEmbedding : public NamedBlock {
 public:
  explicit LlamaEmbedding(const LlamaWeights& weights) {
    const auto& c = weights.config();
    table_ = add("model.embed_tokens.weight",
                 weights.load("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, Init::kNormal));
  }

  torch::Tensor embed(const torch::Tensor& input_ids) {
    check_token_ids(input_ids, table_.size(0));
    return torch::embedding(table_, input_ids.to(table_.device()));
  }

  Activations forward(const Activations& inputs) override { return embed_new_tokens(inputs, false); }
  Activations forward_cached(const Activations& inputs, KVCache& /*cache*/) override {
    return embed_new_tokens(inputs, true);
  }

  const torch::Tensor& table() const { return table_; }

 private:
  Activations embed_new_tokens(const Activations& inputs, bool after_cache) {
    if (inputs.empty() || !inputs[0].defined() || inputs[0].dim() != 2)
      throw UsageError("block model.embed_tokens takes {input_ids [batch, tokens], attention_mask}");
    const auto& ids = inputs[0];
    return {embed(ids), block_mask(inputs, ids.size(0), ids.size(1), after_cache, table_.device(),
                                   "model.embed_tokens")};
  }

  torch::Tensor table_;
};

class LlamaLayer : public NamedBlock {
 public:
  LlamaLayer(const LlamaWeights& weights, std::int64_t index)
      : config_(weights.config()), index_(index) {
    const auto& c = config_;
    const auto d = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim,
               kv_dim = c.num_key_value_heads * c.head_dim, inner = c.intermediate_size;
    const std::string p = "model.layers." + std::to_string(index) + ".";
    auto load = [&](const std::string& name, std::vector<std::int64_t> shape, Init init) {
      return add(p + name, weights.load(p + name, shape, init));
    };
    input_norm_ = load("input_layernorm.weight", {d}, Init::kOnes);
    // q, k, v (and gate, up) read the same input: one matmul over their rows stacked at load
    // reads the input once and makes one call instead of three (two).
    qkv_w_ = fuse(weights, p, {{"self_attn.q_proj.weight", q_dim}, {"self_attn.k_proj.weight", kv_dim},
                               {"self_attn.v_proj.weight", kv_dim}}, d, Init::kNormal);
    o_w_ = load("self_attn.o_proj.weight", {d, q_dim}, Init::kNormal);
    if (c.qkv_bias)
      qkv_b_ = fuse(weights, p, {{"self_attn.q_proj.bias", q_dim}, {"self_attn.k_proj.bias", kv_dim},
                                 {"self_attn.v_proj.bias", kv_dim}}, 0, Init::kZeros);
    if (c.o_bias) o_b_ = load("self_attn.o_proj.bias", {d}, Init::kZeros);
    if (c.qk_norm) {
      q_norm_ = load("self_attn.q_norm.weight", {c.head_dim}, Init::kOnes);
      k_norm_ = load("self_attn.k_norm.weight", {c.head_dim}, Init::kOnes);
    }
    post_norm_ = load("post_attention_layernorm.weight", {d}, Init::kOnes);
    gate_up_w_ = fuse(weights, p, {{"mlp.gate_proj.weight", inner}, {"mlp.up_proj.weight", inner}}, d,
                      Init::kNormal);
    down_w_ = load("mlp.down_proj.weight", {d, inner}, Init::kNormal);
    if (c.mlp_bias) {
      gate_up_b_ = fuse(weights, p, {{"mlp.gate_proj.bias", inner}, {"mlp.up_proj.bias", inner}}, 0,
                        Init::kZeros);
      down_b_ = load("mlp.down_proj.bias", {d}, Init::kZeros);
    }
  }

  Activations forward(const Activations& inputs) override { return run_block(inputs, nullptr); }
  Activations forward_cached(const Activations& inputs, KVCache& cache) override {
    return run_block(inputs, &cache);
  }

  // `step` describes the new tokens and the mask over cached and new ones; the cache (if any)
  // is extended.
  torch::Tensor run(const torch::Tensor& hidden, LlamaStep& step, KVCache* cache) {
    const auto& c = config_;
    const auto batch = hidden.size(0), tokens = hidden.size(1);
    const auto heads = c.num_attention_heads, kv_heads = c.num_key_value_heads, hd = c.head_dim;

    const auto x = rms_norm(hidden, input_norm_, c.rms_norm_eps);
    const auto qkv = linear(x, qkv_w_, qkv_b_).split({heads * hd, kv_heads * hd, kv_heads * hd}, -1);
    auto q = qkv[0].view({batch, tokens, heads, hd});
    auto k = qkv[1].view({batch, tokens, kv_heads, hd});
    auto v = qkv[2].view({batch, tokens, kv_heads, hd}).transpose(1, 2);
    if (c.qk_norm) {
      q = rms_norm(q, q_norm_, c.rms_norm_eps);
      k = rms_norm(k, k_norm_, c.rms_norm_eps);
    }
    q = step.rotate(q.transpose(1, 2));
    k = step.rotate(k.transpose(1, 2));
    extend_cache(cache, index_, step.past(), k, v);
    const auto attended = attend(q, k, v, step.blocked(c.window_of_layer(index_)),
                                 1.0 / std::sqrt(static_cast<double>(hd)))
                              .transpose(1, 2)
                              .reshape({batch, tokens, heads * hd});
    const auto h = hidden + linear(attended, o_w_, o_b_);

    const auto inner = c.intermediate_size;
    const auto gate_up = linear(rms_norm(h, post_norm_, c.rms_norm_eps), gate_up_w_, gate_up_b_);
    return h + linear(torch::silu(gate_up.narrow(-1, 0, inner)) * gate_up.narrow(-1, inner, inner),
                      down_w_, down_b_);
  }

  // One decode step of the rows `attention` holds: hidden [rows, hidden_size], one new token
  // each, turned by `step` (LlamaStep::decode_rows). Every row's result is bitwise independent of
  // the other rows: products by rows_product, transcendental operators row by row (each_row);
  // the rotation itself multiplies and adds, which round the same anywhere.
  torch::Tensor decode_rows(const torch::Tensor& hidden, const LlamaStep& step, SlotAttention& attention) {
    const auto& c = config_;
    const auto rows = hidden.size(0), heads = c.num_attention_heads, kv_heads = c.num_key_value_heads;
    const auto hd = c.head_dim;
    const auto norm = [this](const torch::Tensor& weight) {
      return [this, weight](const torch::Tensor& row) { return rms_norm(row, weight, config_.rms_norm_eps); };
    };
    const auto qkv = rows_product(each_row(hidden, norm(input_norm_)), qkv_w_, qkv_b_)
                         .split({heads * hd, kv_heads * hd, kv_heads * hd}, -1);
    auto q = qkv[0].reshape({rows, heads, hd});
    auto k = qkv[1].reshape({rows, kv_heads, hd});
    if (c.qk_norm) {
      q = each_row(q, norm(q_norm_));
      k = each_row(k, norm(k_norm_));
    }
    q = step.rotate(q.unsqueeze(2)).squeeze(2);
    k = step.rotate(k.unsqueeze(2)).squeeze(2);
    const auto attended = attention.attend(index_, q, k, qkv[2].reshape({rows, kv_heads, hd}),
                                           1.0 / std::sqrt(static_cast<double>(hd)), c.window_of_layer(index_));
    const auto h = hidden + rows_product(attended, o_w_, o_b_);
    const auto inner = c.intermediate_size;
    const auto gate_up = rows_product(each_row(h, norm(post_norm_)), gate_up_w_, gate_up_b_);
    const auto act = each_row(gate_up, [&](const torch::Tensor& row) {
      return torch::silu(row.narrow(-1, 0, inner)) * row.narrow(-1, inner, inner);
    });
    return h + rows_product(act, down_w_, down_b_);
  }

 private:
  // Loads the named [rows, columns] pieces (columns 0: vectors), stacks them along the rows
  // into one tensor and registers each piece by its public name as a view of it.
  torch::Tensor fuse(const LlamaWeights& weights, const std::string& prefix,
                     const std::vector<std::pair<std::string, std::int64_t>>& pieces,
                     std::int64_t columns, Init init) {
    std::vector<torch::Tensor> loaded;
    for (const auto& [name, rows] : pieces) {
      std::vector<std::int64_t> shape{rows};
      if (columns > 0) shape.push_back(columns);
      loaded.push_back(weights.load(prefix + name, shape, init));
    }
    const auto fused = torch::cat(loaded, 0);
    std::int64_t offset = 0;
    for (const auto& [name, rows] : pieces) {
      add(prefix + name, fused.narrow(0, offset, rows));
      offset += rows;
    }
    return fused;
  }

  Activations run_block(const Activations& inputs, KVCache* cache) {
    const auto [hidden, mask] =
        hidden_inputs(inputs, cache != nullptr, "model.layers." + std::to_string(index_), "hidden_size");
    LlamaStep step(config_, mask, hidden.size(1), hidden.scalar_type());
    return {run(hidden, step, cache), mask};
  }

  LlamaConfig config_;
  std::int64_t index_;
  torch::Tensor input_norm_, qkv_w_, o_w_, qkv_b_, o_b_, q_norm_, k_norm_;
  torch::Tensor post_norm_, gate_up_w_, down_w_, gate_up_b_, down_b_;
};

class LlamaHead : public NamedBlock {
 public:
  explicit LlamaHead(const LlamaWeights& weights) : eps_(weights.config().rms_norm_eps) {
    const auto& c = weights.config();
    norm_ = add("model.norm.weight", weights.load("model.norm.weight", {c.hidden_size}, Init::kOnes));
    // A tied lm_head is embed_tokens (random init gives it the same values by name).
    const std::string name = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    out_ = add("lm_head.weight", weights.load(name, {c.vocab_size, c.hidden_size}, Init::kNormal));
  }

  Activations forward(const Activations& inputs) override {
    if (inputs.empty() || !inputs[0].defined() || inputs[0].dim() != 3)
      throw UsageError("block lm_head takes {hidden [batch, tokens, hidden_size], attention_mask}");
    return {apply(inputs[0])};
  }

  bool positionwise() const override { return true; }

  torch::Tensor apply(const torch::Tensor& hidden) {
    return linear(rms_norm(hidden, norm_, eps_), out_, torch::Tensor());
  }

  // Logits [rows, vocab] float32 of a decode step's hidden [rows, hidden_size], each row's
  // bitwise independent of the others.
  torch::Tensor decode_logits(const torch::Tensor& hidden) {
    const auto normed = each_row(hidden, [&](const torch::Tensor& row) { return rms_norm(row, norm_, eps_); });
    return rows_product(normed, out_, torch::Tensor()).to(torch::kFloat32);
  }

  // Shares the embedding table's memory when the head is tied to it.
  void tie_to(const torch::Tensor& table) { out_.set_(table); }

 private:
  double eps_;
  torch::Tensor norm_, out_;
};

}  // namespace detail

LlamaOptions LlamaOptions::from_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  LlamaOptions options;
  options.checkpoint = Checkpoint::weights_file(dir);
  options.config = LlamaConfig::from_file((fs::path(dir) / "config.json").string());
  const auto generation = fs::path(dir) / "generation_config.json";
  if (fs::exists(generation)) options.config.apply_generation_config(generation.string());
  return options;
}

LlamaForCausalLM::LlamaForCausalLM(LlamaOptions options) : options_(std::move(options)) {
  options_.config.validate(options_.checkpoint.empty() ? "Llama config"
                                                       : "config of " + options_.checkpoint);
  detail::check_compute_dtype(options_.dtype, options_.device, options_.config.model_type);
  if (!options_.checkpoint.empty())
    checkpoint_ = std::make_shared<const Checkpoint>(options_.checkpoint);
}

LlamaForCausalLM::~LlamaForCausalLM() = default;

std::vector<BlockSpec> LlamaForCausalLM::blocks() const {
  const auto weights = std::make_shared<const detail::LlamaWeights>(options_, checkpoint_);
  const auto& c = options_.config;
  const auto d = c.hidden_size, q_dim = c.num_attention_heads * c.head_dim,
             kv_dim = c.num_key_value_heads * c.head_dim, inner = c.intermediate_size;
  const auto layer_params = 2 * d + 2 * d * q_dim + 2 * d * kv_dim + 3 * d * inner +
                            (c.qkv_bias ? q_dim + 2 * kv_dim : 0) + (c.o_bias ? d : 0) +
                            (c.qk_norm ? 2 * c.head_dim : 0) + (c.mlp_bias ? 2 * inner + d : 0);
  std::vector<BlockSpec> specs;
  specs.push_back({"model.embed_tokens", c.vocab_size * d,
                   [weights] { return std::make_shared<detail::LlamaEmbedding>(*weights); }});
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
    specs.push_back({"model.layers." + std::to_string(i), layer_params,
                     [weights, i] { return std::make_shared<detail::LlamaLayer>(*weights, i); }});
  specs.push_back({"lm_head", d + c.vocab_size * d,
                   [weights] { return std::make_shared<detail::LlamaHead>(*weights); }});
  return specs;
}

void LlamaForCausalLM::ensure_built() {
  if (embedding_) return;
  detail::build_blocks(blocks(), embedding_, layers_, head_);
  if (options_.config.tie_word_embeddings) head_->tie_to(embedding_->table());
}

torch::Tensor LlamaForCausalLM::hidden_states(const torch::Tensor& input_ids,
                                              const torch::Tensor& attention_mask, KVCache* cache) {
  ensure_built();
  const auto past = cache != nullptr ? cache->length() : 0;
  const auto mask = detail::model_mask(input_ids, attention_mask, past, options_.device);
  auto h = embedding_->embed(input_ids);
  detail::LlamaStep step(options_.config, mask, input_ids.size(1), options_.dtype);
  for (auto& layer : layers_) h = layer->run(h, step, cache);
  return h;
}

torch::Tensor LlamaForCausalLM::forward(const torch::Tensor& input_ids,
                                        const torch::Tensor& attention_mask, KVCache* cache) {
  torch::NoGradGuard no_grad;
  const auto hidden = hidden_states(input_ids, attention_mask, cache);
  return head_->apply(hidden).to(torch::kFloat32);
}

torch::Tensor LlamaForCausalLM::next_token_logits(const torch::Tensor& input_ids,
                                                  const torch::Tensor& attention_mask,
                                                  KVCache* cache) {
  c10::InferenceMode inference;
  const auto hidden = hidden_states(input_ids, attention_mask, cache);
  // The vocabulary projection is the costliest matmul: run it on the last position only.
  return head_->apply(hidden.narrow(1, hidden.size(1) - 1, 1))
      .squeeze(1)
      .to(torch::kCPU, torch::kFloat32);
}

torch::Tensor LlamaForCausalLM::decode_slot_rows(const std::vector<std::int64_t>& tokens,
                                                 detail::SlotAttention& attention,
                                                 const std::vector<std::int64_t>& logit_rows) {
  c10::InferenceMode inference;
  ensure_built();
  std::vector<std::int64_t> positions;
  for (std::size_t r = 0; r < tokens.size(); ++r) positions.push_back(attention.position(r));
  const auto step = detail::LlamaStep::decode_rows(options_.config, positions, options_.dtype);
  auto h = embedding_->embed(torch::tensor(tokens, torch::kLong));
  for (auto& layer : layers_) h = layer->decode_rows(h, step, attention);
  return head_->decode_logits(h.index_select(0, torch::tensor(logit_rows, torch::kLong)));
}

std::string LlamaForCausalLM::describe() const {
  const auto& c = options_.config;
  return c.model_type + ": " + std::to_string(c.num_hidden_layers) + " layers, hidden " +
         std::to_string(c.hidden_size) + ", " + std::to_string(c.num_attention_heads) + " heads (" +
         std::to_string(c.num_key_value_heads) + " key/value), vocabulary " +
         std::to_string(c.vocab_size);
}

}  // namespace accel::models
