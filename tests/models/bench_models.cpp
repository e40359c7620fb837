// GPT-2 throughput against what this machine can do. For a randomly initialised model of GPT-2
// small's shapes it measures, in the same run: the memory read bandwidth (a STREAM-like sum over
// a buffer far larger than the caches), the matmul FLOP/s at the forward pass's shapes, and then
// forward, greedy generation and decode-step throughput, each printed beside its bound and the
// ratio achieved/bound. With --profile 1 it also prints where one decode step spends its time,
// operator by operator (the autograd profiler's self time); with --kernels 1, how fast each
// one-row kernel (lib/models/src/gemv.h) reads weights of both layouts, against the read
// bandwidth, and how fast the few-row kernels (rows_product.h) read and multiply at 8 and 32 rows;
// with --slots 1, the SlotDecoder. scripts/bench-models.sh runs it next to the PyTorch eager implementation in
// scripts/crosscheck-gpt2.py.
// --save-checkpoint DIR writes that seeded model (float32) as a checkpoint directory; --model-dir DIR
// measures generation on any checkpoint directory instead, as scripts/bench-llamacpp.sh does beside
// llama.cpp on the same weights.
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/models/auto_model.h"
#include "accel/models/gpt2.h"
#include "accel/models/slot_decoder.h"
#include "bench_support.h"
#include "gemv.h"
#include "rows_product.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <map>
#include <string>
#include <vector>

using namespace accel::models;
using accel::models::bench::best_of;

namespace {

// Bytes per second of reading a buffer much larger than the last-level cache, on the threads
// torch uses (a reduction is a pure streaming read).
double read_bandwidth(int repeats) {
  constexpr std::int64_t kBytes = std::int64_t{512} << 20;
  const auto buffer = torch::ones({kBytes / 4}, torch::kFloat32);
  buffer.sum();  // fault the pages in
  return static_cast<double>(kBytes) / best_of(repeats, [&] { buffer.sum(); });
}

// FLOP/s of an [m, k] x [k, n] matmul in `dtype`.
double matmul_flops(std::int64_t m, std::int64_t k, std::int64_t n, torch::ScalarType dtype, int repeats) {
  const auto a = torch::randn({m, k}).to(dtype), b = torch::randn({k, n}).to(dtype);
  torch::matmul(a, b);
  return 2.0 * static_cast<double>(m * k * n) / best_of(repeats, [&] { torch::matmul(a, b); });
}

void print_figure(const std::string& name, double achieved, double bound) {
  std::printf("%s %.1f\n%s_bound %.1f\n%s_of_bound %.2f\n", name.c_str(), achieved, name.c_str(), bound,
              name.c_str(), achieved / bound);
}

// Self time of each operator in one call of `step`, largest first; a child's time is counted
// under the child only, so the column sums to the step's operator time.
void print_profile(const std::function<void()>& step) {
  namespace profiler = torch::autograd::profiler;
  profiler::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  const auto began = std::chrono::steady_clock::now();
  step();
  const double wall_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - began).count();
  const auto threads = profiler::disableProfilerLegacy();
  struct Total { double self_us = 0; int calls = 0; };
  std::map<std::string, Total> totals;
  for (const auto& events : threads) {
    struct Open { const profiler::LegacyEvent* push; double children_us; };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kind() == profiler::EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == profiler::EventKind::PopRange && !stack.empty()) {
        const auto open = stack.back();
        stack.pop_back();
        const double elapsed = open.push->cpuElapsedUs(e);
        auto& total = totals[open.push->name()];
        total.self_us += elapsed - open.children_us;
        ++total.calls;
        if (!stack.empty()) stack.back().children_us += elapsed;
      }
    }
  }
  std::vector<std::pair<std::string, Total>> rows(totals.begin(), totals.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  double sum_us = 0;
  for (const auto& row : rows) sum_us += row.second.self_us;
  std::printf("profile_wall_us %.0f\nprofile_operator_us %.0f\n", wall_us, sum_us);
  for (const auto& [name, total] : rows)
    if (total.self_us >= 0.005 * sum_us)
      std::printf("profile_op %s calls %d self_us %.0f share %.3f\n", name.c_str(), total.calls, total.self_us,
                  total.self_us / sum_us);
}

struct Shape {
  std::int64_t batch, tokens, prompt, new_tokens;
  int repeats;
};

// Greedy generation from `prompt` [batch, prompt tokens], timed as generate(1) (the prefill
// alone) and generate(new_tokens), best of the repeats; each further token is one decode step.
// Prints the figures and returns the seconds of one decode step.
double measure_generation(CausalLM& model, const torch::Tensor& prompt, const Shape& s) {
  const auto prompt_mask = torch::ones_like(prompt);
  auto greedy = [&](std::int64_t tokens) {
    GenerationOptions options;
    options.max_new_tokens = tokens;
    options.stop_at_eos = false;
    return best_of(s.repeats, [&] { generate(model, prompt, prompt_mask, options); });
  };
  const double prefill_s = greedy(1), generate_s = greedy(s.new_tokens);
  std::printf("generate_tokens_per_s %.1f\nprefill_ms %.1f\n", s.batch * s.new_tokens / generate_s,
              prefill_s * 1e3);
  return (generate_s - prefill_s) / static_cast<double>(s.new_tokens - 1);
}

// Bytes a decode step must read: every weight once (the tied lm_head reads wte in full; the
// position table only one row) and the cached keys and values at the average context length.
double decode_bytes(GPT2LMHeadModel& model, const Shape& s, torch::ScalarType dtype) {
  double bytes = 0;
  for (const auto& [name, tensor] : model.state_dict())
    if (name.find("wpe") == std::string::npos) bytes += static_cast<double>(tensor.nbytes());
  const auto& c = model.config();
  const double context = static_cast<double>(s.prompt) + static_cast<double>(s.new_tokens) / 2;
  return bytes + 2.0 * static_cast<double>(c.n_layer * c.n_embd * s.batch) * context *
                     static_cast<double>(c10::elementSize(dtype));
}

// Multiply-adds per token in the matmuls: the weights once, plus attention over `context` keys.
double flops_per_token(const GPT2Config& c, double context) {
  const double d = static_cast<double>(c.n_embd), inner = static_cast<double>(c.inner_dim());
  const double layer = d * 3 * d + d * d + 2 * d * inner + 2 * d * context;
  return 2.0 * (static_cast<double>(c.n_layer) * layer + d * static_cast<double>(c.vocab_size));
}

void run_benchmarks(GPT2LMHeadModel& model, const Shape& s, torch::ScalarType dtype, bool profile) {
  const auto& c = model.config();
  const double bandwidth = read_bandwidth(s.repeats);
  // The compute bound is the matmul rate at the forward pass's shape (many rows); the rate at
  // a decode step's rows is printed to show how far below it few rows run.
  const double gemm = matmul_flops(s.batch * s.tokens, c.n_embd, c.inner_dim(), dtype, s.repeats);
  const double step_gemm = matmul_flops(s.batch, c.n_embd, c.inner_dim(), dtype, s.repeats);
  std::printf("read_bandwidth_gb_per_s %.2f\nmatmul_gflop_per_s %.2f\ndecode_rows_matmul_gflop_per_s %.2f\n",
              bandwidth / 1e9, gemm / 1e9, step_gemm / 1e9);

  torch::manual_seed(1);
  const auto ids = torch::randint(0, c.vocab_size, {s.batch, s.tokens}, torch::kLong);
  const auto mask = torch::ones_like(ids);
  model.forward(ids, mask);  // builds the weights and warms up
  const double forward_s = best_of(s.repeats, [&] { model.forward(ids, mask); });
  print_figure("forward_tokens_per_s", s.batch * s.tokens / forward_s,
               gemm / flops_per_token(c, static_cast<double>(s.tokens) / 2));

  const auto prompt = ids.narrow(1, 0, s.prompt);
  const auto prompt_mask = torch::ones_like(prompt);
  const double decode_s = measure_generation(model, prompt, s);
  // A decode step is bound by reading the weights or by its matmuls, whichever takes longer.
  const double context = static_cast<double>(s.prompt) + static_cast<double>(s.new_tokens) / 2;
  const double step_bound_s = std::max(decode_bytes(model, s, dtype) / bandwidth,
                                       static_cast<double>(s.batch) * flops_per_token(c, context) / gemm);
  print_figure("decode_tokens_per_s", s.batch / decode_s, s.batch / step_bound_s);

  if (!profile) return;
  KVCache cache;
  auto step_ids = prompt;
  auto step_mask = prompt_mask;
  auto next = model.next_token_logits(step_ids, step_mask, &cache).argmax(1, true);
  auto decode_step = [&] {
    step_mask = torch::cat({step_mask, torch::ones_like(next)}, 1);
    next = model.next_token_logits(next, step_mask, &cache).argmax(1, true);
  };
  decode_step();  // one unprofiled step, so allocator caches are warm
  print_profile(decode_step);
}

// Mixed-length prefill, 8 prompts of 8 tokens beside one of 250 against 9 of 250: padded to the
// longest as one batch by generate() (max_new_tokens 1); each prompt alone through
// next_token_logits() (the general path: BLAS products); each alone into a slot; all nine in one
// SlotDecoder step (the slot decoder's products: a row's sums in a fixed order).
void print_mixed_prefill(GPT2LMHeadModel& model, int repeats) {
  const auto vocab = model.config().vocab_size;
  auto prompt_of = [&](std::int64_t length, std::uint64_t seed) {
    const auto ids = torch::randint(0, vocab, {length}, at::make_generator<at::CPUGeneratorImpl>(seed), torch::kLong);
    return std::vector<std::int64_t>(ids.data_ptr<std::int64_t>(), ids.data_ptr<std::int64_t>() + length);
  };
  std::vector<std::vector<std::int64_t>> mixed, long_ones;
  for (std::uint64_t p = 0; p < 9; ++p) {
    mixed.push_back(prompt_of(p == 8 ? 250 : 8, p));
    long_ones.push_back(prompt_of(250, 100 + p));
  }
  GenerationOptions options;
  options.max_new_tokens = 1;
  using Batch = std::vector<std::vector<std::int64_t>>;
  auto padded_s = [&](const Batch& batch) { return best_of(repeats, [&] { model.generate(batch, options); }); };
  auto general_s = [&](const Batch& batch) {
    return best_of(repeats, [&] {
      for (const auto& prompt : batch) {
        const auto ids = torch::tensor(prompt, torch::kLong).unsqueeze(0);
        KVCache cache(ids.size(1));
        model.next_token_logits(ids, torch::ones_like(ids), &cache);
      }
    });
  };
  auto slots_s = [&](const Batch& batch, bool one_step) {
    auto decoder = make_slot_decoder(model, 9, 256);
    std::vector<SlotTokens> all;
    for (int p = 0; p < 9; ++p) all.push_back({p, batch[static_cast<std::size_t>(p)]});
    return best_of(repeats, [&] {
      if (one_step) decoder->step(all);
      else
        for (const auto& input : all) decoder->step({input});
      for (int p = 0; p < 9; ++p) decoder->release(p);
    });
  };
  for (const auto& [name, batch] : {std::pair{"mixed", &mixed}, std::pair{"long", &long_ones}})
    std::printf("%s_prefill_padded_ms %.1f\n%s_prefill_alone_general_ms %.1f\n%s_prefill_slots_each_ms %.1f\n"
                "%s_prefill_slots_one_step_ms %.1f\n",
                name, padded_s(*batch) * 1e3, name, general_s(*batch) * 1e3, name, slots_s(*batch, false) * 1e3, name,
                slots_s(*batch, true) * 1e3);
}

// The SlotDecoder (accel/models/slot_decoder.h) as continuous batching drives it, against the
// same bound as decode_tokens_per_s, with the bandwidth and matmul rate measured in this run:
// `batch` slots prefilled with prompts of s.prompt tokens, then s.new_tokens - 1 steps over all
// of them (best of s.repeats, each on fresh slots). Beside it, in the same run, the old way: the
// decode steps of generate() on the same prompts as one left-padded batch. Then the mixed-length
// prefill (8 prompts of 8 tokens beside one of 250, against 9 of 250) through both with --mixed 1,
// and with --profile 1 the operators of one SlotDecoder step.
void run_slot_benchmarks(GPT2LMHeadModel& model, const Shape& s, torch::ScalarType dtype, bool mixed, bool profile) {
  const auto& c = model.config();
  const double bandwidth = read_bandwidth(s.repeats);
  const double gemm = matmul_flops(s.batch * s.tokens, c.n_embd, c.inner_dim(), dtype, s.repeats);
  std::printf("read_bandwidth_gb_per_s %.2f\nmatmul_gflop_per_s %.2f\n", bandwidth / 1e9, gemm / 1e9);
  torch::manual_seed(1);
  const auto ids = torch::randint(0, c.vocab_size, {s.batch, s.prompt}, torch::kLong);
  std::vector<std::vector<std::int64_t>> prompts;
  for (std::int64_t r = 0; r < s.batch; ++r) {
    const auto row = ids[r].contiguous();
    prompts.emplace_back(row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + s.prompt);
  }
  const auto capacity = s.prompt + s.new_tokens;
  std::vector<int> slots;
  for (int r = 0; r < static_cast<int>(s.batch); ++r) slots.push_back(r);
  std::unique_ptr<SlotDecoder> decoder;
  std::vector<std::int64_t> tokens;
  auto fill = [&] {
    decoder = make_slot_decoder(model, static_cast<int>(s.batch), capacity);
    tokens.clear();
    for (const auto slot : slots) tokens.push_back(decoder->prefill(slot, prompts[static_cast<std::size_t>(slot)]).argmax().item<std::int64_t>());
  };
  auto step = [&] {
    const auto next = decoder->decode(slots, tokens).argmax(1).contiguous();
    tokens.assign(next.data_ptr<std::int64_t>(), next.data_ptr<std::int64_t>() + next.numel());
  };
  double steps_s = std::numeric_limits<double>::infinity();
  for (int repeat = 0; repeat < s.repeats; ++repeat) {
    fill();
    steps_s = std::min(steps_s, best_of(1, [&] { for (std::int64_t t = 1; t < s.new_tokens; ++t) step(); }));
  }
  const double step_s = steps_s / static_cast<double>(s.new_tokens - 1);
  const double context = static_cast<double>(s.prompt) + static_cast<double>(s.new_tokens) / 2;
  const double step_bound_s = std::max(decode_bytes(model, s, dtype) / bandwidth,
                                       static_cast<double>(s.batch) * flops_per_token(c, context) / gemm);
  print_figure("slot_decode_tokens_per_s", static_cast<double>(s.batch) / step_s, static_cast<double>(s.batch) / step_bound_s);
  GenerationOptions options;
  options.stop_at_eos = false;
  auto generate_s = [&](const std::vector<std::vector<std::int64_t>>& batch, std::int64_t new_tokens) {
    options.max_new_tokens = new_tokens;
    return best_of(s.repeats, [&] { model.generate(batch, options); });
  };
  const double padded_step_s = (generate_s(prompts, s.new_tokens) - generate_s(prompts, 1)) /
                               static_cast<double>(s.new_tokens - 1);
  std::printf("batched_generate_decode_tokens_per_s %.1f\nslot_over_batched_generate %.2f\n",
              static_cast<double>(s.batch) / padded_step_s, padded_step_s / step_s);

  if (mixed) print_mixed_prefill(model, s.repeats);
  if (!profile) return;
  fill();
  step();  // one unprofiled step, so allocator caches are warm
  print_profile(step);
}

// A checkpoint directory's model (any family load_causal_lm reads) at `dtype`: the generation
// figures (no bounds), and row 0's prompt and greedy tokens, so that another implementation can
// be shown to compute the same thing (scripts/bench-llamacpp.sh runs llama.cpp on them). Row r's
// prompt is row 0's rotated left by r, as the llama.cpp driver builds its rows.
void run_checkpoint(const std::string& dir, const Shape& s, torch::ScalarType dtype) {
  const auto model = load_causal_lm(dir, {dtype, torch::kCPU}).model;
  const auto one = torch::ones({1, 1}, torch::kLong);
  const std::int64_t vocab = model->next_token_logits(one, one, nullptr).size(-1);
  torch::manual_seed(1);
  const auto first = torch::randint(0, vocab, {s.prompt}, torch::kLong);
  std::vector<torch::Tensor> rows;
  for (std::int64_t r = 0; r < s.batch; ++r) rows.push_back(torch::roll(first, -r));
  const auto prompt = torch::stack(rows);
  const double decode_s = measure_generation(*model, prompt, s);
  std::printf("decode_tokens_per_s %.1f\n", static_cast<double>(s.batch) / decode_s);
  GenerationOptions options;
  options.max_new_tokens = s.new_tokens;
  options.stop_at_eos = false;
  const auto generation = generate(*model, prompt, torch::ones_like(prompt), options);
  auto print_ids = [](const char* key, const std::vector<std::int64_t>& ids) {
    std::printf("%s", key);
    for (const auto id : ids) std::printf(" %lld", static_cast<long long>(id));
    std::printf("\n");
  };
  print_ids("prompt_ids", std::vector<std::int64_t>(first.data_ptr<std::int64_t>(),
                                                    first.data_ptr<std::int64_t>() + s.prompt));
  print_ids("greedy_ids", generation.new_tokens.at(0));
}

// Bytes per second each one-row kernel this CPU runs reads, over 40 weights of a GPT-2 MLP
// matrix's size ([3072, 768], 377 MB in float32: far beyond the caches, as in a decode step),
// stored [out, in] and [in, out], beside the read bandwidth and torch::mv's rate (float32).
void print_kernels(torch::ScalarType dtype, int repeats) {
  const double bandwidth = read_bandwidth(repeats);
  c10::InferenceMode inference;
  std::vector<torch::Tensor> out_in, in_out;
  for (int i = 0; i < 40; ++i) {
    out_in.push_back(torch::randn({3072, 768}).to(dtype));
    in_out.push_back(torch::randn({768, 3072}).to(dtype).t());
  }
  const auto x = torch::randn({1, 768}).to(dtype);
  const double bytes = 40.0 * static_cast<double>(out_in[0].nbytes());
  auto rate = [&](const std::string& name, const std::function<void(const torch::Tensor&)>& product,
                  const std::vector<torch::Tensor>& weights) {
    const double seconds = best_of(repeats, [&] { for (const auto& w : weights) product(w); });
    std::printf("kernel %s gb_per_s %.1f of_bandwidth %.2f\n", name.c_str(), bytes / seconds / 1e9,
                bytes / seconds / bandwidth);
  };
  std::printf("read_bandwidth_gb_per_s %.2f\nmatmul_gflop_per_s %.2f\n", bandwidth / 1e9,
              matmul_flops(128, 768, 3072, dtype, repeats) / 1e9);
  for (const auto& kernel : accel::models::detail::gemv_kernels()) {
    auto product = [&](const torch::Tensor& w) { accel::models::detail::gemv(x, w, {}, kernel); };
    rate(std::string(kernel.name) + "_out_in", product, out_in);
    rate(std::string(kernel.name) + "_in_out", product, in_out);
  }
  // The few-row kernels (rows_product.h) at a decode step's rows: weights read, and multiply-adds done.
  for (const auto rows : {std::int64_t{8}, std::int64_t{32}}) {
    const auto xs = torch::randn({rows, 768}).to(dtype);
    for (const auto& kernel : accel::models::detail::rows_kernels()) {
      auto product = [&](const torch::Tensor& w) { accel::models::detail::rows_product(xs, w, {}, kernel); };
      for (const auto& [layout, weights] : {std::pair{"out_in", &out_in}, std::pair{"in_out", &in_out}}) {
        const double seconds = best_of(repeats, [&] { for (const auto& w : *weights) product(w); });
        std::printf("rows_kernel %s_%s rows %lld gb_per_s %.1f of_bandwidth %.2f gflop_per_s %.1f\n", kernel.name,
                    layout, static_cast<long long>(rows), bytes / seconds / 1e9, bytes / seconds / bandwidth,
                    2.0 * static_cast<double>(rows) * 40 * 3072 * 768 / seconds / 1e9);
      }
    }
  }
  if (dtype == torch::kFloat32) {
    auto product = [&](const torch::Tensor& w) { torch::mv(w, x[0]); };
    rate("torch_mv_out_in", product, out_in);
    rate("torch_mv_in_out", product, in_out);
  }
}

int run(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--threads", "1"}, {"--dtype", "float32"},  {"--batch", "1"},
                                             {"--tokens", "128"}, {"--prompt", "16"},     {"--new-tokens", "32"},
                                             {"--repeats", "3"},  {"--layers", "12"},     {"--profile", "0"},
                                             {"--kernels", "0"},  {"--slots", "0"},      {"--mixed", "0"},
                                             {"--clock", "wall"},  {"--model-dir", ""},  {"--save-checkpoint", ""}};
  for (int i = 1; i < argc; i += 2) {
    if (!args.count(argv[i]) || i + 1 >= argc)
      throw accel::UsageError(std::string("unknown flag or missing value: ") + argv[i] +
                              "; flags: --threads --dtype --batch --tokens --prompt --new-tokens "
                              "--repeats --layers --profile (0 or 1) --kernels (0 or 1) --slots (0 or 1) "
                              "--mixed (0 or 1, with --slots) --clock (wall or cpu) --model-dir DIR --save-checkpoint DIR");
    args[argv[i]] = argv[i + 1];
  }
  auto number = [&](const std::string& flag, std::int64_t lowest = 1) {
    const auto value = accel::text::parse_integer(args[flag]);
    if (!value || *value < lowest)
      throw accel::UsageError(flag + " must be an integer >= " + std::to_string(lowest) + ", got '" + args[flag] + "'");
    return static_cast<std::int64_t>(*value);
  };
  torch::set_num_threads(static_cast<int>(number("--threads")));
  if (args["--clock"] != "wall" && args["--clock"] != "cpu")
    throw accel::UsageError("--clock must be wall or cpu, got '" + args["--clock"] + "'");
  accel::models::bench::timing() = {args["--clock"] == "cpu" ? accel::models::bench::Timing::Clock::kCpuPerThread
                                                              : accel::models::bench::Timing::Clock::kWall,
                                    torch::get_num_threads()};
  GPT2Options options;  // GPT-2 small shapes, random weights
  options.config.n_layer = number("--layers");
  options.dtype = parse_dtype(args["--dtype"]);
  if (number("--kernels", 0) != 0) {
    std::printf("threads %d\ndtype %s\n", torch::get_num_threads(), c10::toString(options.dtype));
    print_kernels(options.dtype, static_cast<int>(number("--repeats")));
    return 0;
  }
  if (!args["--save-checkpoint"].empty()) {  // the seeded model the runs without --model-dir measure
    GPT2LMHeadModel(options.config).save_pretrained(args["--save-checkpoint"]);
    std::printf("saved %s\n", args["--save-checkpoint"].c_str());
    return 0;
  }
  const Shape shape{number("--batch"), number("--tokens"), number("--prompt"), number("--new-tokens", 2),
                    static_cast<int>(number("--repeats"))};
  if (shape.prompt > shape.tokens)
    throw accel::UsageError("--prompt " + std::to_string(shape.prompt) + " is longer than --tokens " +
                            std::to_string(shape.tokens) + " (the prompt is the first tokens of the forward input)");
  std::printf("threads %d\ndtype %s\n", torch::get_num_threads(), c10::toString(options.dtype));
  if (!args["--model-dir"].empty()) {
    run_checkpoint(args["--model-dir"], shape, options.dtype);
    return 0;
  }
  GPT2LMHeadModel model(options);
  if (number("--slots", 0) != 0)
    run_slot_benchmarks(model, shape, options.dtype, number("--mixed", 0) != 0, number("--profile", 0) != 0);
  else run_benchmarks(model, shape, options.dtype, number("--profile", 0) != 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return accel::models::bench::guarded_main("bench-models", argc, argv, run); }
