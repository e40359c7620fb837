#pragma once
// Any BlockModel run as one plain forward in one process: every block built here and applied
// in order. This is the reference a pipelined run of the same model is compared with.
#include "accel/models/blocks.h"

#include <memory>
#include <string>
#include <vector>

namespace accel::models {

class SequentialBlocks {
 public:
  // Builds every block of `model` (weights included) now.
  explicit SequentialBlocks(const BlockModel& model);

  // Feeds `inputs` to the first block and each block's outputs to the next; no autograd.
  Activations forward(Activations inputs) const;
  // The same with a key/value cache (see Block::forward_cached): inputs hold the new tokens and
  // the mask over cached and new ones; the attention blocks extend `cache`.
  Activations forward_cached(Activations inputs, KVCache& cache) const;

  const std::vector<std::string>& names() const { return names_; }
  const std::vector<std::shared_ptr<Block>>& blocks() const { return blocks_; }

 private:
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<Block>> blocks_;
};

}  // namespace accel::models
