#pragma once
// Shared fixtures for the models tests: running a command and tiny GPT-2 and Llama configs
// (scratch directories come from tests/support).
#include "accel/models/gpt2_config.h"
#include "accel/models/llama.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <sys/wait.h>

#include "support/temp_dir.h"

namespace accel::models::testing {

struct CommandOutcome {
  int status;
  std::string output;  // stdout and stderr together
};

// Runs `command` through the shell and waits for it.
inline CommandOutcome run_command(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  CommandOutcome out{0, ""};
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) out.output += buffer;
  const int raw = pclose(pipe);
  out.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128;
  return out;
}

inline GPT2Config tiny_config() {
  GPT2Config c;
  c.vocab_size = 97;
  c.n_positions = 48;
  c.n_embd = 32;
  c.n_layer = 3;
  c.n_head = 4;
  c.num_labels = 3;
  c.eos_token_id = 96;
  c.bos_token_id = 96;
  return c;
}

inline LlamaConfig tiny_llama(const std::string& type = "llama") {
  LlamaConfig c;
  c.model_type = type;
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.eos_token_ids = {2};
  return c;
}

// Seeded random weights for `config`.
inline LlamaOptions random_options(LlamaConfig config) {
  LlamaOptions o;
  o.config = std::move(config);
  o.seed = 9;
  return o;
}

}  // namespace accel::models::testing
