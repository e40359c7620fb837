// Measures GPT-2 forward and greedy cached generation throughput for a randomly initialised
// model; scripts/bench-models.sh runs it next to the PyTorch eager implementation in
// scripts/crosscheck-gpt2.py with the same shapes and prints both.
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/models/gpt2.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <string>

using namespace accel::models;

namespace {

template <typename F>
double best_of(int repeats, F&& fn) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

int run(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--threads", "1"}, {"--dtype", "float32"},
                                             {"--batch", "1"},   {"--tokens", "128"},
                                             {"--prompt", "16"}, {"--new-tokens", "32"},
                                             {"--repeats", "3"}, {"--layers", "12"}};
  for (int i = 1; i < argc; i += 2) {
    if (!args.count(argv[i]) || i + 1 >= argc)
      throw accel::UsageError(std::string("unknown flag or missing value: ") + argv[i] +
                              "; flags: --threads --dtype --batch --tokens --prompt --new-tokens "
                              "--repeats --layers");
    args[argv[i]] = argv[i + 1];
  }
  auto number = [&](const std::string& flag) {
    const auto value = accel::text::parse_integer(args[flag]);
    if (!value || *value <= 0)
      throw accel::UsageError(flag + " must be a positive integer, got '" + args[flag] + "'");
    return static_cast<std::int64_t>(*value);
  };
  torch::set_num_threads(static_cast<int>(number("--threads")));
  GPT2Options options;  // GPT-2 small shapes, random weights
  options.config.n_layer = number("--layers");
  options.dtype = parse_dtype(args["--dtype"]);
  GPT2LMHeadModel model(options);
  const auto batch = number("--batch"), tokens = number("--tokens");
  const auto prompt_len = number("--prompt"), new_tokens = number("--new-tokens");
  const int repeats = static_cast<int>(number("--repeats"));

  torch::manual_seed(1);
  const auto ids = torch::randint(0, options.config.vocab_size, {batch, tokens}, torch::kLong);
  const auto mask = torch::ones_like(ids);
  const auto prompt = ids.narrow(1, 0, prompt_len);
  GenerationOptions greedy;
  greedy.max_new_tokens = new_tokens;
  greedy.stop_at_eos = false;

  model.forward(ids, mask);  // builds the weights and warms up
  const double forward_s = best_of(repeats, [&] { model.forward(ids, mask); });
  const double generate_s = best_of(repeats, [&] { model.generate(prompt, torch::ones_like(prompt), greedy); });
  std::printf("forward_tokens_per_s %.1f\n", batch * tokens / forward_s);
  std::printf("generate_tokens_per_s %.1f\n", batch * new_tokens / generate_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const accel::Error& e) {
    std::cerr << "bench-models: " << e.what() << "\n";
    return e.exit_code();
  }
}
