#pragma once
// The one place the example touches a model: prompts in, one output string per prompt out.
// A small built-in, deterministically seeded torch module stands in until the GPT-2 model of
// lib/models is swapped in here.
#include <c10/core/Device.h>

#include <string>
#include <vector>

namespace accel::examples {

struct GenerationOptions {
  int max_new_tokens = 16;
};

// Same weights on every rank and every run, so a prompt's output does not depend on which rank
// ran it. Returns outputs in the order of `prompts`.
std::vector<std::string> run_model(const std::vector<std::string>& prompts, const c10::Device& device,
                                   const GenerationOptions& options);

}  // namespace accel::examples
