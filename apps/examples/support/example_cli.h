#pragma once
// What the examples share on their command lines: one spelling per option across examples
// (--model_dir, --batch_size; the older spellings still accepted), defaults shown in --help,
// parse errors as one line with exit code 2, the shape of the GPT-2 with random weights built
// when no checkpoint is given, and how a failure ends the job.
#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>
#include <optional>
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

// Every option added after this shows its default value in --help.
inline void show_defaults_in_help(CLI::App& app) { app.option_defaults()->always_capture_default(); }

// The parse of `name`'s command line: std::nullopt to go on, or the exit code to return at once:
// 0 after --help, 2 after a parse error, shown as one line that says where to look
// ("NAME: error: --batch_size: Value 0 not in range [1 - 4096]; see NAME --help").
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const std::string& name) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::Success&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << name << ": error: " << e.what() << "; see " << name << " --help\n";
    return 2;
  }
}

// The checkpoint directory option, spelled --model_dir in every example (--model-dir and
// --checkpoint too), checked to exist.
inline CLI::Option* add_model_dir_option(CLI::App& app, std::string& directory, const std::string& help) {
  return app.add_option("--model_dir,--model-dir,--checkpoint", directory, help)->check(CLI::ExistingDirectory);
}

// The rows per batch option, spelled --batch_size in every example (--batch-size and --batch too).
inline CLI::Option* add_batch_size_option(CLI::App& app, int& rows, const std::string& help) {
  return app.add_option("--batch_size,--batch-size,--batch", rows, help)->check(CLI::Range(1, 1 << 20));
}

// Where the model comes from: --model_dir names a checkpoint directory, and without one
// --layers, --embd and --heads give the shape of a GPT-2 with random weights.
inline void add_model_options(CLI::App& app, std::string& directory, const std::string& help, RandomGpt2Shape& shape) {
  add_model_dir_option(app, directory, help);
  app.add_option("--layers", shape.layers, "Transformer blocks (random weights)")->check(CLI::PositiveNumber);
  app.add_option("--embd", shape.embd, "Hidden size (random weights)")->check(CLI::PositiveNumber);
  app.add_option("--heads", shape.heads, "Attention heads (random weights)")->check(CLI::PositiveNumber);
}

// The example's work: an accel::Error ends it with its own exit code, anything else with 1,
// each as one line "NAME: error: message" on stderr.
inline int run_reporting_errors(const std::string& name, const std::function<int()>& run) {
  try {
    return run();
  } catch (const Error& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << name << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace accel::examples
