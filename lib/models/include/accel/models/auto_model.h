#pragma once
// Causal language models by family. Each family (GPT-2; the Llama family: llama, mistral, qwen2,
// qwen3) describes itself once, in its config source file's *_family() function: the model_type
// values it reads, how it builds a model from a checkpoint directory, its block names and the
// config features it accepts. auto_model.cpp registers them; load_causal_lm(), error messages,
// help texts and docs/models.md's table all read the registry. docs/architecture.md says how to
// add a family.
#include "accel/models/blocks.h"
#include "accel/models/generation.h"

#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

struct ModelFamily {
  std::string name;                      // as docs and messages name it: "GPT-2"
  std::vector<std::string> model_types;  // config.json's model_type values it reads
  // A config.json key that marks this family's files from before model_type existed; "" for none.
  std::string untyped_key;
  std::string block_names;            // its blocks in order (pipeline split points name them)
  std::vector<std::string> features;  // the config.json settings it accepts beyond the plain decoder
  // The causal LM of a checkpoint directory whose config.json is this family's (weights from
  // model.safetensors or a sharded index, read through one Checkpoint).
  std::function<LoadedModel(const std::string& dir, const LoadOptions& options)> load;
};

// The registered families, in registration order.
const std::vector<ModelFamily>& model_families();
// The family that reads `model_type`; nullptr when none does.
const ModelFamily* find_family(const std::string& model_type);
// Every model_type some family reads, in registration order: "gpt2, llama, mistral, qwen2, qwen3".
std::string supported_model_types();
// The registry as docs/models.md shows it (a Markdown table; a test keeps the doc in step).
std::string model_families_table();

// What most families' `load` is: Options::from_directory(dir) in the requested dtype and device,
// built as Model (a BlockModel and a CausalLM).
template <class Model, class Options>
LoadedModel load_from_directory(const std::string& dir, const LoadOptions& options) {
  auto model_options = Options::from_directory(dir);
  model_options.dtype = options.dtype;
  model_options.device = options.device;
  auto model = std::make_shared<Model>(std::move(model_options));
  return {model, model};
}

// Picks the family by config.json's model_type. Throws FileError naming a missing config.json or
// weights file, UsageError naming a model_type no family reads (listing those that are read) or a
// bad config key.
LoadedModel load_causal_lm(const std::string& dir, const LoadOptions& options = {});

// "float32"/"fp32", "bfloat16"/"bf16", "float16"/"fp16"; UsageError listing these otherwise.
torch::ScalarType parse_dtype(const std::string& name);

}  // namespace accel::models
