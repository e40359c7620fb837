#pragma once
// A causal language model from any supported checkpoint directory, chosen by config.json's
// model_type: gpt2, or the Llama family (llama, mistral, qwen2, qwen3).
#include "accel/models/blocks.h"
#include "accel/models/generation.h"

#include <torch/torch.h>

#include <memory>
#include <string>

namespace accel::models {

struct LoadOptions {
  torch::ScalarType dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
};

// Both views of one model: generation, and blocks for a pipeline.
struct LoadedModel {
  std::shared_ptr<CausalLM> model;
  std::shared_ptr<BlockModel> blocks;  // the same object as `model`
};

// Throws FileError naming a missing config.json or weights file, UsageError naming a
// model_type outside those supported (and listing them) or a bad config key.
LoadedModel load_causal_lm(const std::string& dir, const LoadOptions& options = {});

}  // namespace accel::models
