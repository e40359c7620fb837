#pragma once
// The one place the example touches a model: prompts in, one output string per prompt out.
// The model is GPT-2 from lib/models with GPT-2's byte-level BPE tokenizer: by default a small
// embedded config with seeded random weights (the same on every rank and every run), or a real
// checkpoint directory (config.json, model.safetensors, vocab.json + merges.txt).
#include <c10/core/Device.h>

#include <string>
#include <vector>

namespace accel::examples {

struct GenerationOptions {
  int max_new_tokens = 16;
  std::string model_dir;  // empty: the embedded small config with random weights
};

// Greedy generation for all of `prompts` in one left-padded batch. Returns the generated text of
// each prompt (newlines and tabs escaped so it fits on one line), in the order of `prompts`.
// Throws accel::FileError / UsageError naming the checkpoint file or tensor at fault.
std::vector<std::string> run_model(const std::vector<std::string>& prompts, const c10::Device& device,
                                   const GenerationOptions& options);

}  // namespace accel::examples
