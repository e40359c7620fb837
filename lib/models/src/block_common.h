#pragma once
// Pieces every architecture's blocks share. Private to lib/models.
#include "accel/models/blocks.h"
#include "accel/models/generation.h"
#include "accel/models/safetensors.h"

#include <cstdint>
#include <string>
#include <vector>

namespace accel::models::detail {

// A block whose parameters carry their public names (torch's registry forbids dots).
class NamedBlock : public Block {
 public:
  const NamedTensors& weights() const { return weights_; }

 protected:
  torch::Tensor add(const std::string& public_name, torch::Tensor value);

 private:
  NamedTensors weights_;
};

// Normal(0, stddev) values that depend only on `seed` and the tensor's `name`, so a block built
// alone (a pipeline stage) equals the same block built inside the whole model.
torch::Tensor seeded_normal(std::uint64_t seed, const std::string& name,
                            const std::vector<std::int64_t>& shape, double stddev);

// Position ids that follow the mask: cumsum - 1, and 1 at padding, as the ecosystem's
// generate does, so a left-padded row sees the positions it would see alone.
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

// attention_mask [batch, keys] as booleans; UsageError naming the shapes when it does not fit.
torch::Tensor key_mask(const torch::Tensor& attention_mask, std::int64_t batch, std::int64_t keys);

// UsageError unless `dtype` is float32, bfloat16, or float16 on a CUDA device.
void check_compute_dtype(torch::ScalarType dtype, const torch::Device& device,
                         const std::string& model_name);

// With a cache: prepends layer `layer`'s cached keys and values to `k` and `v` (along the
// sequence dim) and stores the result back as that layer's cache. Without one: no change.
void extend_cache(KVCache* cache, std::size_t layer, torch::Tensor& k, torch::Tensor& v);

// Scaled dot-product attention over q [B,H,T,D] and k, v [B,H,K,D] (K = cached + new keys)
// with causal order, the padding mask and, when window > 0, a sliding window of that many
// keys. Scores are normalised in float32 so half-precision models mask without overflow; a
// fully masked row (a padding query) gets a uniform distribution instead of NaN.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& attention_mask, double scale, std::int64_t window = 0);

}  // namespace accel::models::detail
