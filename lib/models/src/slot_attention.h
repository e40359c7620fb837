#pragma once
// The keys and values of a SlotDecoder's slots, per layer [slots, kv_heads, capacity, head_dim]
// allocated once, and attention over them for a step's rows: each row writes its new key and value
// at its own position and attends over its own slot up to that position (the rows of a joining
// prompt over the prompt's rows before them). Private to lib/models.
#include "accel/models/kv_cache.h"
#include "decode_attention.h"

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace accel::models::detail {

struct SlotCacheShape {
  std::int64_t layers, slots, kv_heads, capacity, head_dim;
  torch::ScalarType dtype;
};

class SlotAttention {
 public:
  explicit SlotAttention(const SlotCacheShape& shape);

  // Copies the keys and values a prompt left in `cache` (run alone, batch 1) into `slot`.
  void store_prompt(int slot, const KVCache& cache);

  // The rows of the next step: row r is the token at `positions[r]` of slot slots[r], whose
  // earlier positions are cached or among the rows before it.
  void begin_step(const std::vector<int>& slots, const std::vector<std::int64_t>& positions);
  std::int64_t rows() const { return static_cast<std::int64_t>(positions_.size()); }
  // Where row r's new token sits in its sequence.
  std::int64_t position(std::size_t row) const { return positions_[row]; }

  // k and v [R, kv_heads, head_dim] go to each row's position of layer `layer`; then q [R, heads,
  // head_dim] attends over its slot up to and including it (only its last `window` keys when
  // window > 0). Returns [R, heads * head_dim] in q's dtype.
  torch::Tensor attend(std::int64_t layer, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       double scale, std::int64_t window = 0);

 private:
  void store_rows(torch::Tensor& cache, const torch::Tensor& rows) const;

  SlotCacheShape shape_;
  std::vector<torch::Tensor> keys_, values_;
  std::vector<std::int64_t> slots_, positions_;
};

}  // namespace accel::models::detail
