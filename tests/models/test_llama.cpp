// The Llama family (llama, mistral, qwen2, qwen3): config.json switches, and forward passes and
// greedy generation checked against scripts/crosscheck-llama.py, an independent PyTorch
// implementation run by Debian's /usr/bin/python3 on checkpoints it writes in HF layout.
#include "accel/core/error.h"
#include "accel/models/auto_model.h"
#include "accel/models/llama.h"
#include "accel/models/sequential.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

using namespace accel::models;
using accel::models::testing::CommandOutcome;
using accel::models::testing::random_options;
using accel::models::testing::run_command;
using accel::models::testing::tiny_llama;
using accel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

const std::string kScript = std::string("/usr/bin/python3 ") + ACCEL_LLAMA_REFERENCE_SCRIPT;

void make_checkpoint(const TempDir& dir, const std::string& shape, const std::string& extra = "") {
  const auto made = run_command(kScript + " make " + dir.root() + " " + shape + " " + extra);
  INFO(made.output);
  REQUIRE(made.status == 0);
}

// Three prompts, left-padded, of 9, 5 and 1 tokens.
std::pair<torch::Tensor, torch::Tensor> padded_batch(std::int64_t vocab) {
  torch::manual_seed(3);
  auto ids = torch::randint(3, vocab, {3, 9}, torch::kLong);
  auto mask = torch::ones({3, 9}, torch::kLong);
  mask[1].narrow(0, 0, 4).zero_();
  mask[2].narrow(0, 0, 8).zero_();
  ids.masked_fill_(mask.eq(0), 0);
  return {ids, mask};
}

std::vector<std::vector<std::int64_t>> rows_of(const torch::Tensor& ids, const torch::Tensor& mask) {
  std::vector<std::vector<std::int64_t>> rows;
  for (std::int64_t r = 0; r < ids.size(0); ++r) {
    const auto real = ids[r].masked_select(mask[r].ne(0));
    rows.emplace_back(real.data_ptr<std::int64_t>(), real.data_ptr<std::int64_t>() + real.numel());
  }
  return rows;
}

GenerationOptions greedy(std::int64_t tokens, bool cache) {
  GenerationOptions g;
  g.max_new_tokens = tokens;
  g.use_cache = cache;
  g.stop_at_eos = false;
  return g;
}

// Greedy tokens [rows, steps]: the batch at once, except with dynamic rope scaling, whose
// frequencies follow the longest row in the call (as in transformers), so each row runs alone
// and without a cache.
torch::Tensor greedy_tokens(LlamaForCausalLM& model, const torch::Tensor& ids, const torch::Tensor& mask,
                            std::int64_t steps) {
  std::vector<std::vector<std::int64_t>> tokens;
  if (model.config().rope_scaling.type == RopeScaling::Type::kDynamic) {
    for (const auto& row : rows_of(ids, mask))
      tokens.push_back(generate(model, {row}, greedy(steps, false)).new_tokens[0]);
  } else {
    tokens = generate(model, ids, mask, greedy(steps, true)).new_tokens;
  }
  auto out = torch::empty({ids.size(0), steps}, torch::kLong);
  for (std::int64_t r = 0; r < ids.size(0); ++r)
    out[r].copy_(torch::tensor(tokens[r], torch::kLong));
  return out;
}

CommandOutcome crosscheck(const TempDir& dir, double logit_offset = 0.0) {
  LlamaForCausalLM model(LlamaOptions::from_directory(dir.root()));
  const auto [ids, mask] = padded_batch(model.config().vocab_size);
  const auto logits = model.forward(ids, mask) + logit_offset;
  const auto tokens = greedy_tokens(model, ids, mask, 12);
  const auto case_file = dir.path("case.safetensors");
  save_safetensors(case_file,
                   {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits},
                    {"greedy_tokens", tokens}},
                   {.overwrite = true, .metadata = {}});
  return run_command(kScript + " check " + dir.root() + " " + case_file);
}

}  // namespace

TEST_CASE("Llama-family logits and greedy tokens agree with an independent PyTorch reference",
          "[models][crosscheck][llama]") {
  const auto shape = GENERATE(as<std::string>{}, "llama-mha", "llama-gqa-tied-llama3",
                              "llama-bias-linear", "llama-dynamic", "mistral-window", "qwen2-bias",
                              "qwen3-qknorm");
  TempDir dir;
  make_checkpoint(dir, shape);
  const auto outcome = crosscheck(dir);
  INFO(shape << ": " << outcome.output);
  CHECK(outcome.status == 0);
  CHECK_THAT(outcome.output, Contains("crosscheck ok") && Contains("greedy 3 x 12 tokens identical"));
}

TEST_CASE("Llama crosscheck catches a logit error of 1e-3", "[models][crosscheck][llama]") {
  TempDir dir;
  make_checkpoint(dir, "llama-mha");
  const auto outcome = crosscheck(dir, 1e-3);
  INFO(outcome.output);
  CHECK(outcome.status == 1);
  CHECK_THAT(outcome.output, Contains("crosscheck FAILED") && Contains("logits differ"));
}

TEST_CASE("Llama checkpoints stored as bf16 or fp16 and sharded load and agree with the reference",
          "[models][crosscheck][llama]") {
  const auto stored = GENERATE(as<std::string>{}, "bf16", "f16");
  TempDir dir;
  make_checkpoint(dir, "qwen3-qknorm", "--stored " + stored + " --shards 3");
  CHECK(std::filesystem::exists(dir.path("model.safetensors.index.json")));
  const auto outcome = crosscheck(dir);
  INFO(stored << ": " << outcome.output);
  CHECK(outcome.status == 0);
}

TEST_CASE("a pipeline stage of a sharded Llama checkpoint opens only the shards of its blocks",
          "[models][llama][checkpoint]") {
  TempDir dir;
  make_checkpoint(dir, "llama-mha", "--shards 4");
  std::ifstream index_file(dir.path("model.safetensors.index.json"));
  const auto index = nlohmann::json::parse(index_file);
  std::set<std::string> needed, all;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    all.insert(dir.path(shard.get<std::string>()));
    if (name.rfind("model.layers.1.", 0) == 0) needed.insert(dir.path(shard.get<std::string>()));
  }
  REQUIRE(needed.size() < all.size());

  const LlamaForCausalLM model(LlamaOptions::from_directory(dir.root()));
  CHECK(model.checkpoint()->opened_files().empty());
  for (const auto& spec : model.blocks())
    if (spec.name == "model.layers.1") spec.build();
  const auto opened = model.checkpoint()->opened_files();
  CHECK(std::set<std::string>(opened.begin(), opened.end()) == needed);
}

TEST_CASE("Llama blocks are named as in HF and run in sequence equal the whole model",
          "[models][llama]") {
  for (bool tied : {false, true}) {
    auto config = tiny_llama("qwen3");
    config.tie_word_embeddings = tied;
    LlamaForCausalLM model(random_options(config));
    std::vector<std::string> names;
    for (const auto& spec : model.blocks()) names.push_back(spec.name);
    CHECK(names == std::vector<std::string>{"model.embed_tokens", "model.layers.0", "model.layers.1",
                                            "model.layers.2", "lm_head"});
    const auto [ids, mask] = padded_batch(config.vocab_size);
    const SequentialBlocks sequential(model);
    const auto staged = sequential.forward({ids, mask})[0].to(torch::kFloat32);
    CHECK(torch::allclose(staged, model.forward(ids, mask), 1e-5, 1e-5));
  }
}

TEST_CASE("Llama batched left-padded generation equals one prompt at a time, cached or not",
          "[models][llama][generation]") {
  auto options = random_options(tiny_llama("mistral"));
  options.config.sliding_window = 4;
  options.config.initializer_range = 0.5;  // logits far apart, so greedy picks are stable
  LlamaForCausalLM model(options);
  const auto [ids, mask] = padded_batch(options.config.vocab_size);
  const auto batched = generate(model, ids, mask, greedy(10, true)).new_tokens;
  CHECK(generate(model, ids, mask, greedy(10, false)).new_tokens == batched);
  const auto rows = rows_of(ids, mask);
  for (std::size_t r = 0; r < rows.size(); ++r)
    CHECK(generate(model, {rows[r]}, greedy(10, true)).new_tokens[0] == batched[r]);
}

TEST_CASE("Llama in bfloat16 stays close to float32", "[models][llama]") {
  auto options = random_options(tiny_llama("qwen2"));
  LlamaForCausalLM fp32(options);
  options.dtype = torch::kBFloat16;
  LlamaForCausalLM bf16(options);
  const auto [ids, mask] = padded_batch(options.config.vocab_size);
  const auto expected = fp32.forward(ids, mask);
  const auto got = bf16.forward(ids, mask);
  CHECK(got.scalar_type() == torch::kFloat32);
  const auto real = mask.ne(0).unsqueeze(-1).expand_as(expected);
  const auto error = (got - expected).abs().masked_select(real).max().item<double>();
  const auto scale = expected.abs().masked_select(real).max().item<double>();
  INFO("max error " << error << " at logit scale " << scale);
  CHECK(error < 0.05 * scale);
}

TEST_CASE("Llama generation stops at any of the EOS ids", "[models][llama][generation]") {
  auto options = random_options(tiny_llama());
  options.config.initializer_range = 0.5;
  LlamaForCausalLM model(options);
  const std::vector<std::int64_t> prompt = {5, 9, 14};
  const auto free_run = generate(model, {prompt}, greedy(8, true)).new_tokens[0];
  // Declare the third generated token an EOS: generation must stop right after it.
  options.config.eos_token_ids = {60, free_run[2]};
  LlamaForCausalLM stopping(options);
  GenerationOptions g = greedy(8, true);
  g.stop_at_eos = true;
  const auto stopped = generate(stopping, {prompt}, g).new_tokens[0];
  const auto first_eos = std::find(free_run.begin(), free_run.end(), free_run[2]) - free_run.begin();
  CHECK(stopped == std::vector<std::int64_t>(free_run.begin(), free_run.begin() + first_eos + 1));
}

TEST_CASE("Llama config.json switches per model_type", "[models][llama][config]") {
  const auto qwen2 = LlamaConfig::from_json(
      R"({"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 8,
          "num_key_value_heads": 2, "eos_token_id": 151645, "use_sliding_window": false,
          "sliding_window": 4096})", "q2.json");
  CHECK(qwen2.qkv_bias);
  CHECK_FALSE(qwen2.o_bias);
  CHECK(qwen2.head_dim == 8);
  CHECK(qwen2.sliding_window == 0);
  CHECK(qwen2.eos_token_ids == std::vector<std::int64_t>{151645});

  const auto qwen3 = LlamaConfig::from_json(
      R"({"model_type": "qwen3", "hidden_size": 64, "num_attention_heads": 8,
          "num_key_value_heads": 4})", "q3.json");
  CHECK(qwen3.qk_norm);
  CHECK_FALSE(qwen3.qkv_bias);
  CHECK(qwen3.head_dim == 128);  // Qwen3's default, not hidden / heads

  const auto mistral = LlamaConfig::from_json(
      R"({"model_type": "mistral", "sliding_window": 4096, "eos_token_id": [2, 32000]})", "m.json");
  CHECK(mistral.sliding_window == 4096);
  CHECK(mistral.window_of_layer(0) == 4096);
  CHECK(mistral.num_key_value_heads == 32);
  CHECK(mistral.eos_token_ids == std::vector<std::int64_t>{2, 32000});

  const auto llama3 = LlamaConfig::from_json(
      R"({"model_type": "llama", "attention_bias": true, "rope_scaling": {"rope_type": "llama3",
          "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192}})", "l.json");
  CHECK(llama3.qkv_bias);
  CHECK(llama3.o_bias);
  CHECK(llama3.rope_scaling.type == RopeScaling::Type::kLlama3);
  CHECK(llama3.rope_scaling.original_max_position_embeddings == 8192);
}

TEST_CASE("bad Llama configs are refused naming the file, key and what is accepted",
          "[models][llama][config]") {
  REQUIRE_THROWS_WITH(LlamaConfig::from_json(R"({"model_type": "falcon"})", "c.json"),
                      Contains("c.json: model_type 'falcon' is not in the Llama family; accepted: "
                               "llama, mistral, qwen2, qwen3"));
  REQUIRE_THROWS_WITH(LlamaConfig::from_json(R"({"hidden_act": "gelu"})", "c.json"),
                      Contains("c.json: hidden_act 'gelu' is not supported; accepted: silu"));
  REQUIRE_THROWS_WITH(
      LlamaConfig::from_json(R"({"rope_scaling": {"type": "yarn", "factor": 4}})", "c.json"),
      Contains("rope_scaling type 'yarn' is not supported; accepted: default, linear, dynamic, llama3"));
  REQUIRE_THROWS_WITH(LlamaConfig::from_json(R"({"rope_scaling": {"type": "linear"}})", "c.json"),
                      Contains("rope_scaling of type 'linear' needs a 'factor'"));
  REQUIRE_THROWS_WITH(
      LlamaConfig::from_json(R"({"rope_scaling": {"rope_type": "llama3", "factor": 8}})", "c.json"),
      Contains("needs a positive 'original_max_position_embeddings'"));
  REQUIRE_THROWS_WITH(
      LlamaConfig::from_json(R"({"num_attention_heads": 6, "num_key_value_heads": 4})", "c.json"),
      Contains("num_attention_heads (6) must be a multiple of num_key_value_heads (4)"));
  REQUIRE_THROWS_WITH(LlamaConfig::from_json(R"({"hidden_size": "big"})", "c.json"),
                      Contains("c.json: key 'hidden_size' has value '\"big\"' of the wrong type"));
  REQUIRE_THROWS_WITH(LlamaConfig::from_json(R"({"model_type": "mistral", "sliding_window": -4})", "c.json"),
                      Contains("c.json: key 'sliding_window' must be positive or null, got -4"));
  REQUIRE_THROWS_WITH(LlamaConfig::from_json(R"({"pad_token_id": "none"})", "c.json"),
                      Contains("c.json: key 'pad_token_id' has value '\"none\"' of the wrong type"));
}

TEST_CASE("load_causal_lm picks the architecture from model_type", "[models][llama]") {
  TempDir dir;
  make_checkpoint(dir, "mistral-window");
  const auto loaded = load_causal_lm(dir.root());
  CHECK_THAT(loaded.model->describe(), Contains("mistral: 2 layers, hidden 32"));
  CHECK(loaded.model->eos_token_ids() == std::vector<std::int64_t>{2, 7});

  // generation_config.json's EOS wins over config.json's, as in transformers.
  std::ofstream(dir.path("generation_config.json")) << R"({"eos_token_id": [9, 10]})";
  CHECK(load_causal_lm(dir.root()).model->eos_token_ids() == std::vector<std::int64_t>{9, 10});

  std::ofstream(dir.path("config.json")) << R"({"model_type": "bert"})";
  REQUIRE_THROWS_WITH(load_causal_lm(dir.root()),
                      Contains("model_type 'bert' is not supported; accepted: gpt2, llama, mistral, "
                               "qwen2, qwen3"));
  std::filesystem::remove(dir.path("config.json"));
  REQUIRE_THROWS_WITH(load_causal_lm(dir.root()),
                      Contains("config.json") && Contains("cannot read config"));
}

TEST_CASE("Llama blocks run one by one with a cache equal the whole model", "[models][llama][cache]") {
  // mistral: a sliding window shorter than the sequence; qwen3: q/k norms; both grouped heads.
  for (const std::string type : {"mistral", "qwen3"}) {
    auto config = tiny_llama(type);
    if (type == "mistral") config.sliding_window = 4;
    LlamaForCausalLM model(random_options(config));
    const SequentialBlocks blocks(model);
    const auto [ids, mask] = padded_batch(config.vocab_size);
    KVCache staged, whole;
    for (const auto& [start, length] : std::vector<std::pair<int, int>>{{0, 6}, {6, 1}, {7, 2}}) {
      INFO(type << " tokens " << start << ".." << start + length);
      const auto step_ids = ids.narrow(1, start, length);
      const auto step_mask = mask.narrow(1, 0, start + length);
      const auto expected = model.forward(step_ids, step_mask, &whole);
      const auto got = blocks.forward_cached({step_ids, step_mask}, staged)[0].to(torch::kFloat32);
      // Rows still all padding have no meaningful output; compare the rows with a real token.
      const auto real = step_mask.narrow(1, start, length).ne(0);
      CHECK(torch::allclose(got.index({real}), expected.index({real}), 1e-5, 1e-5));
      CHECK(torch::allclose(expected.index({real}), model.forward(ids.narrow(1, 0, start + length),
                                                                  step_mask).narrow(1, start, length).index({real}),
                            1e-4, 1e-4));
    }
  }
}
