#pragma once
// What the pipeline examples share on their command lines: the shape of the GPT-2 with random
// weights they build when no checkpoint is given, and how a failure ends the job.
#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>
#include <string>

#include "accel/core/error.h"
#include "accel/models/gpt2_config.h"

namespace accel::examples {

// --layers, --embd, --heads; each example keeps its own defaults.
struct RandomGpt2Shape {
  int layers = 12;
  int embd = 768;
  int heads = 12;

  // `config` with this shape, checked; an error names `source`.
  void apply_to(models::GPT2Config& config, const std::string& source) const {
    config.n_layer = layers;
    config.n_embd = embd;
    config.n_head = heads;
    config.validate(source);
  }
};

// Where the model comes from: `flag` names a checkpoint directory (checked to exist), and without
// one --layers, --embd and --heads give the shape of a GPT-2 with random weights.
inline void add_model_options(CLI::App& app, const std::string& flag, std::string& directory, const std::string& help,
                              RandomGpt2Shape& shape) {
  app.add_option(flag, directory, help)->check(CLI::ExistingDirectory);
  app.add_option("--layers", shape.layers, "Transformer blocks (random weights)")->check(CLI::PositiveNumber);
  app.add_option("--embd", shape.embd, "Hidden size (random weights)")->check(CLI::PositiveNumber);
  app.add_option("--heads", shape.heads, "Attention heads (random weights)")->check(CLI::PositiveNumber);
}

// The example's work: an accel::Error ends it with its own exit code, anything else with 1,
// each as one line "NAME: message" on stderr.
inline int run_reporting_errors(const std::string& name, const std::function<int()>& run) {
  try {
    return run();
  } catch (const Error& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace accel::examples
