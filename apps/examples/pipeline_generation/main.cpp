// Pipelined text generation: a causal language model cut into one stage per process, the prompts
// cut into micro-batches that decode in turn, so that every stage works at each step. Run it with:
//   accel-launch --num_processes 2 pipeline_generation --num_chunks 4
// Without --model_dir the model is a small GPT-2 with seeded random weights (the text is noise)
// and GPT-2's vocabulary; --model_dir takes any supported checkpoint (GPT-2, Llama, Mistral, Qwen).
// Rank 0 prints each prompt and its completion. --bench R measures instead: time to first token
// and decode tokens/s (best of R), one "pipeline_generation rank=..." line per rank;
// --reference runs models::generate() in this one process, the baseline the pipeline is held to.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <limits>
#include <sstream>

#include "accel/core/error.h"
#include "accel/models/auto_model.h"
#include "accel/models/gpt2.h"
#include "accel/models/tokenizer.h"
#include "accel/models/tokenizer_json.h"
#include "accel/pipeline/pipeline.h"
#include "accel/runtime/partial_state.h"
#include "support/example_cli.h"

namespace {

constexpr std::uint64_t kRandomWeightsSeed = 20240601;

struct Options {
  std::string model_dir;
  accel::examples::RandomGpt2Shape shape{.layers = 4, .embd = 256, .heads = 4};
  std::vector<std::string> prompts{"The pipeline", "Once upon a time", "In a distant galaxy", "The quick brown fox"};
  int batch = 0;  // > 0: that many prompts, the given ones repeated
  int max_new_tokens = 24;
  int num_chunks = 0;  // 0: one micro-batch per process
  std::string split_points = "auto";
  double temperature = 0;  // 0: greedy
  int top_k = 0;
  double top_p = 1;
  std::uint64_t seed = 0;
  std::string dtype = "float32";
  int threads = 1;
  int bench = 0;
  bool reference = false;
};

accel::models::LoadedModel load_model(const Options& o, const accel::PartialState& state, std::string& description) {
  const auto dtype = accel::models::parse_dtype(o.dtype);
  if (!o.model_dir.empty()) {
    auto loaded = accel::models::load_causal_lm(o.model_dir, {dtype, state.device()});
    description = loaded.model->describe() + " from " + o.model_dir;
    return loaded;
  }
  accel::models::GPT2Options options;
  o.shape.apply_to(options.config, "pipeline_generation options");
  options.seed = kRandomWeightsSeed;
  options.dtype = dtype;
  options.device = state.device();
  auto model = std::make_shared<accel::models::GPT2LMHeadModel>(options);
  description = model->describe() + " with random weights (seed " + std::to_string(kRandomWeightsSeed) +
                "): the text is noise, not a trained model's";
  return {model, model};
}

std::vector<std::string> prompt_texts(const Options& o) {
  if (o.batch <= 0) return o.prompts;
  std::vector<std::string> texts;
  for (int i = 0; i < o.batch; ++i) texts.push_back(o.prompts[static_cast<std::size_t>(i) % o.prompts.size()]);
  return texts;
}

accel::models::GenerationOptions generation_options(const Options& o, std::int64_t new_tokens) {
  accel::models::GenerationOptions g;
  g.max_new_tokens = new_tokens;
  g.do_sample = o.temperature > 0;
  g.temperature = g.do_sample ? o.temperature : 1.0;
  g.top_k = o.top_k;
  g.top_p = o.top_p;
  g.seed = o.seed;
  g.stop_at_eos = o.bench == 0;  // measured runs make every row generate every token
  return g;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of `repeats`: a call that makes one token (prefill of every prompt and the first token)
// and one that makes max_new_tokens; decoding runs at rows * (tokens - 1) / (difference). Every
// rank prints its line; "busy" is the share of the long calls this rank spent in its blocks.
template <class Generate>
void bench(const Options& o, accel::PartialState& state, std::int64_t rows, const accel::pipeline::Pipeline* pipe,
           Generate generate) {
  double first = std::numeric_limits<double>::infinity(), full = first, busy = 0, elapsed = 0;
  for (int r = 0; r < o.bench; ++r) {
    state.wait_for_everyone();
    auto start = std::chrono::steady_clock::now();
    generate(1);
    first = std::min(first, seconds_since(start));
    state.wait_for_everyone();
    const double busy_before = pipe ? pipe->compute_seconds() : 0;
    start = std::chrono::steady_clock::now();
    generate(o.max_new_tokens);
    const double seconds = seconds_since(start);
    full = std::min(full, seconds);
    elapsed += seconds;
    busy += pipe ? pipe->compute_seconds() - busy_before : seconds;
  }
  std::ostringstream line;
  line << "pipeline_generation rank=" << state.process_index() << " stages=" << (pipe ? pipe->num_stages() : 0)
       << " num_chunks=" << (pipe ? pipe->num_chunks() : 1) << " batch=" << rows << " new_tokens=" << o.max_new_tokens
       << " threads=" << o.threads << " ttft_s=" << first << " total_s=" << full
       << " decode_tokens_per_s=" << static_cast<double>(rows * (o.max_new_tokens - 1)) / (full - first)
       << " busy=" << busy / elapsed << "\n";
  std::cout << line.str() << std::flush;
}

int run(const Options& o) {
  torch::set_num_threads(o.threads);
  accel::PartialState state;
  if (o.reference && state.num_processes() > 1) {
    throw accel::UsageError("--reference runs the model in one process; start it with --num_processes 1");
  }
  std::string description;
  const auto loaded = load_model(o, state, description);
  std::unique_ptr<accel::models::Tokenizer> tokenizer;
  if (o.model_dir.empty()) {
    tokenizer = std::make_unique<accel::models::GPT2Tokenizer>(accel::models::GPT2Tokenizer::bundled());
  } else {
    tokenizer = accel::models::load_tokenizer(o.model_dir);
  }
  const auto texts = prompt_texts(o);
  std::vector<std::vector<std::int64_t>> ids;
  for (const auto& text : texts) ids.push_back(tokenizer->prompt_ids(text));
  const auto prompts = accel::models::left_pad(ids, accel::models::padding_id(loaded.model->eos_token_ids(), {}));
  const auto rows = prompts.input_ids.size(0);
  if (state.is_main_process()) std::cout << "pipeline_generation: " << description << "\n" << std::flush;

  auto generate = [&](std::int64_t tokens) {
    return accel::models::generate(*loaded.model, prompts.input_ids, prompts.attention_mask, generation_options(o, tokens));
  };
  if (o.reference && o.bench > 0) {
    bench(o, state, rows, nullptr, generate);
    return 0;
  }
  std::optional<accel::pipeline::Pipeline> pipe;
  if (!o.reference) {
    const auto example = accel::models::left_pad({ids.front()}, 0);
    pipe = accel::pipeline::prepare(*loaded.blocks, {example.input_ids, example.attention_mask},
                                    {.split_points = accel::pipeline::SplitPoints::parse(o.split_points),
                                     .num_chunks = o.num_chunks > 0 ? std::optional<int>(o.num_chunks) : std::nullopt});
  }
  auto pipelined = [&](std::int64_t tokens) {
    return pipe->generate(prompts.input_ids, prompts.attention_mask, generation_options(o, tokens));
  };
  if (o.bench > 0) {
    bench(o, state, rows, &*pipe, pipelined);
    return 0;
  }
  const auto result = o.reference ? generate(o.max_new_tokens) : pipelined(o.max_new_tokens);
  if (!state.is_main_process()) return 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::cout << "prompt " << i << ": " << texts[i] << " -> " << tokenizer->completion_text(result.new_tokens[i])
              << "\n";
  }
  std::cout << std::flush;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Text generation with a causal language model pipelined across the processes of a job"};
  Options o;
  accel::examples::show_defaults_in_help(app);
  accel::examples::add_model_options(app, o.model_dir,
                                     "Checkpoint directory: config.json (" + accel::models::supported_model_types() +
                                         "), weights, tokenizer (default: random GPT-2)",
                                     o.shape);
  app.add_option("--prompt", o.prompts, "A prompt (repeat the flag for several)");
  accel::examples::add_batch_size_option(app, o.batch, "Generate for this many prompts, the given ones repeated (default 0: the given ones)");
  app.add_option("--max_new_tokens", o.max_new_tokens, "Tokens to generate per prompt")->check(CLI::PositiveNumber);
  app.add_option("--num_chunks", o.num_chunks, "Micro-batches decoding in turn (default: one per process)")
      ->check(CLI::PositiveNumber);
  app.add_option("--split_points", o.split_points, "auto | parameters | block counts (3,3) | block names (h.3)");
  app.add_option("--temperature", o.temperature, "Sampling temperature; 0: greedy")->check(CLI::NonNegativeNumber);
  app.add_option("--top_k", o.top_k, "Sample from the k likeliest tokens (0: all)")->check(CLI::NonNegativeNumber);
  app.add_option("--top_p", o.top_p, "Sample from the smallest set reaching this probability");
  app.add_option("--seed", o.seed, "Seed of the sampling");
  app.add_option("--dtype", o.dtype, "float32 | bfloat16 | float16 (CUDA)");
  app.add_option("--threads", o.threads, "Torch threads per process")->check(CLI::PositiveNumber);
  app.add_option("--bench", o.bench, "Measure time to first token and decode tokens/s, best of this many runs")
      ->check(CLI::PositiveNumber);
  app.add_flag("--reference", o.reference, "Run models::generate() in this one process instead of the pipeline");
  if (const auto exit_code = accel::examples::parse_command_line(app, argc, argv, "pipeline_generation")) return *exit_code;
  return accel::examples::run_reporting_errors("pipeline_generation", [&o] { return run(o); });
}
