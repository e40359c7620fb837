#pragma once
// Pieces every architecture's blocks share. Private to lib/models.
#include "accel/models/blocks.h"
#include "accel/models/generation.h"
#include "accel/models/safetensors.h"

#include <cstdint>
#include <functional>
#include <memory>
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

// How a weight starts without a checkpoint: seeded normal values, zeros (biases), ones (norms).
enum class Init { kNormal, kZeros, kOnes };

// A weight initialised as `init` in `dtype`; kNormal draws seeded_normal(seed, name, ...).
torch::Tensor initial_weight(Init init, std::uint64_t seed, const std::string& name,
                             const std::vector<std::int64_t>& shape, double stddev,
                             torch::ScalarType dtype);

// Builds a whole model's blocks in this process, in the order blocks() gives them: the first
// into `first`, the last into `last`, the others into `middle`. The weights are normal tensors
// without autograd even when called in inference mode, so state_dict() callers may modify them.
template <class First, class Middle, class Last>
void build_blocks(const std::vector<BlockSpec>& specs, std::shared_ptr<First>& first,
                  std::vector<std::shared_ptr<Middle>>& middle, std::shared_ptr<Last>& last) {
  c10::InferenceMode normal_tensors(false);
  torch::NoGradGuard no_grad;
  first = std::dynamic_pointer_cast<First>(specs.front().build());
  for (std::size_t i = 1; i + 1 < specs.size(); ++i)
    middle.push_back(std::dynamic_pointer_cast<Middle>(specs[i].build()));
  last = std::dynamic_pointer_cast<Last>(specs.back().build());
}

// UsageError naming the first id of `input_ids` outside 0..vocab_size-1.
void check_token_ids(const torch::Tensor& input_ids, std::int64_t vocab_size);

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

// x [..., in] times a weight stored [out, in] (torch's Linear layout), plus bias when defined.
// A single row runs as a matrix-vector product (gemv.h): gemm at one row runs 2-3x below the
// memory bandwidth a matrix-vector product reaches, and batch-1 decoding is nothing but such rows.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// x [..., in] times a weight of shape [in, out] (GPT-2's Conv1D layout), plus bias; a single row
// runs as a matrix-vector product (gemv.h), whichever way round the weight is stored.
torch::Tensor conv1d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// The mask of a call of the whole model: attention_mask (all ones when undefined) as int64 on
// `device`, checked to be [batch, past + new tokens]. UsageError naming the shapes otherwise.
torch::Tensor model_mask(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                         std::int64_t past, const torch::Device& device);

// The attention mask a block receives (inputs[1]) as int64 on `device`, checked against the
// block's `tokens` new tokens: [batch, tokens] without a cache, [batch, cached + tokens] with
// one. Absent, it means "no padding", which only a call without a cache can know the width of.
// UsageError naming `block` otherwise.
torch::Tensor block_mask(const Activations& inputs, std::int64_t batch, std::int64_t tokens,
                         bool after_cache, const torch::Device& device, const std::string& block);

// A middle block's inputs {hidden [batch, tokens, width], attention_mask}: the hidden states,
// checked to be three-dimensional, and the mask as block_mask() gives it. UsageError naming
// `block` and `width` (the config's name for the hidden size) otherwise.
struct HiddenInputs {
  torch::Tensor hidden, mask;
};
HiddenInputs hidden_inputs(const Activations& inputs, bool after_cache, const std::string& block,
                           const char* width);

// Which keys each of the last `tokens` queries may not see, [B,1,T,K] booleans (K = the mask's
// width): later positions, padding and, when window > 0, keys more than `window` back. A
// forward pass computes it once and shares it between its layers.
torch::Tensor blocked_keys(const torch::Tensor& attention_mask, std::int64_t tokens,
                           std::int64_t window = 0);

// Scaled dot-product attention over q [B,H,T,D] and k, v [B,H/G,K,D] (K = cached + new keys;
// each key/value head serves G consecutive query heads) with the keys `blocked` hides (see blocked_keys). Scores are normalised in float32 so
// half-precision models mask without overflow; a fully masked row (a padding query) gets a
// uniform distribution instead of NaN.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& blocked, double scale);

// With a cache: appends k and v as layer `layer`'s new keys and values and replaces them with
// all the layer's keys and values so far. UsageError when the cache does not hold exactly the
// `past` tokens the attention mask says precede the new ones.
void extend_cache(KVCache* cache, std::int64_t layer, std::int64_t past, torch::Tensor& k,
                  torch::Tensor& v);

// fn applied to each row of x (its first dim) on its own, the results stacked. Batch-invariant
// decoding runs transcendental operators (gelu, silu, norms) this way: torch vectorises all but
// a tail of each call, and the vector and scalar code round differently, so a value's result
// would otherwise depend on where in the batch it sits.
torch::Tensor each_row(const torch::Tensor& x, const std::function<torch::Tensor(const torch::Tensor&)>& fn);

}  // namespace accel::models::detail
