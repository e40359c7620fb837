// The main job: offline batch inference. Requests from an OpenAI batch file (-i) or a prompts
// file (--prompts) are pulled by the job's ranks as their batch slots free up and decoded with
// continuous batching; the main process writes each output line (-o) as it finishes, so that
// rerunning the same command after a crash continues where it stopped.
// Run it with: accel-launch --num_processes 2 distributed_inference -i data/batch.jsonl -o out.jsonl
#include <CLI/CLI.hpp>

#include <iostream>
#include <map>

#include "accel/core/error.h"
#include "engine.h"
#include "support/example_cli.h"

namespace {

using accel::examples::EngineOptions;

void add_request_options(CLI::App& app, EngineOptions& options) {
  auto& d = options.defaults;
  app.add_option("--max_new_tokens,--max-new-tokens,--max_tokens", d.max_tokens,
                 "tokens generated per request at most, unless its body sets max_tokens")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  // Unset, these defer to the checkpoint's generation_config.json (do_sample, temperature, top_p,
  // top_k), and without one to greedy decoding; a request body's own values win over both.
  app.add_option_function<double>(
         "--temperature", [&d](double value) { d.temperature = value; },
         "0: greedy; > 0: sampling at this temperature (a body's wins; default: the checkpoint's "
         "generation_config.json, else greedy)")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option_function<int>(
         "--top_k,--top-k", [&d](int value) { d.top_k = value; },
         "sample among the k most likely tokens (0: off; a body's wins; default: the checkpoint's, else off)")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option_function<double>(
         "--top_p,--top-p", [&d](double value) { d.top_p = value; },
         "sample among the most likely tokens reaching this mass (1: off; a body's wins; default: the "
         "checkpoint's, else off)")
      ->check(CLI::Range(1e-9, 1.0));
  app.add_option("--seed", d.seed,
                 "sampling seed: a request without a body seed samples with this + its index in the input, "
                 "whatever rank, batch or schedule serves it")
      ->capture_default_str();
}

void add_options(CLI::App& app, EngineOptions& options) {
  app.add_option("-i,--input_file,--input-file", options.input_file,
                 "OpenAI batch input: JSON lines with custom_id, method, url (/v1/completions) and body");
  app.add_option("--prompts", options.prompts_file, "file with one prompt per line (default: a built-in list)");
  app.add_flag("--chat", options.chat,
               "each prompt is one user message of a chat request, rendered with the model's chat template");
  app.add_flag("--render_only,--render-only", options.render_only,
               "print each request's prompt as the model would read it (JSON lines: custom_id, prompt, "
               "prompt_token_ids) and exit, without loading the weights");
  app.add_option("-o,--output_file,--output-file", options.output_file,
                 "OpenAI batch output, one line per request in input order; written as results finish, and "
                 "continued by a rerun (default: the results are printed)");
  app.add_flag("--overwrite", options.overwrite, "start the output file afresh instead of continuing it");
  app.add_option("--schedule", options.schedule,
                 "continuous: ranks pull requests as slots free up, a finished row's slot takes the next one; "
                 "static: a fixed contiguous share per rank, run in batches that wait for their longest row "
                 "(default: continuous)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, accel::models::Schedule>{
          {"continuous", accel::models::Schedule::kContinuous}, {"static", accel::models::Schedule::kStatic}}))
      ->default_str("continuous");
  accel::examples::add_batch_size_option(app, options.batch_size, "sequences in flight on each rank");
  app.add_option("--max_model_len,--max-model-len", options.max_model_len,
                 "tokens one sequence may hold, prompt and completion (at most the model's context)")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  accel::examples::add_model_dir_option(app, options.model.model_dir,
                 "checkpoint directory in Hugging Face layout: config.json (gpt2, llama, mistral, qwen2, "
                 "qwen3), model.safetensors or a sharded index, tokenizer.json or vocab.json + merges.txt "
                 "(default: a small built-in GPT-2 config with seeded random weights)");
  app.add_option("--dtype", options.model.dtype, "compute dtype: float32, bfloat16 (float16 needs CUDA)")
      ->capture_default_str();
  add_request_options(app, options);
  app.add_flag("--timeline", options.timeline,
               "print each rank's phase times (start, group, load, first token, done; wall-clock seconds) "
               "for scripts/bench-main-job.sh");
  app.add_option("--progress_seconds", options.progress_seconds,
                 "seconds between progress lines when stderr is not a terminal")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "torch intra-op threads per process (default: torch's choice)")
      ->check(CLI::Range(1, 1024));
}

}  // namespace

int main(int argc, char** argv) {
  const double started_at = accel::examples::wall_now();
  CLI::App app{"Offline batch inference: requests pulled by the job's processes, continuous batching, "
               "OpenAI batch files, resumable output"};
  EngineOptions options;
  accel::examples::show_defaults_in_help(app);
  add_options(app, options);
  if (const auto exit_code = accel::examples::parse_command_line(app, argc, argv, "distributed_inference")) return *exit_code;
  return accel::examples::run_reporting_errors("distributed_inference", [&] {
    return options.render_only ? accel::examples::render_prompts(options) : accel::examples::run_engine(options, started_at);
  });
}
