// The user's first scenario: a list of prompts split between the processes of a job, each rank
// generating completions for its share in batches and writing result_<rank>.txt; the main
// process prints every result in the original order, writes --output as JSON lines, and
// reports tokens/s per rank and in total.
// Run it with: accel-launch --num_processes 2 distributed_inference [--model_dir DIR]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/models/auto_model.h"
#include "accel/runtime/partial_state.h"
#include "model.h"
#include "support/prompts.h"

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kDefaultPrompts = {
    "a dog", "a cat", "a chicken", "the quick brown fox", "once upon a time", "distributed inference is",
    "to be or not to be", "the weather today",
};

struct Options {
  std::string prompts_file;
  std::string output_dir = ".";
  std::string output_jsonl;
  int threads = 0;
  bool timeline = false;
  accel::examples::GenerationSettings generation;
};

void replace_announced(const fs::path& path, const std::string& contents) {
  if (fs::exists(path)) std::cerr << "distributed_inference: replacing " << path.string() << " from an earlier run\n";
  accel::files::replace_atomically(path.string(), contents);
}

// Wall-clock seconds since the epoch: the clock every rank's timeline line shares.
double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One integer field of a /proc file of "name: value" lines (0 when absent, e.g. without procfs).
long long proc_field(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, name.size() + 1, name + ":") == 0) return std::atoll(line.c_str() + name.size() + 1);
  return 0;
}

// When this rank reached each phase of the job, and what loading the model cost.
struct Timeline {
  double ready = 0, group = 0, load = 0, first_token = 0, done = 0;
  long long load_rchar = 0;  // bytes read() while loading: the weights are mapped, not read

  // "timeline rank=R ready=T ... rss_file_kb=K", parsed by scripts/bench-main-job.sh.
  std::string line(int rank, double tokens) const {
    char out[512];
    std::snprintf(out, sizeof out,
                  "timeline rank=%d ready=%.6f group=%.6f load=%.6f first_token=%.6f done=%.6f tokens=%.0f "
                  "load_rchar=%lld rss_anon_kb=%lld rss_file_kb=%lld",
                  rank, ready, group, load, first_token, done, tokens, load_rchar,
                  proc_field("/proc/self/status", "RssAnon"), proc_field("/proc/self/status", "RssFile"));
    return out;
  }
};

std::string rate(double tokens, double seconds) {
  std::ostringstream out;
  out << static_cast<long long>(tokens) << " tokens in " << std::fixed << std::setprecision(2) << seconds << " s ("
      << std::setprecision(1) << (seconds > 0 ? tokens / seconds : 0.0) << " tokens/s)";
  return out.str();
}

int run(const Options& options, Timeline timeline) {
  accel::PartialState state;
  timeline.group = wall_now();
  if (options.threads > 0) torch::set_num_threads(options.threads);
  const auto prompts = options.prompts_file.empty() ? kDefaultPrompts : accel::examples::read_prompts(options.prompts_file);
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec || !fs::is_directory(options.output_dir)) {
    throw accel::FileError(options.output_dir, "--output_dir is not a directory that can be created");
  }

  const auto rchar = proc_field("/proc/self/io", "rchar");
  const accel::examples::TextGenerator generator(options.generation, state.device());
  timeline.load = wall_now();
  timeline.load_rchar = proc_field("/proc/self/io", "rchar") - rchar;
  state.print("distributed_inference: model", generator.description());
  const auto mine = state.split_between_processes(prompts, /*apply_padding=*/true);
  const auto rank = state.process_index();
  const auto began = std::chrono::steady_clock::now();
  const auto completions = generator.run(mine.items, mine.start, [&](std::size_t done, std::size_t total) {
    if (total > static_cast<std::size_t>(options.generation.batch_size))
      std::cerr << "distributed_inference: rank " << rank << ": " << done << "/" << total << " prompts done\n";
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  timeline.done = wall_now();
  timeline.first_token = completions.empty() ? timeline.done : timeline.done - seconds + completions[0].prefill_seconds;

  std::string lines;
  std::vector<std::string> texts, records;
  double tokens = 0;
  for (std::size_t i = 0; i < completions.size(); ++i) {
    const auto& c = completions[i];
    texts.push_back(accel::examples::one_line(c.text));
    const nlohmann::json record = {{"index", mine.start + i},   {"prompt", mine.items[i]},
                                   {"completion", c.text},      {"tokens", c.new_tokens},
                                   {"prompt_tokens", c.prompt_tokens}, {"rank", rank},
                                   {"batch_seconds", c.batch_seconds}};
    records.push_back(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (i < mine.num_real) {
      lines += std::to_string(mine.start + i) + "\t" + mine.items[i] + "\t" + texts.back() + "\n";
      tokens += static_cast<double>(c.new_tokens.size());
    }
  }
  replace_announced(fs::path(options.output_dir) / ("result_" + std::to_string(rank) + ".txt"), lines);

  const auto all = state.gather_unpadded(texts, mine);
  const auto all_records = state.gather_unpadded(records, mine);
  const auto per_rank = state.gather_object(std::vector<double>{tokens, seconds});
  // Every rank decides alike (the same flag), so the collective is entered by all or by none.
  const auto timelines = options.timeline ? state.gather_object(timeline.line(rank, tokens)) : std::vector<std::string>{};
  state.print("distributed_inference:", prompts.size(), "prompts on", state.num_processes(),
              "process(es) (" + std::string(accel::to_string(state.backend())) + ", " + state.device().str() + ")");
  for (std::size_t i = 0; i < all.size(); ++i) state.print("[" + std::to_string(i) + "]", prompts[i], "->", all[i]);
  double total_tokens = 0, slowest = 0;
  for (std::size_t r = 0; r < per_rank.size(); r += 2) {
    state.print("rank " + std::to_string(r / 2) + ":", rate(per_rank[r], per_rank[r + 1]));
    total_tokens += per_rank[r];
    slowest = std::max(slowest, per_rank[r + 1]);
  }
  state.print("total:", rate(total_tokens, slowest), "over", state.num_processes(), "process(es)");
  for (const auto& line : timelines) state.print(line);
  if (!options.output_jsonl.empty() && state.is_main_process()) {
    std::string jsonl;
    for (const auto& record : all_records) jsonl += record + "\n";
    replace_announced(options.output_jsonl, jsonl);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Timeline timeline;
  timeline.ready = wall_now();
  CLI::App app{"Splits prompts between the job's processes, generates completions on each share, gathers them"};
  Options options;
  auto& g = options.generation;
  app.add_option("--prompts", options.prompts_file, "file with one prompt per line (default: a built-in list)");
  app.add_option("--output_dir,--output-dir", options.output_dir, "where result_<rank>.txt are written")
      ->capture_default_str();
  app.add_option("--output", options.output_jsonl,
                 "JSON lines file written by the main process: index, prompt, completion, tokens, "
                 "prompt_tokens, rank, batch_seconds per prompt");
  app.add_option("--model_dir,--model-dir", g.model_dir,
                 "checkpoint directory in Hugging Face layout: config.json (" + accel::models::supported_model_types() +
                     "), model.safetensors or a sharded index, tokenizer.json or vocab.json + merges.txt "
                 "(default: a small built-in GPT-2 config with seeded random weights)");
  app.add_option("--dtype", g.dtype, "compute dtype: float32, bfloat16 (float16 needs CUDA)")->capture_default_str();
  app.add_option("--batch_size,--batch-size", g.batch_size, "prompts per forward on each rank, left-padded")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--max_new_tokens,--max-new-tokens", g.max_new_tokens, "tokens generated per prompt at most")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--temperature", g.temperature, "0: greedy; > 0: sampling at this temperature")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  app.add_option("--top_k,--top-k", g.top_k, "sample among the k most likely tokens (0: off)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  app.add_option("--top_p,--top-p", g.top_p, "sample among the most likely tokens reaching this mass (1: off)")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  app.add_option("--seed", g.seed, "sampling seed; a prompt's sample depends on it and the prompt's index")
      ->capture_default_str();
  app.add_flag("--timeline", options.timeline,
               "print each rank's phase times (start, group, load, first token, done; wall-clock seconds) "
               "and the bytes read while loading, for scripts/bench-main-job.sh");
  app.add_option("--threads", options.threads, "torch intra-op threads per process (default: torch's choice)")
      ->check(CLI::Range(1, 1024));
  try {
    app.parse(argc, argv);
    return run(options, timeline);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const accel::Error& e) {
    std::cerr << "distributed_inference: error: " << e.what() << "\n";
    return e.exit_code();
  }
}
