// Exported image models: the accepted forward signatures, the checks on what they return, the
// model scripts/export-image-model.py makes, and where the pictures go.
#include "accel/image/image_model.h"

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>

#include "accel/core/error.h"
#include "support/temp_dir.h"

using namespace accel::image;
using Catch::Matchers::Contains;

namespace {

// A scripted module whose forward is `source` (TorchScript), as a user's export would give.
ImageModel scripted(const std::string& source, const std::string& name = "model.pt") {
  torch::jit::Module module("Model");
  module.define(source);
  return ImageModel(module, name);
}

const std::vector<std::string> kPrompts{"a dog", "a cat", "a chicken"};

}  // namespace

TEST_CASE("prompts reach a model as their bytes plus 1, zero-padded, the seed first when seeded", "[image]") {
  const auto ids = prompt_token_ids({"ab", "\xc3\xa9", ""});
  CHECK(ids.sizes() == torch::IntArrayRef{3, 2});
  CHECK(torch::equal(ids, torch::tensor({98, 99, 0xc3 + 1, 0xa9 + 1, 0, 0}, torch::kInt64).reshape({3, 2})));
  const auto seeded = seeded_token_ids({"ab"}, 42);
  CHECK(torch::equal(seeded, torch::tensor({42, 98, 99}, torch::kInt64).reshape({1, 3})));
}

TEST_CASE("each accepted forward signature receives the prompts, the seed and num_steps", "[image]") {
  GenerationSettings settings{.seed = 7, .num_steps = 3, .batch_size = 2};
  // The value of each picture says what the model saw: token count, seed and steps.
  auto with_steps = scripted(R"(
def forward(self, token_ids: Tensor, seed: int, num_steps: int = 2) -> Tensor:
    value = ((token_ids != 0).sum(1) + seed + num_steps * 10) / 255.0
    return value.reshape([-1, 1, 1, 1]).expand([-1, 3, 2, 4]).contiguous()
)");
  CHECK(with_steps.signature() == ForwardSignature::kTokensSeedSteps);
  auto pixels = with_steps.generate(kPrompts, settings);
  CHECK(pixels.sizes() == torch::IntArrayRef{3, 2, 4, 3});  // [prompts, H, W, RGB]
  CHECK(pixels.scalar_type() == torch::kUInt8);
  CHECK(pixels.select(3, 0).flatten(1).select(1, 0).equal(torch::tensor({5 + 7 + 30, 5 + 7 + 30, 9 + 7 + 30}, torch::kUInt8)));
  settings.num_steps.reset();  // the forward's default
  CHECK(with_steps.generate({"a"}, settings)[0][0][0][0].item<int>() == 1 + 7 + 20);

  auto seeded_only = scripted(R"(
def forward(self, token_ids: Tensor, seed: int) -> Tensor:
    return torch.full([token_ids.size(0), 3, 1, 1], seed / 255.0)
)");
  CHECK(seeded_only.signature() == ForwardSignature::kTokensSeed);
  CHECK(seeded_only.generate({"x"}, settings)[0][0][0][0].item<int>() == 7);

  auto sequential = scripted(R"(
def forward(self, seeded_token_ids: Tensor) -> Tensor:
    return (seeded_token_ids[:, 0:1] / 255.0).reshape([-1, 1, 1, 1]).expand([-1, 3, 1, 1])
)");
  CHECK(sequential.signature() == ForwardSignature::kSeededTokens);
  CHECK(sequential.generate({"x"}, settings)[0][0][0][0].item<int>() == 7);
  settings.num_steps = 4;
  CHECK_THROWS_WITH(sequential.generate({"x"}, settings), Contains("num_steps was given but the model's forward takes none"));
}

TEST_CASE("a forward of another shape is refused, listing the accepted signatures", "[image][errors]") {
  CHECK_THROWS_WITH(scripted("def forward(self, token_ids: Tensor, scale: float) -> Tensor:\n    return token_ids\n"),
                    Contains("model.pt: the model's forward is forward(") &&
                        Contains("expected forward(token_ids: Tensor, seed: int, num_steps: int)"));
  auto no_default = scripted("def forward(self, token_ids: Tensor, seed: int, num_steps: int) -> Tensor:\n"
                             "    return torch.zeros([token_ids.size(0), 3, 1, 1])\n");
  CHECK_THROWS_WITH(no_default.generate({"x"}, {}), Contains("has no default for num_steps"));
}

TEST_CASE("a model output of the wrong shape, dtype or values is refused, naming the file", "[image][errors]") {
  const auto refuses = [](const std::string& body, const std::string& message) {
    INFO(body);
    auto model = scripted("def forward(self, token_ids: Tensor, seed: int):\n    " + body + "\n", "bad.pt");
    CHECK_THROWS_WITH(model.generate({"a", "b"}, {.batch_size = 2}), Contains("bad.pt: ") && Contains(message));
  };
  refuses("return torch.zeros([2, 3, 8])", "shape [2, 3, 8]; expected images [2, 3, H, W]");
  refuses("return torch.zeros([2, 4, 8, 8])", "shape [2, 4, 8, 8]");
  refuses("return torch.zeros([1, 3, 8, 8])", "shape [1, 3, 8, 8]; expected images [2, 3, H, W]");
  refuses("return torch.zeros([2, 3, 8, 8]).int()", "dtype Int; expected a floating dtype");
  refuses("return torch.full([2, 3, 8, 8], float('nan'))", "NaN or infinite values");
  refuses("return (torch.zeros([2, 3, 8, 8]), torch.zeros([2]))", "returned a Tuple; expected a tensor of images");
  refuses("return torch.zeros([2, 3, 8, 8]).reshape([5, -1])", "the model's forward failed");
}

TEST_CASE("uint8 pictures pass as they are, floating ones are clamped to [0, 1] and rounded to 8 bits", "[image]") {
  const auto bytes = torch::arange(12, torch::kUInt8).reshape({1, 3, 2, 2});
  CHECK(torch::equal(to_pixels(bytes, 1, "m"), bytes.permute({0, 2, 3, 1})));
  const auto pixels = to_pixels(torch::tensor({-1.0, 0.5, 2.0, 0.2}).reshape({1, 1, 2, 2}).expand({1, 3, 2, 2}), 1, "m");
  CHECK(pixels[0].select(2, 0).flatten().equal(torch::tensor({0, 128, 255, 51}, torch::kUInt8)));
}

TEST_CASE("a file that is not TorchScript is refused, naming it", "[image][errors]") {
  accel::test::TempDir dir("image");
  const auto path = dir.write("weights.pt", "not a zip archive");
  CHECK_THROWS_AS(ImageModel::load(path), accel::FileError);
  CHECK_THROWS_WITH(ImageModel::load(path), Contains(path + ": could not be loaded as TorchScript"));
  CHECK_THROWS_WITH(ImageModel::load(dir.path("absent.pt")), Contains("absent.pt: does not exist"));
}

TEST_CASE("the exported denoiser gives 64x64 pictures that depend only on the prompt and the seed", "[image][export]") {
  const auto model = ImageModel::load(DENOISER_FIXTURE);
  CHECK(model.signature() == ForwardSignature::kTokensSeedSteps);
  const auto together = model.generate(kPrompts, {.seed = 3, .batch_size = 2});
  CHECK(together.sizes() == torch::IntArrayRef{3, 64, 64, 3});
  // Batches of the same size: a prompt's picture is the same whichever batch and row it ran in.
  const auto alone = model.generate({kPrompts[2], kPrompts[0]}, {.seed = 3, .batch_size = 2});
  CHECK(torch::equal(alone[0], together[2]));
  CHECK(torch::equal(alone[1], together[0]));
  CHECK_FALSE(torch::equal(together[0], together[1]));  // the prompt matters
  CHECK_FALSE(torch::equal(model.generate({kPrompts[0]}, {.seed = 4, .batch_size = 2})[0], together[0]));  // the seed too
  CHECK_FALSE(torch::equal(model.generate({kPrompts[0]}, {.seed = 3, .num_steps = 1, .batch_size = 2})[0], together[0]));
  // Noise-like, not flat: many distinct values.
  CHECK(std::get<0>(torch::_unique(together[0].flatten())).numel() > 100);
}

TEST_CASE("the exported nn.Sequential is a seeded-token model of conv blocks the pipeline can cut", "[image][export]") {
  auto module = torch::jit::load(SEQUENTIAL_FIXTURE);
  CHECK(module.named_children().size() >= 4);
  const ImageModel model(module, SEQUENTIAL_FIXTURE);
  CHECK(model.signature() == ForwardSignature::kSeededTokens);
  const auto pixels = model.generate(kPrompts, {.seed = 1, .batch_size = 3});
  CHECK(pixels.sizes() == torch::IntArrayRef{3, 64, 64, 3});
  CHECK_THROWS_WITH(generate_pipelined(DENOISER_FIXTURE, kPrompts, {}, {}),
                    Contains("the pipeline route runs an nn.Sequential"));
}

TEST_CASE("the export script refuses a picture size it cannot make", "[image][export]") {
  accel::test::TempDir dir("image");
  const auto command = std::string(PYTHON) + " " + EXPORT_SCRIPT + " " + dir.path("m.pt") + " --size 30 >/dev/null 2>&1";
  CHECK(std::system(command.c_str()) != 0);
  CHECK_FALSE(std::filesystem::exists(dir.path("m.pt")));
}

TEST_CASE("write_results names the files by rank and writes every picture", "[image]") {
  accel::test::TempDir dir("image");
  const auto pixels = torch::arange(3 * 2 * 2 * 3, torch::kUInt8).reshape({3, 2, 2, 3});
  const auto files = write_results(dir.root(), 4, pixels);
  CHECK(files == std::vector<std::string>{dir.path("result_4.png"), dir.path("result_4_1.png"), dir.path("result_4_2.png")});
  for (const auto& f : files) CHECK(accel::test::slurp(f).substr(1, 3) == "PNG");
}

TEST_CASE("an output directory that cannot hold the pictures is refused, naming it", "[image][errors]") {
  accel::test::TempDir dir("image");
  prepare_output_directory(dir.path("new/nested"));
  CHECK(std::filesystem::is_directory(dir.path("new/nested")));
  CHECK(std::filesystem::is_empty(dir.path("new/nested")));  // the probe file is gone
  const auto file = dir.write("a-file", "x");
  CHECK_THROWS_WITH(prepare_output_directory(file + "/out"), Contains(file) && Contains("cannot create the directory"));
  // Not even root may create files in /proc.
  CHECK_THROWS_WITH(prepare_output_directory("/proc/self"),
                    Contains("/proc/self: is not a directory where the pictures can be written"));
}
