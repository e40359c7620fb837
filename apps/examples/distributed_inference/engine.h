#pragma once
// The main job as an offline batch-inference engine: requests from an OpenAI batch file or a
// prompts file, pulled by the ranks in small groups as their slots free up (or split statically
// with --schedule static), decoded with continuous batching, and written by the main process to
// the output file as they finish so that a rerun continues where a crash left off.
#include <cstdint>
#include <optional>
#include <string>

#include "accel/models/continuous_batching.h"
#include "model.h"

namespace accel::examples {

// What a request gets when its body does not say.
struct RequestDefaults {
  int max_tokens = 16;
  // Unset: the checkpoint's generation_config.json (models::choose_sampling), else greedy.
  std::optional<double> temperature;  // 0: greedy; > 0: sampling
  std::optional<int> top_k;           // 0: off
  std::optional<double> top_p;        // 1: off
  std::uint64_t seed = 0;  // a request without a seed samples with seed + its index in the input
};

struct EngineOptions {
  std::string input_file;    // OpenAI batch input (JSON lines); or
  std::string prompts_file;  // one prompt per line; neither: a built-in list
  bool chat = false;         // each --prompts line (or built-in prompt) is one user message
  bool render_only = false;  // print each request's prompt text and ids, load no weights, serve nothing
  std::string output_file;   // OpenAI batch output; empty: results printed by the main process
  bool overwrite = false;    // start afresh instead of continuing an earlier run's output
  models::Schedule schedule = models::Schedule::kContinuous;
  int batch_size = 8;        // sequences in flight per rank
  std::int64_t max_model_len = 2048;  // tokens one sequence may hold (prompt + completion)
  int threads = 0;           // torch intra-op threads per process; 0: torch's choice
  bool timeline = false;     // print each rank's phase times (scripts/bench-main-job.sh)
  double progress_seconds = 5;  // a progress line this often when stderr is not a terminal
  RequestDefaults defaults;
  ModelSettings model;
};

// Wall-clock seconds since the epoch: the clock every rank's timeline line shares.
double wall_now();

// Runs the job on this rank; returns the process exit code. Throws accel::Error subclasses
// naming the file, flag or request at fault.
int run_engine(const EngineOptions& options, double started_at);

// --render_only: the main process prints one JSON line per input entry, {"custom_id", "prompt",
// "prompt_token_ids"} or {"custom_id", "error"}, without loading the weights; returns 0.
int render_prompts(const EngineOptions& options);

}  // namespace accel::examples
