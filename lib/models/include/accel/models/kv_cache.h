#pragma once
// The key/value cache of autoregressive generation, shared by every architecture's attention
// blocks (accel/models/blocks.h), generate() (accel/models/generation.h) and the pipeline's
// per-stage caches.
#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace accel::models {

// The keys and values every attention layer has seen so far, kept in buffers allocated once
// and written in place: a decode step copies only its new keys and values, never the past ones.
// A buffer holds [batch, kv_heads, capacity, head_dim]; it is allocated by a layer's first
// append (in that call's dtype and device) with room for max(capacity given here, the tokens of
// that call) and, should a call go past it, reallocated at twice the size (one copy per doubling).
//
// Layers are addressed by their index in the whole model, so a pipeline stage's cache holds
// just the layers the stage runs. One cache serves one batch of sequences from its first token;
// start a new cache (or clear()) for another batch. Every layer of a forward pass appends the
// same tokens, so the lengths of the layers present agree between passes.
class KVCache {
 public:
  // `capacity`: tokens to reserve per layer, e.g. prompt + max_new_tokens (0: the first call's).
  explicit KVCache(std::int64_t capacity = 0) : capacity_(capacity) {}

  // Tokens cached by the lowest-indexed layer present (0 when empty).
  std::int64_t length() const;
  // Tokens cached by `layer` (0 when it has none).
  std::int64_t length(std::size_t layer) const;

  // Writes k and v [batch, kv_heads, new tokens, head_dim] after `layer`'s cached tokens and
  // returns views of all its keys and values, [batch, kv_heads, cached + new tokens, head_dim].
  // The views alias the buffers: the next append to this layer may move them. UsageError when
  // the batch, heads, head_dim, dtype or device differ from the layer's earlier appends.
  std::pair<torch::Tensor, torch::Tensor> append(std::size_t layer, const torch::Tensor& k,
                                                 const torch::Tensor& v);

  // `layer`'s keys and values so far, [batch, kv_heads, length(layer), head_dim] views of its
  // buffers (valid until its next append); undefined tensors when it has none.
  std::pair<torch::Tensor, torch::Tensor> cached(std::size_t layer) const;

  void clear() { layers_.clear(); }

 private:
  struct Layer {
    torch::Tensor keys, values;  // the buffers, [batch, kv_heads, capacity, head_dim]
    std::int64_t length = 0;
  };
  void reserve(Layer& layer, const torch::Tensor& k, std::int64_t tokens) const;

  std::int64_t capacity_;
  std::vector<Layer> layers_;
};

}  // namespace accel::models
