// The tutorial's image scenario: prompts split between the processes of a job, each rank running
// an exported (TorchScript) text-to-image model on its share and writing result_<rank>.png (its
// first picture) and result_<rank>_<i>.png; the main process prints which file holds which
// prompt. With --pipeline the model (an nn.Sequential) is cut into one stage per process instead
// and the last stage writes every picture. Make a model and run it with:
//   /usr/bin/python3 scripts/export-image-model.py image-model.pt
//   accel-launch --num_processes 2 image_generation --model image-model.pt
// The exported model's weights are random: its pictures are noise-like (docs/image-generation.md).
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "accel/core/error.h"
#include "accel/image/image_model.h"
#include "accel/runtime/partial_state.h"
#include "support/example_cli.h"
#include "support/prompts.h"

namespace {

struct Options {
  std::string model;
  std::string prompts_file;
  std::string output_dir = ".";
  accel::image::GenerationSettings settings;
  int num_steps = 0;  // 0: the model's default
  bool pipeline = false;
  int num_chunks = 1;
  int threads = 1;
};

int run(Options o) {
  torch::set_num_threads(o.threads);
  if (o.num_steps > 0) o.settings.num_steps = o.num_steps;
  accel::PartialState state;
  const auto prompts = o.prompts_file.empty() ? std::vector<std::string>{"a dog", "a cat"} : accel::examples::read_prompts(o.prompts_file);
  accel::image::prepare_output_directory(o.output_dir);
  const int rank = state.process_index();
  std::vector<std::string> files;
  if (o.pipeline) {
    const auto pixels = accel::image::generate_pipelined(o.model, prompts, o.settings, {.num_chunks = o.num_chunks});
    const auto written = pixels.defined() ? accel::image::write_results(o.output_dir, rank, pixels) : files;
    files = state.gather_object(written);  // only the last stage wrote
  } else {
    const auto model = accel::image::ImageModel::load(o.model);
    state.print("image_generation: model", model.description());
    // As accelerate's apply_padding: every rank runs as many prompts; the repeats are dropped.
    const auto mine = state.split_between_processes(prompts, /*apply_padding=*/true);
    const auto pixels = model.generate(mine.items, o.settings).slice(0, 0, static_cast<std::int64_t>(mine.num_real));
    auto written = accel::image::write_results(o.output_dir, rank, pixels);
    written.resize(mine.num_items);  // gather_unpadded drops the padding rows again
    files = state.gather_unpadded(written, mine);
  }
  for (std::size_t i = 0; i < prompts.size(); ++i) state.print("[" + std::to_string(i) + "]", prompts[i], "->", files.at(i));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Text-to-image with an exported TorchScript model, prompts split between the job's processes"};
  app.add_option("--model", o.model,
                 "TorchScript file (scripts/export-image-model.py); forward(token_ids, seed[, num_steps]) or "
                 "forward(seeded_token_ids) -> images [B, 3, H, W] in [0, 1] or uint8")
      ->required();
  app.add_option("--prompts", o.prompts_file, "file with one prompt per line (default: \"a dog\", \"a cat\")");
  app.add_option("--output_dir,--output-dir", o.output_dir, "where result_<rank>[_<i>].png are written")
      ->capture_default_str();
  app.add_option("--seed", o.settings.seed, "noise seed: a prompt's picture depends only on it and the prompt")
      ->capture_default_str();
  app.add_option("--num_steps,--num-steps", o.num_steps,
                 "denoising steps, passed to a forward that takes num_steps (default: the model's)")
      ->check(CLI::Range(1, 10000));
  accel::examples::add_batch_size_option(app, o.settings.batch_size, "prompts per forward call")->capture_default_str();
  app.add_flag("--pipeline", o.pipeline, "cut the model (an nn.Sequential) into one stage per process");
  app.add_option("--num_chunks,--num-chunks", o.num_chunks, "with --pipeline: micro-batches of --batch_size per batch")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "torch threads per process")->check(CLI::Range(1, 1024))->capture_default_str();
  if (const auto exit_code = accel::examples::parse_command_line(app, argc, argv, "image_generation")) return *exit_code;
  return accel::examples::run_reporting_errors("image_generation", [&o] { return run(o); });
}
