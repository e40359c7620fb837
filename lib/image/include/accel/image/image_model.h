#pragma once
// Text-to-image models exported from Python as TorchScript (torch.jit.script or torch.jit.trace),
// run on prompts, their output checked and turned into PNG files. docs/image-generation.md.
//
// Prompts reach a model as token ids: row i holds prompt i's UTF-8 bytes plus 1 (1..256), then 0
// up to the batch's longest prompt; a model must treat 0 as padding. Its forward is one of:
//   forward(token_ids: Tensor, seed: int, num_steps: int) -> images   (num_steps may have a default)
//   forward(token_ids: Tensor, seed: int) -> images
//   forward(seeded_token_ids: Tensor) -> images   (column 0 each row's seed, then its token ids:
//                                                  an nn.Sequential, which takes one tensor)
// and images is [rows, 3, H, W]: floating values in [0, 1] (clamped there) or uint8.
#include <torch/script.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "accel/pipeline/pipeline.h"

namespace accel::image {

enum class ForwardSignature { kTokensSeedSteps, kTokensSeed, kSeededTokens };

struct GenerationSettings {
  std::int64_t seed = 0;
  std::optional<int> num_steps;  // unset: the forward's default; only for kTokensSeedSteps
  // Rows of every forward call (the last batch is padded by repeating its last prompt, and the
  // padding dropped): a prompt's picture then does not depend on which batch it ran in.
  int batch_size = 1;
};

// [prompts, longest prompt's bytes] int64, as described above.
torch::Tensor prompt_token_ids(const std::vector<std::string>& prompts);
// The same with a first column holding `seed` in every row.
torch::Tensor seeded_token_ids(const std::vector<std::string>& prompts, std::int64_t seed);

// Checks that `images` is what a model must return for `rows` prompts and gives its pixels as
// uint8 [rows, H, W, 3]. Throws accel::UsageError naming `source` and what was expected.
torch::Tensor to_pixels(const torch::Tensor& images, std::int64_t rows, const std::string& source);

class ImageModel {
 public:
  // Throws accel::FileError when `path` is not TorchScript, accel::UsageError when its forward
  // is none of the accepted signatures (the message lists them).
  static ImageModel load(const std::string& path);
  ImageModel(torch::jit::Module module, std::string source);

  ForwardSignature signature() const { return signature_; }
  // "<source>: forward(...)" for the job's log.
  std::string description() const;

  // uint8 pixels [prompts, H, W, 3], through forward calls of exactly settings.batch_size rows.
  // Throws accel::UsageError for settings the forward cannot take (--num_steps for a model
  // without num_steps) and for an output to_pixels() refuses.
  torch::Tensor generate(const std::vector<std::string>& prompts, const GenerationSettings& settings) const;

 private:
  torch::jit::Module module_;
  std::string source_;
  ForwardSignature signature_;
};

// The pipeline route: the model at `path` (an nn.Sequential whose forward takes seeded token ids)
// cut into one stage per process of the job, each batch of prompts cut into `options.num_chunks`
// micro-batches of settings.batch_size rows. Every rank passes the same prompts; the last stage
// gets the pixels as ImageModel::generate gives them, the other ranks an undefined tensor.
torch::Tensor generate_pipelined(const std::string& path, const std::vector<std::string>& prompts,
                                 const GenerationSettings& settings, pipeline::PipelineOptions options);

// Writes pixels [N, H, W, 3] into `directory` as result_<rank>.png (the first) and
// result_<rank>_<i>.png (i = 1..N-1), each through a temporary name; returns the files' paths.
// A file from an earlier run is replaced, and that is said on stderr.
std::vector<std::string> write_results(const std::string& directory, int rank, const torch::Tensor& pixels);

// Creates `directory` if needed and checks that a file can be created in it, before any model
// work. Throws accel::FileError naming it otherwise.
void prepare_output_directory(const std::string& directory);

}  // namespace accel::image
