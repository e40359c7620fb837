// Our half of gpu-check's GPT-2 logits anchor (scripts/gpu-check.sh); transformers computes the
// other half from the same safetensors and the same input ids.
//   gpt2_logits random CHECKPOINT_DIR LAYERS EMBD HEADS
//       a seeded random GPT-2 checkpoint, for runs where transformers is not there to make one
//   gpt2_logits run CHECKPOINT_DIR OUT.safetensors DEVICE DTYPE BATCH SEQ
//       input_ids [BATCH,SEQ] (seeded) and their logits [BATCH,SEQ,vocab] (float32) into OUT
#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/models/auto_model.h"
#include "accel/models/gpt2.h"
#include "accel/models/safetensors.h"

namespace {

using accel::models::GPT2LMHeadModel;
using accel::models::GPT2Options;

int positive(const std::string& name, const std::string& value) {
  const auto parsed = accel::text::parse_integer(value);
  if (!parsed || *parsed < 1 || *parsed > 1'000'000)
    throw accel::UsageError(name + " must be a whole number from 1 to 1000000, got " + accel::text::quote(value));
  return static_cast<int>(*parsed);
}

void write_random(const std::vector<std::string>& args) {
  GPT2Options options;
  options.config.n_layer = positive("LAYERS", args.at(1));
  options.config.n_embd = positive("EMBD", args.at(2));
  options.config.n_head = positive("HEADS", args.at(3));
  options.seed = 7;
  GPT2LMHeadModel(options).save_pretrained(args.at(0), /*overwrite=*/true);
  std::cout << "random GPT-2 checkpoint in " << args.at(0) << "\n";
}

void write_logits(const std::vector<std::string>& args) {
  auto options = GPT2Options::from_directory(args.at(0));
  options.device = torch::Device(args.at(2));
  options.dtype = accel::models::parse_dtype(args.at(3));
  GPT2LMHeadModel model(options);
  const auto batch = positive("BATCH", args.at(4));
  const auto seq = positive("SEQ", args.at(5));
  auto generator = at::detail::createCPUGenerator(11);
  const auto ids = torch::randint(0, options.config.vocab_size, {batch, seq}, generator, torch::kInt64);
  const auto mask = torch::ones({batch, seq}, torch::kInt64);
  torch::NoGradGuard no_grad;
  const auto logits = model.forward(ids.to(options.device), mask.to(options.device)).to(torch::kCPU, torch::kFloat32);
  accel::models::save_safetensors(args.at(1), {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits}},
                                  {.overwrite = true, .metadata = {{"device", args.at(2)}, {"dtype", args.at(3)}}});
  std::cout << "logits " << logits.sizes() << " on " << args.at(2) << " in " << args.at(3) << " -> " << args.at(1) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
  const std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "random" && args.size() == 4) {
      write_random(args);
    } else if (command == "run" && args.size() == 6) {
      write_logits(args);
    } else {
      std::cerr << "usage: gpt2_logits random CHECKPOINT_DIR LAYERS EMBD HEADS\n"
                   "       gpt2_logits run CHECKPOINT_DIR OUT.safetensors DEVICE DTYPE BATCH SEQ\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << "gpt2_logits: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
