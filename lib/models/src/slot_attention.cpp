#include "slot_attention.h"

#include "accel/core/error.h"

#include <algorithm>
#include <cstring>

namespace accel::models::detail {

SlotAttention::SlotAttention(const SlotCacheShape& shape) : shape_(shape) {
  // Written through raw memory only, so their being normal or inference tensors does not matter.
  for (std::int64_t l = 0; l < shape.layers; ++l) {
    keys_.push_back(torch::empty({shape.slots, shape.kv_heads, shape.capacity, shape.head_dim}, shape.dtype));
    values_.push_back(torch::empty_like(keys_.back()));
  }
}

void SlotAttention::store_prompt(int slot, const KVCache& cache) {
  for (std::int64_t l = 0; l < shape_.layers; ++l) {
    const auto [k, v] = cache.cached(static_cast<std::size_t>(l));
    if (!k.defined() || k.size(0) != 1 || k.size(1) != shape_.kv_heads || k.size(2) > shape_.capacity ||
        k.size(3) != shape_.head_dim || k.scalar_type() != shape_.dtype)
      throw UsageError("a prompt's cache for layer " + std::to_string(l) + " does not fit a slot of [" +
                       std::to_string(shape_.kv_heads) + ", " + std::to_string(shape_.capacity) + ", " +
                       std::to_string(shape_.head_dim) + "]");
    // Each head's first `tokens` keys are contiguous in both caches.
    const auto head_bytes = k.size(2) * shape_.head_dim * k.element_size();
    for (auto [from, to] : {std::pair{k, keys_[static_cast<std::size_t>(l)]}, std::pair{v, values_[static_cast<std::size_t>(l)]}})
      for (std::int64_t h = 0; h < shape_.kv_heads; ++h)
        std::memcpy(static_cast<char*>(to[slot][h].data_ptr()), from[0][h].data_ptr(), static_cast<std::size_t>(head_bytes));
  }
}

void SlotAttention::begin_step(const std::vector<int>& slots, const std::vector<std::int64_t>& positions) {
  slots_.assign(slots.begin(), slots.end());
  positions_ = positions;
}

void SlotAttention::store_rows(torch::Tensor& cache, const torch::Tensor& rows) const {
  const auto row_values = rows.contiguous();
  const auto element = row_values.element_size();
  const auto* from = static_cast<const char*>(row_values.data_ptr());
  auto* to = static_cast<char*>(cache.data_ptr());
  const auto head_bytes = static_cast<std::size_t>(shape_.head_dim * element);
  for (std::size_t r = 0; r < slots_.size(); ++r)
    for (std::int64_t h = 0; h < shape_.kv_heads; ++h) {
      const auto at = ((slots_[r] * shape_.kv_heads + h) * shape_.capacity + positions_[r]) * shape_.head_dim;
      std::memcpy(to + at * element, from + (static_cast<std::int64_t>(r) * shape_.kv_heads + h) * shape_.head_dim * element,
                  head_bytes);
    }
}

torch::Tensor SlotAttention::attend(std::int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, double scale, std::int64_t window) {
  const auto index = static_cast<std::size_t>(layer);
  if (k.dim() != 3 || k.size(0) != rows() || k.size(1) != shape_.kv_heads || k.size(2) != shape_.head_dim ||
      v.sizes() != k.sizes() || k.scalar_type() != shape_.dtype || v.scalar_type() != shape_.dtype)
    throw UsageError("slot attention takes new keys and values [" + std::to_string(rows()) + ", " +
                     std::to_string(shape_.kv_heads) + ", " + std::to_string(shape_.head_dim) + "]; got " +
                     c10::str(k.sizes()) + " and " + c10::str(v.sizes()));
  store_rows(keys_[index], k);
  store_rows(values_[index], v);
  SlotSpans spans{slots_, {}, {}};
  for (const auto position : positions_) {
    spans.first.push_back(window > 0 ? std::max<std::int64_t>(0, position + 1 - window) : 0);
    spans.last.push_back(position + 1);
  }
  return attend_slots(q.contiguous(), keys_[index], values_[index], spans, scale).view({rows(), -1});
}

}  // namespace accel::models::detail
