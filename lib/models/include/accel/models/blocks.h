#pragma once
// The seam between models and the pipeline: a model is an ordered list of named blocks, each
// of which can be built on its own, so a pipeline stage builds (and loads weights for) only
// its own blocks. What flows between blocks is a list of tensors (hidden states, attention
// mask, ...), so a stage boundary can carry several tensors.
#include "accel/models/kv_cache.h"

#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace accel::models {

using Activations = std::vector<torch::Tensor>;

// One block of a model. forward() takes what the previous block produced (the model's
// inputs for the first block) and returns what the next block consumes.
class Block : public torch::nn::Module {
 public:
  virtual Activations forward(const Activations& inputs) = 0;

  // forward() for incremental decoding: the first input holds only the new tokens (or their
  // hidden states) while the attention mask covers the cached tokens and the new ones. Attention
  // blocks append their new keys and values to `cache` under their layer index in the model
  // and attend over everything cached; the embeddings place the new tokens after the cached
  // ones. The default, for blocks that keep no state across tokens, is forward().
  virtual Activations forward_cached(const Activations& inputs, KVCache& /*cache*/) {
    return forward(inputs);
  }

  // Whether each position's output depends on that position's input alone (a language model's
  // head): a caller that needs the last position only may then give the block only that one,
  // as pipelined generation does at its first step instead of a head over every prompt position.
  virtual bool positionwise() const { return false; }
};

struct BlockSpec {
  std::string name;                                 // unique, e.g. "embeddings", "h.3", "head"
  std::int64_t parameter_count = 0;                 // known without building the block
  std::function<std::shared_ptr<Block>()> build;    // builds (and loads) this block alone
};

// A model seen as its blocks in order. Implementations: the GPT-2 family (lib/models);
// adapters for torch::nn::Sequential and TorchScript modules live in lib/pipeline.
class BlockModel {
 public:
  virtual ~BlockModel() = default;
  virtual std::vector<BlockSpec> blocks() const = 0;
};

}  // namespace accel::models
