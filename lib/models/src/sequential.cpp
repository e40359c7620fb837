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

}  // namespace accel::models
