// The user's first scenario: a list of prompts split between the processes of a job, each rank
// running the model on its share and writing result_<rank>.txt; the main process prints every
// result in the original order. Run it with: accel-launch --num_processes 2 distributed_inference
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/runtime/partial_state.h"
#include "model.h"

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kDefaultPrompts = {
    "a dog", "a cat", "a chicken", "the quick brown fox", "once upon a time", "distributed inference is",
    "to be or not to be", "the weather today",
};

struct Options {
  std::string prompts_file;
  std::string output_dir = ".";
  int max_new_tokens = 16;
  std::string model_dir;
  int threads = 0;
};

std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw accel::FileError(path, "cannot open the prompts file", errno);
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) prompts.push_back(line);
  }
  if (prompts.empty()) throw accel::FileError(path, "has no prompts; expected one prompt per line");
  return prompts;
}

int run(const Options& options) {
  accel::PartialState state;
  if (options.threads > 0) torch::set_num_threads(options.threads);
  const auto prompts = options.prompts_file.empty() ? kDefaultPrompts : read_prompts(options.prompts_file);
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec || !fs::is_directory(options.output_dir)) {
    throw accel::FileError(options.output_dir, "--output_dir is not a directory that can be created");
  }

  const auto mine = state.split_between_processes(prompts, /*apply_padding=*/true);
  const auto outputs = accel::examples::run_model(mine.items, state.device(),
                                                     {options.max_new_tokens, options.model_dir});

  std::string lines;
  for (std::size_t i = 0; i < mine.num_real; ++i) {
    lines += std::to_string(mine.start + i) + "\t" + mine.items[i] + "\t" + outputs[i] + "\n";
  }
  const fs::path result = fs::path(options.output_dir) / ("result_" + std::to_string(state.process_index()) + ".txt");
  if (fs::exists(result)) std::cerr << "distributed_inference: replacing " << result.string() << " from an earlier run\n";
  accel::files::replace_atomically(result.string(), lines);

  const auto all = state.gather_unpadded(outputs, mine);
  state.print("distributed_inference: ", prompts.size(), " prompts on ", state.num_processes(), " process(es) (",
              state.backend(), ", ", state.device().str(), ")");
  for (std::size_t i = 0; i < all.size(); ++i) state.print("[", i, "] ", prompts[i], " -> ", all[i]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Splits prompts between the job's processes, runs a model on each share, gathers the results"};
  Options options;
  app.add_option("--prompts", options.prompts_file, "file with one prompt per line (default: a built-in list)");
  app.add_option("--output_dir,--output-dir", options.output_dir, "where result_<rank>.txt are written")
      ->capture_default_str();
  app.add_option("--max_new_tokens,--max-new-tokens", options.max_new_tokens, "tokens generated per prompt")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--model_dir,--model-dir", options.model_dir,
                 "GPT-2 checkpoint directory: config.json, model.safetensors, vocab.json + merges.txt "
                 "(default: a small built-in GPT-2 config with seeded random weights)");
  app.add_option("--threads", options.threads, "torch intra-op threads per process (default: torch's choice)")
      ->check(CLI::Range(1, 1024));
  try {
    app.parse(argc, argv);
    return run(options);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const accel::Error& e) {
    std::cerr << "distributed_inference: error: " << e.what() << "\n";
    return e.exit_code();
  }
}
