#pragma once
// Models that were not written as accel::models::BlockModel, seen as ordered blocks: a
// torch::nn::Sequential (each child is one block) and a TorchScript module whose top-level
// children run one after the other (what scripting an nn.Sequential in Python gives).
#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "accel/models/blocks.h"

namespace accel::pipeline {

// The TorchScript archive at `path`, on the CPU. Throws accel::FileError naming the path when it
// does not exist or cannot be read as TorchScript (e.g. a state_dict saved with torch.save).
torch::jit::Module load_torchscript(const std::string& path);

// Blocks are the Sequential's children, named as in the Sequential ("0", "1", ... or the names
// given). Each child takes and returns one tensor. The children are already built by the
// caller; a stage keeps references to its own and the caller may drop the rest.
class SequentialModel : public models::BlockModel {
 public:
  explicit SequentialModel(torch::nn::Sequential sequential);
  std::vector<models::BlockSpec> blocks() const override;

 private:
  torch::nn::Sequential sequential_;
};

// Blocks are the top-level children in definition order; the module's own forward() is not
// used. A child may take several tensors and return a tensor or a tuple/list of tensors.
// torch::jit::load reads the whole archive, so each rank holds every weight until this object
// is dropped; after prepare() only the rank's own children stay alive.
class TorchScriptModel : public models::BlockModel {
 public:
  explicit TorchScriptModel(torch::jit::Module module);
  // load_torchscript(path), seen as blocks.
  static TorchScriptModel load(const std::string& path) { return TorchScriptModel(load_torchscript(path)); }
  std::vector<models::BlockSpec> blocks() const override;

 private:
  torch::jit::Module module_;
};

}  // namespace accel::pipeline
