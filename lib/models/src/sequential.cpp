#include "accel/models/sequential.h"

namespace accel::models {

SequentialBlocks::SequentialBlocks(const BlockModel& model) {
  torch::NoGradGuard no_grad;
  for (const auto& spec : model.blocks()) {
    names_.push_back(spec.name);
    blocks_.push_back(spec.build());
  }
}

Activations SequentialBlocks::forward(Activations inputs) const {
  torch::NoGradGuard no_grad;
  for (const auto& block : blocks_) inputs = block->forward(inputs);
  return inputs;
}

Activations SequentialBlocks::forward_cached(Activations inputs, KVCache& cache) const {
  c10::InferenceMode inference;
  for (const auto& block : blocks_) inputs = block->forward_cached(inputs, cache);
  return inputs;
}

}  // namespace accel::models
