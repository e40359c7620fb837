#include "block_common.h"

#include "accel/core/error.h"

#include <limits>

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

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& attention_mask, double scale, std::int64_t window) {
  const auto batch = q.size(0), tokens = q.size(2), total = k.size(2);
  const auto bool_options = torch::TensorOptions().dtype(torch::kBool).device(q.device());
  // Query i sits at cache index past + i; it sees keys j <= past + i (and > past + i - window).
  auto allowed = torch::ones({tokens, total}, bool_options).tril(total - tokens);
  if (window > 0) allowed &= torch::ones({tokens, total}, bool_options).triu(total - tokens - window + 1);
  allowed = allowed.view({1, 1, tokens, total}) &
            key_mask(attention_mask, batch, total).view({batch, 1, 1, total});
  auto scores = torch::matmul(q, k.transpose(-1, -2)).to(torch::kFloat32).mul_(scale);
  scores.masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());
  return torch::matmul(torch::softmax(scores, -1).to(q.scalar_type()), v);
}

void extend_cache(KVCache* cache, std::size_t layer, torch::Tensor& k, torch::Tensor& v) {
  if (cache == nullptr) return;
  auto& keys = cache->keys[layer];
  auto& values = cache->values[layer];
  if (keys.defined()) {
    k = torch::cat({keys, k}, 2);
    v = torch::cat({values, v}, 2);
  }
  keys = k;
  values = v;
}

}  // namespace accel::models::detail
