#include "block_common.h"

#include "accel/core/error.h"
#include "decode_attention.h"
#include "gemv.h"
#include "rows_product.h"

#include <algorithm>
#include <limits>
#include <tuple>

namespace accel::models::detail {
namespace {

std::uint64_t name_seed(std::uint64_t seed, const std::string& name) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  // splitmix64 finaliser so nearby seeds give unrelated streams
  std::uint64_t z = h ^ (seed + 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

torch::Tensor NamedBlock::add(const std::string& public_name, torch::Tensor value) {
  std::string key = public_name;
  for (char& c : key)
    if (c == '.') c = '_';
  auto& param = register_parameter(key, std::move(value), /*requires_grad=*/false);
  weights_.emplace_back(public_name, param);
  return param;
}

torch::Tensor seeded_normal(std::uint64_t seed, const std::string& name,
                            const std::vector<std::int64_t>& shape, double stddev) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(name_seed(seed, name));
  return torch::empty(shape, torch::kFloat32).normal_(0.0, stddev, gen);
}

torch::Tensor initial_weight(Init init, std::uint64_t seed, const std::string& name,
                             const std::vector<std::int64_t>& shape, double stddev,
                             torch::ScalarType dtype) {
  if (init == Init::kZeros) return torch::zeros(shape, dtype);
  if (init == Init::kOnes) return torch::ones(shape, dtype);
  return seeded_normal(seed, name, shape, stddev).to(dtype);
}

void check_token_ids(const torch::Tensor& input_ids, std::int64_t vocab_size) {
  if (input_ids.numel() == 0) return;
  const auto low = input_ids.min().item<std::int64_t>();
  const auto high = input_ids.max().item<std::int64_t>();
  if (low < 0 || high >= vocab_size)
    throw UsageError("token id " + std::to_string(low < 0 ? low : high) +
                     " is outside the vocabulary (ids 0.." + std::to_string(vocab_size - 1) + ")");
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  auto mask = attention_mask.to(torch::kLong);
  return (mask.cumsum(1) - 1).masked_fill_(mask.eq(0), 1);
}

torch::Tensor key_mask(const torch::Tensor& attention_mask, std::int64_t batch, std::int64_t keys) {
  if (attention_mask.dim() != 2 || attention_mask.size(0) != batch || attention_mask.size(1) != keys)
    throw UsageError("attention_mask has shape " + c10::str(attention_mask.sizes()) +
                     "; expected [" + std::to_string(batch) + ", " + std::to_string(keys) +
                     "] (batch, past + new tokens)");
  return attention_mask.ne(0);
}

void check_compute_dtype(torch::ScalarType dtype, const torch::Device& device,
                         const std::string& model_name) {
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16)
    throw UsageError(model_name + " runs in float32, bfloat16 or float16, not " +
                     c10::toString(dtype));
  if (dtype == torch::kFloat16 && device.is_cpu())
    throw UsageError("float16 needs a CUDA device; on CPU use float32 or bfloat16");
}

namespace {

// A few rows (a decode step of a batch, a short prompt) read the weights once for all rows in
// rows_product(); bfloat16 at any number of rows, where LibTorch 1.13's CPU matmul runs about
// ten times slower.
bool few_rows_apply(const torch::Tensor& x, const torch::Tensor& weight) {
  if (!rows_product_applies(x, weight)) return false;
  return x.scalar_type() == torch::kBFloat16 ||
         x.numel() / std::max<std::int64_t>(1, x.size(-1)) <= kRowsFasterThanGemm;
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (gemv_applies(x, weight)) return gemv(x, weight, bias);
  if (few_rows_apply(x, weight)) return rows_product(x, weight, bias);
  return torch::linear(x, weight, bias.defined() ? bias : torch::Tensor());
}

torch::Tensor conv1d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (gemv_applies(x, weight.t())) return gemv(x, weight.t(), bias);
  if (few_rows_apply(x, weight.t())) return rows_product(x, weight.t(), bias);
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(1);
  return torch::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view(sizes);
}

torch::Tensor model_mask(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                         std::int64_t past, const torch::Device& device) {
  if (!input_ids.defined() || input_ids.dim() != 2)
    throw UsageError("input_ids must be a [batch, tokens] tensor of token ids");
  const auto batch = input_ids.size(0), keys = past + input_ids.size(1);
  if (!attention_mask.defined())
    return torch::ones({batch, keys}, torch::TensorOptions().dtype(torch::kLong).device(device));
  key_mask(attention_mask, batch, keys);
  return attention_mask.to(device, torch::kLong);
}

torch::Tensor block_mask(const Activations& inputs, std::int64_t batch, std::int64_t tokens,
                         bool after_cache, const torch::Device& device, const std::string& block) {
  const bool given = inputs.size() > 1 && inputs[1].defined();
  if (!given && after_cache)
    throw UsageError("block " + block + " needs an attention_mask covering the cached and new "
                     "tokens when it runs with a cache");
  if (!given)
    return torch::ones({batch, tokens}, torch::TensorOptions().dtype(torch::kLong).device(device));
  const auto& mask = inputs[1];
  const auto width = after_cache && mask.dim() == 2 ? std::max(mask.size(1), tokens) : tokens;
  key_mask(mask, batch, width);
  return mask.to(device, torch::kLong);
}

HiddenInputs hidden_inputs(const Activations& inputs, bool after_cache, const std::string& block,
                           const char* width) {
  if (inputs.size() < 2 || !inputs[0].defined() || inputs[0].dim() != 3)
    throw UsageError("block " + block + " takes {hidden [batch, tokens, " + width +
                     "], attention_mask [batch, tokens]}");
  const auto& hidden = inputs[0];
  return {hidden, block_mask(inputs, hidden.size(0), hidden.size(1), after_cache, hidden.device(), block)};
}

torch::Tensor blocked_keys(const torch::Tensor& attention_mask, std::int64_t tokens,
                           std::int64_t window) {
  const auto batch = attention_mask.size(0), total = attention_mask.size(1);
  const auto bool_options = torch::TensorOptions().dtype(torch::kBool).device(attention_mask.device());
  // Query i sits at cache index past + i; it sees keys j <= past + i (and > past + i - window).
  auto allowed = torch::ones({tokens, total}, bool_options).tril(total - tokens);
  if (window > 0) allowed &= torch::ones({tokens, total}, bool_options).triu(total - tokens - window + 1);
  allowed = allowed.view({1, 1, tokens, total}) &
            key_mask(attention_mask, batch, total).view({batch, 1, 1, total});
  return allowed.logical_not();
}

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& blocked, double scale) {
  if (blocked.size(0) != q.size(0) || blocked.size(2) != q.size(2) || blocked.size(3) != k.size(2))
    throw UsageError("attention over " + std::to_string(k.size(2)) + " keys for " +
                     std::to_string(q.size(2)) + " queries got a mask for " +
                     std::to_string(blocked.size(3)) + " keys and " +
                     std::to_string(blocked.size(2)) + " queries");
  if (one_query_attention_applies(q, k, v, blocked)) return attend_one_query(q, k, v, blocked, scale);
  // Grouped-query attention: the `groups` query heads that share a key/value head are stacked
  // along the query dim, so the cached keys and values are read as they are, not repeated.
  const auto batch = q.size(0), heads = q.size(1), tokens = q.size(2), keys = k.size(2);
  const auto kv_heads = k.size(1), groups = heads / kv_heads;
  const auto grouped = q.reshape({batch, kv_heads, groups * tokens, q.size(3)});
  auto scores = torch::matmul(grouped, k.transpose(-1, -2)).to(torch::kFloat32).mul_(scale);
  scores.view({batch, kv_heads, groups, tokens, keys})
      .masked_fill_(blocked.unsqueeze(2), std::numeric_limits<float>::lowest());
  return torch::matmul(torch::softmax(scores, -1).to(q.scalar_type()), v)
      .view({batch, heads, tokens, v.size(3)});
}

torch::Tensor each_row(const torch::Tensor& x, const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  std::vector<torch::Tensor> rows;
  for (std::int64_t r = 0; r < x.size(0); ++r) rows.push_back(fn(x.narrow(0, r, 1)));
  return torch::cat(rows, 0);
}

void extend_cache(KVCache* cache, std::int64_t layer, std::int64_t past, torch::Tensor& k,
                  torch::Tensor& v) {
  if (cache == nullptr) return;
  const auto index = static_cast<std::size_t>(layer);
  if (cache->length(index) != past)
    throw UsageError("layer " + std::to_string(layer) + "'s cache holds " +
                     std::to_string(cache->length(index)) + " tokens but the attention mask puts " +
                     std::to_string(past) + " before the new ones");
  std::tie(k, v) = cache->append(index, k, v);
}

}  // namespace accel::models::detail
