// One forward pass of the C++ GPT-2 against scripts/crosscheck-gpt2.py, an independent
// PyTorch implementation run by Debian's /usr/bin/python3 on the same checkpoint.
#include "accel/models/gpt2.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <string>

using namespace accel::models;
using accel::models::testing::CommandOutcome;
using accel::models::testing::run_command;
using accel::test::TempDir;
using accel::models::testing::tiny_config;

namespace {

CommandOutcome run_crosscheck(const TempDir& dir, const std::string& case_file) {
  return run_command(std::string("/usr/bin/python3 ") + ACCEL_CROSSCHECK_SCRIPT + " check " +
                     dir.root() + " " + case_file);
}

// A left-padded batch, so masking and mask-derived positions are checked too.
std::pair<torch::Tensor, torch::Tensor> padded_batch() {
  torch::manual_seed(11);
  auto ids = torch::randint(0, tiny_config().vocab_size, {3, 12}, torch::kLong);
  auto mask = torch::ones({3, 12}, torch::kLong);
  mask[1].narrow(0, 0, 4).zero_();
  mask[2].narrow(0, 0, 11).zero_();
  return {ids, mask};
}

// Saves `model`, runs it on a left-padded batch and hands both to the Python script.
template <typename Model>
CommandOutcome crosscheck(Model& model, const TempDir& dir, torch::Tensor offset = torch::zeros({})) {
  model.save_pretrained(dir.root(), /*overwrite=*/true);
  const auto [ids, mask] = padded_batch();
  const auto logits = model.forward(ids, mask);
  const auto case_file = dir.path("case.safetensors");
  save_safetensors(case_file, {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits + offset}},
                   {.overwrite = true, .metadata = {}});
  return run_crosscheck(dir, case_file);
}

GPT2Options options_with(const std::string& activation, std::uint64_t seed) {
  GPT2Options options;
  options.config = tiny_config();
  options.config.activation_function = activation;
  options.seed = seed;
  return options;
}

}  // namespace

TEST_CASE("GPT-2 LM logits agree with an independent PyTorch implementation",
          "[models][crosscheck]") {
  TempDir dir;
  GPT2LMHeadModel model(options_with("gelu_new", 5));
  auto outcome = crosscheck(model, dir);
  INFO(outcome.output);
  CHECK(outcome.status == 0);
  CHECK(outcome.output.find("crosscheck ok: shape (21, 97)") != std::string::npos);

  // The check can fail: a perturbed expectation must be caught.
  outcome = crosscheck(model, dir, torch::full({}, 1e-3));
  INFO(outcome.output);
  CHECK(outcome.status == 1);
  CHECK(outcome.output.find("crosscheck FAILED") != std::string::npos);
}

TEST_CASE("GPT-2 sequence classification agrees with an independent PyTorch implementation",
          "[models][crosscheck]") {
  TempDir dir;
  GPT2ForSequenceClassification model(options_with("gelu", 8));
  const auto outcome = crosscheck(model, dir);
  INFO(outcome.output);
  CHECK(outcome.status == 0);
  CHECK(outcome.output.find("crosscheck ok: shape (3, 3)") != std::string::npos);
}
