#include "accel/models/kv_cache.h"

#include "accel/core/error.h"

#include <algorithm>

namespace accel::models {

std::int64_t KVCache::length() const {
  for (const auto& layer : layers_)
    if (layer.keys.defined()) return layer.length;
  return 0;
}

std::int64_t KVCache::length(std::size_t layer) const {
  return layer < layers_.size() ? layers_[layer].length : 0;
}

std::pair<torch::Tensor, torch::Tensor> KVCache::cached(std::size_t index) const {
  if (index >= layers_.size() || !layers_[index].keys.defined()) return {};
  const auto& layer = layers_[index];
  return {layer.keys.narrow(2, 0, layer.length), layer.values.narrow(2, 0, layer.length)};
}

void KVCache::reserve(Layer& layer, const torch::Tensor& k, std::int64_t tokens) const {
  const auto needed = layer.length + tokens;
  if (layer.keys.defined() && needed <= layer.keys.size(2)) return;
  const auto capacity = layer.keys.defined() ? std::max(needed, 2 * layer.keys.size(2))
                                             : std::max(needed, capacity_);
  auto keys = torch::empty({k.size(0), k.size(1), capacity, k.size(3)}, k.options());
  auto values = torch::empty_like(keys);
  if (layer.length > 0) {
    keys.narrow(2, 0, layer.length).copy_(layer.keys.narrow(2, 0, layer.length));
    values.narrow(2, 0, layer.length).copy_(layer.values.narrow(2, 0, layer.length));
  }
  layer.keys = std::move(keys);
  layer.values = std::move(values);
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(std::size_t index, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  if (k.dim() != 4 || v.sizes() != k.sizes())
    throw UsageError("KVCache::append takes keys and values of one shape [batch, kv_heads, tokens, "
                     "head_dim]; got " + c10::str(k.sizes()) + " and " + c10::str(v.sizes()));
  if (index >= layers_.size()) layers_.resize(index + 1);
  auto& layer = layers_[index];
  if (layer.keys.defined() &&
      (k.size(0) != layer.keys.size(0) || k.size(1) != layer.keys.size(1) ||
       k.size(3) != layer.keys.size(3) || k.scalar_type() != layer.keys.scalar_type() ||
       k.device() != layer.keys.device()))
    throw UsageError("layer " + std::to_string(index) + "'s cache holds " +
                     c10::str(layer.keys.narrow(2, 0, layer.length).sizes()) + " " +
                     c10::toString(layer.keys.scalar_type()) + " on " + layer.keys.device().str() +
                     "; the new keys are " + c10::str(k.sizes()) + " " + c10::toString(k.scalar_type()) +
                     " on " + k.device().str() + " (a cache serves one batch; start a new one)");
  // Inference tensors are only written inside inference mode; the guard makes the buffers
  // usable from callers in either mode.
  c10::InferenceMode inference;
  const auto tokens = k.size(2);
  reserve(layer, k, tokens);
  layer.keys.narrow(2, layer.length, tokens).copy_(k);
  layer.values.narrow(2, layer.length, tokens).copy_(v);
  layer.length += tokens;
  return {layer.keys.narrow(2, 0, layer.length), layer.values.narrow(2, 0, layer.length)};
}

}  // namespace accel::models
