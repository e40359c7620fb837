// The user's second scenario: GPT-2 for sequence classification cut into one stage per process,
// micro-batches streaming through the stages. Run it with:
//   accel-launch --num_processes 2 pipeline_inference --num_chunks 4
// Every rank builds only its own stage's blocks (random weights from --seed, or --model_dir). A
// causal LM's checkpoint has no classification head: it is initialised from --seed, as
// transformers does, and the job says so before any work.
// With --iterations N it also measures: each rank prints one "pipeline_inference rank=..." line
// with its time, stage parameters and peak RSS (what scripts/bench-pipeline.sh collects).
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "accel/core/error.h"
#include "accel/models/gpt2.h"
#include "accel/pipeline/pipeline.h"
#include "accel/runtime/partial_state.h"
#include "support/example_cli.h"

namespace {

struct Options {
  std::string model_dir;  // a directory with config.json + model.safetensors
  accel::examples::RandomGpt2Shape shape;  // GPT-2 small
  int batch = 8;
  int seq = 128;
  int num_chunks = 4;
  std::string split_points = "auto";
  bool gather_output = false;
  int stream_batches = 0;  // > 0: run that many batches through pipe.stream()
  int iterations = 0;      // > 0: timed calls after one warm-up call
  int threads = 1;
  std::uint64_t seed = 0;
};

// Peak resident memory of this process, from /proc (Linux).
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

accel::models::Activations make_batch(const accel::models::GPT2Config& config, int batch, int seq, std::uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  auto ids = torch::randint(0, config.vocab_size, {batch, seq}, generator, torch::kInt64);
  auto mask = torch::ones({batch, seq}, torch::kInt64);
  return {ids, mask};
}

int run(const Options& o) {
  torch::set_num_threads(o.threads);
  accel::PartialState state;
  accel::models::GPT2Options model_options;
  if (!o.model_dir.empty()) {
    model_options = accel::models::GPT2Options::from_directory(o.model_dir);
  } else {
    o.shape.apply_to(model_options.config, "pipeline_inference options");
  }
  model_options.seed = o.seed;
  // ACCELERATE_MIXED_PRECISION / ACCEL_MIXED_PRECISION choose the compute dtype (bf16, or fp16 on CUDA).
  model_options.dtype = state.compute_dtype();
  const auto config = model_options.config;
  accel::models::GPT2ForSequenceClassification model(model_options);
  if (!model.score_in_checkpoint()) {
    state.print("pipeline_inference: note: " + o.model_dir +
                " has no score.weight (a causal language model's checkpoint): the classification head of " +
                std::to_string(config.num_labels) + " labels is initialised from --seed " + std::to_string(o.seed) +
                ", as transformers does, and its labels mean nothing until it is trained; to generate text from "
                "this checkpoint run pipeline_generation --model_dir " + o.model_dir);
  }

  const auto rss_before = peak_rss_mib();
  const int micro = std::max(1, o.batch / std::max(1, o.num_chunks));
  auto pipe = accel::pipeline::prepare(model, make_batch(config, micro, o.seq, 1),
                                       {.split_points = accel::pipeline::SplitPoints::parse(o.split_points),
                                        .num_chunks = o.num_chunks,
                                        .gather_output = o.gather_output});
  torch::NoGradGuard no_grad;
  const auto batch = make_batch(config, o.batch, o.seq, 2);
  std::vector<accel::models::Activations> stream;
  for (int i = 0; i < o.stream_batches; ++i) stream.push_back(make_batch(config, o.batch, o.seq, 3 + i));

  auto call = [&] {
    if (o.stream_batches > 0) {
      auto outs = pipe.stream(stream);
      return outs.empty() ? accel::models::Activations{} : outs.back();
    }
    return pipe.forward(batch);
  };
  // The untimed run goes through call() too, so that --stream without --iterations really
  // streams; it is also the warm-up for --iterations.
  auto out = call();
  double seconds = 0, compute_seconds = 0;
  if (o.iterations > 0) {
    state.wait_for_everyone();
    const auto start = std::chrono::steady_clock::now();
    const double compute_before = pipe.compute_seconds();
    for (int i = 0; i < o.iterations; ++i) out = call();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    compute_seconds = pipe.compute_seconds() - compute_before;
  }
  if (!out.empty()) {
    std::ostringstream shown;
    shown << "rank " << state.process_index() << ": logits " << out[0].sizes() << ", row 0:";
    const auto row = out[0][0].to(torch::kCPU, torch::kFloat);
    for (std::int64_t j = 0; j < row.size(0); ++j) shown << " " << row[j].item<float>();
    std::cout << shown.str() << "\n" << std::flush;
  }
  if (o.iterations > 0) {
    const int per_call = std::max(1, o.stream_batches);
    std::ostringstream line;
    line << "pipeline_inference rank=" << state.process_index() << " stages=" << pipe.num_stages()
         << " num_chunks=" << pipe.num_chunks() << " batch=" << o.batch << " seq=" << o.seq
         << " batches=" << o.iterations * per_call << " seconds=" << seconds
         << " compute_seconds=" << compute_seconds
         << " samples_per_s=" << o.iterations * per_call * o.batch / seconds
         << " stage_parameters=" << pipe.resident_parameter_count()
         << " model_parameters=" << [&] {
              std::int64_t n = 0;
              for (const auto& b : pipe.plan().blocks) n += b.parameter_count;
              return n;
            }()
         << " rss_before_prepare_mib=" << rss_before << " peak_rss_mib=" << peak_rss_mib() << "\n";
    std::cout << line.str() << std::flush;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"GPT-2 sequence classification, pipelined across the processes of a job"};
  accel::examples::show_defaults_in_help(app);
  accel::examples::add_model_options(app, o.model_dir,
                                     "GPT-2 checkpoint directory: config.json and model.safetensors; a causal LM's "
                                     "gets a classification head from --seed (default: random weights)",
                                     o.shape);
  accel::examples::add_batch_size_option(app, o.batch, "Rows per batch");
  app.add_option("--seq", o.seq, "Tokens per row")->check(CLI::PositiveNumber);
  app.add_option("--num_chunks", o.num_chunks, "Micro-batches per batch (1: naive model parallelism)");
  app.add_option("--split_points", o.split_points, "auto | parameters | block counts (6,6) | block names (h.6)");
  app.add_flag("--gather_output", o.gather_output, "Deliver the output to every process");
  app.add_option("--stream", o.stream_batches, "Run this many batches through one pipe.stream() call");
  app.add_option("--iterations", o.iterations, "Timed calls after a warm-up; prints one measurement line per rank");
  app.add_option("--threads", o.threads, "Torch threads per process")->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "Seed of the random weights");
  if (const auto exit_code = accel::examples::parse_command_line(app, argc, argv, "pipeline_inference")) return *exit_code;
  return accel::examples::run_reporting_errors("pipeline_inference", [&o] { return run(o); });
}
