// One forward pass of the C++ GPT-2 against scripts/crosscheck-gpt2.py, an independent
// PyTorch implementation run by Debian's /usr/bin/python3 on the same checkpoint.
#include "accel/models/gpt2.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <sys/wait.h>

using namespace accel::models;
using accel::models::testing::ScratchDir;
using accel::models::testing::tiny_config;

namespace {

struct Outcome {
  int status;
  std::string output;
};

Outcome run_crosscheck(const ScratchDir& dir, const std::string& case_file) {
  const std::string command = std::string("/usr/bin/python3 ") + ACCEL_CROSSCHECK_SCRIPT + " check " +
                              dir.path().string() + " " + case_file + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  Outcome out{0, ""};
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) out.output += buffer;
  const int raw = pclose(pipe);
  out.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128;
  return out;
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

}  // namespace

TEST_CASE("GPT-2 LM logits agree with an independent PyTorch implementation",
          "[models][crosscheck]") {
  ScratchDir dir;
  GPT2Options options;
  options.config = tiny_config();
  options.config.activation_function = "gelu_new";
  options.seed = 5;
  GPT2LMHeadModel model(options);
  model.save_pretrained(dir.path().string());
  const auto [ids, mask] = padded_batch();
  const auto logits = model.forward(ids, mask);
  save_safetensors(dir.file("case.safetensors"),
                   {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits}});
  auto outcome = run_crosscheck(dir, dir.file("case.safetensors"));
  INFO(outcome.output);
  CHECK(outcome.status == 0);
  CHECK(outcome.output.find("crosscheck ok") != std::string::npos);

  // The check can fail: a perturbed expectation must be caught.
  save_safetensors(dir.file("wrong.safetensors"),
                   {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits + 1e-3}});
  outcome = run_crosscheck(dir, dir.file("wrong.safetensors"));
  INFO(outcome.output);
  CHECK(outcome.status == 1);
  CHECK(outcome.output.find("crosscheck FAILED") != std::string::npos);
}

TEST_CASE("GPT-2 sequence classification agrees with an independent PyTorch implementation",
          "[models][crosscheck]") {
  ScratchDir dir;
  GPT2Options options;
  options.config = tiny_config();
  options.config.activation_function = "gelu";
  options.seed = 8;
  GPT2ForSequenceClassification model(options);
  model.save_pretrained(dir.path().string());
  const auto [ids, mask] = padded_batch();
  const auto logits = model.forward(ids, mask);
  save_safetensors(dir.file("case.safetensors"),
                   {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits}});
  const auto outcome = run_crosscheck(dir, dir.file("case.safetensors"));
  INFO(outcome.output);
  CHECK(outcome.status == 0);
  CHECK(outcome.output.find("shape (3, 3)") != std::string::npos);
}
