#pragma once
// Shared fixtures for the models tests: running a command and a tiny GPT-2 config (scratch
// directories come from tests/support).
#include "accel/models/gpt2_config.h"

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

}  // namespace accel::models::testing
