#include "accel/core/error.h"
#include "accel/models/gpt2.h"
#include "accel/models/llama.h"
#include "accel/models/sequential.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

using namespace accel::models;
using accel::models::testing::tiny_config;
using Catch::Matchers::Contains;

namespace {

GPT2LMHeadModel tiny_lm(torch::ScalarType dtype = torch::kFloat32) {
  GPT2Options o;
  o.config = tiny_config();
  o.seed = 21;
  o.dtype = dtype;
  return GPT2LMHeadModel(o);
}

const std::vector<std::vector<std::int64_t>> kPrompts = {
    {5, 17, 42, 8, 1, 66, 23}, {90}, {3, 3, 70, 12}};

GenerationOptions greedy(std::int64_t tokens, bool cache) {
  GenerationOptions g;
  g.max_new_tokens = tokens;
  g.use_cache = cache;
  g.stop_at_eos = false;
  return g;
}

}  // namespace

TEST_CASE("cached generation equals uncached generation", "[models][generation]") {
  auto model = tiny_lm();
  const auto cached = model.generate(kPrompts, greedy(12, true));
  const auto uncached = model.generate(kPrompts, greedy(12, false));
  CHECK(torch::equal(cached.sequences, uncached.sequences));
  CHECK(cached.new_tokens == uncached.new_tokens);
  CHECK(cached.new_tokens[0].size() == 12);
  CHECK(cached.sequences.sizes() == std::vector<std::int64_t>{3, 7 + 12});

  // Cached logits at each step equal a full recomputation.
  KVCache cache;
  const auto ids = torch::tensor(kPrompts[0], torch::kLong).unsqueeze(0);
  model.forward(ids.narrow(1, 0, 5), {}, &cache);
  const auto step = model.forward(ids.narrow(1, 5, 2), {}, &cache);
  CHECK(cache.length() == 7);
  CHECK(torch::allclose(step[0], model.forward(ids)[0].narrow(0, 5, 2), 1e-5, 1e-5));
}

TEST_CASE("batched left-padded generation equals one prompt at a time", "[models][generation]") {
  auto model = tiny_lm();
  for (bool cache : {true, false}) {
    const auto batched = model.generate(kPrompts, greedy(10, cache));
    for (std::size_t i = 0; i < kPrompts.size(); ++i)
      CHECK(model.generate({kPrompts[i]}, greedy(10, cache)).new_tokens[0] == batched.new_tokens[i]);
  }
}

TEST_CASE("sampling is seeded and its filters behave", "[models][generation]") {
  auto model = tiny_lm();
  GenerationOptions s = greedy(16, true);
  s.do_sample = true;
  s.seed = 4;
  const auto a = model.generate(kPrompts, s).new_tokens;
  CHECK(model.generate(kPrompts, s).new_tokens == a);
  s.use_cache = false;
  CHECK(model.generate(kPrompts, s).new_tokens == a);
  s.seed = 5;
  CHECK(model.generate(kPrompts, s).new_tokens != a);

  // top_k = 1 and a tiny top_p both leave only the most likely token: greedy.
  const auto greedy_tokens = model.generate(kPrompts, greedy(8, true)).new_tokens;
  auto k1 = greedy(8, true);
  k1.do_sample = true;
  k1.top_k = 1;
  CHECK(model.generate(kPrompts, k1).new_tokens == greedy_tokens);
  auto p0 = greedy(8, true);
  p0.do_sample = true;
  p0.top_p = 1e-6;
  CHECK(model.generate(kPrompts, p0).new_tokens == greedy_tokens);
}

TEST_CASE("top-k and top-p sample only from the tokens they keep", "[models][generation]") {
  auto model = tiny_lm();
  const auto prompt = torch::tensor(kPrompts[0], torch::kLong).unsqueeze(0);
  const auto probs = model.forward(prompt)[0][-1].softmax(0);
  const auto ranked = std::get<1>(probs.sort(0, /*descending=*/true));
  const std::set<std::int64_t> top3 = {ranked[0].item<std::int64_t>(), ranked[1].item<std::int64_t>(),
                                       ranked[2].item<std::int64_t>()};
  // The smallest nucleus holding top_p: the top-3 tokens when top_p lies inside their mass.
  const double top_p = (probs[ranked[0]] + probs[ranked[1]]).item<double>() + 1e-4;

  auto g = greedy(1, true);
  g.do_sample = true;
  std::set<std::int64_t> seen_k, seen_p;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    g.seed = seed;
    g.top_k = 3;
    g.top_p = 1;
    seen_k.insert(model.generate({kPrompts[0]}, g).new_tokens[0][0]);
    g.top_k = 0;
    g.top_p = top_p;
    seen_p.insert(model.generate({kPrompts[0]}, g).new_tokens[0][0]);
  }
  CHECK(seen_k == top3);
  CHECK(seen_p == top3);
}

TEST_CASE("generation stops a row at eos and pads it afterwards", "[models][generation]") {
  auto model = tiny_lm();
  const auto free_run = model.generate(kPrompts, greedy(6, true)).new_tokens;
  // Declare a token the second row generates the eos: that row stops at its first occurrence.
  const auto eos = free_run[1][2];
  const auto stop = std::find(free_run[1].begin(), free_run[1].end(), eos) - free_run[1].begin();
  GPT2Options o = model.options();
  o.config.eos_token_id = eos;
  GPT2LMHeadModel stopping(o);
  auto g = greedy(6, true);
  g.stop_at_eos = true;
  g.pad_token_id = 0;
  const auto out = stopping.generate(kPrompts, g);
  CHECK(out.new_tokens[1] == std::vector<std::int64_t>(free_run[1].begin(), free_run[1].begin() + stop + 1));
  const auto width = static_cast<std::int64_t>(kPrompts[0].size());
  if (out.sequences.size(1) > width + stop + 1) CHECK(out.sequences[1][-1].item<std::int64_t>() == 0);
}

TEST_CASE("bfloat16 generation runs on CPU", "[models][generation]") {
  auto model = tiny_lm(torch::kBFloat16);
  const auto out = model.generate(kPrompts, greedy(4, true));
  CHECK(out.new_tokens[2].size() == 4);
  CHECK(model.generate(kPrompts, greedy(4, false)).new_tokens == out.new_tokens);
}

TEST_CASE("generation rejects bad requests with the reason", "[models][generation][errors]") {
  auto model = tiny_lm();
  REQUIRE_THROWS_WITH(model.generate({{1, 2}, {}}, greedy(2, true)), Contains("prompt 1 is empty"));
  REQUIRE_THROWS_WITH(model.generate(std::vector<std::vector<std::int64_t>>{}, greedy(2, true)),
                      Contains("at least one prompt"));
  REQUIRE_THROWS_WITH(model.generate({std::vector<std::int64_t>(40, 1)}, greedy(9, true)),
                      Contains("40 tokens plus 9 new tokens exceeds the model's maximum sequence length 48"));
  REQUIRE_THROWS_WITH(model.generate({{1, 200}}, greedy(2, true)),
                      Contains("token id 200 is outside the vocabulary"));
  auto bad = greedy(2, true);
  bad.do_sample = true;
  bad.top_p = 0;
  REQUIRE_THROWS_WITH(model.generate(kPrompts, bad), Contains("top_p must be in (0, 1]"));
  bad.top_p = 1;
  bad.temperature = 0;
  REQUIRE_THROWS_WITH(model.generate(kPrompts, bad), Contains("temperature must be > 0"));
  bad.temperature = 1;
  bad.top_k = -1;
  REQUIRE_THROWS_WITH(model.generate(kPrompts, bad), Contains("top_k must be >= 0"));
  REQUIRE_THROWS_WITH(model.generate(torch::ones({1, 3}, torch::kLong), torch::zeros({1, 3}), greedy(1, true)),
                      Contains("at least one token with attention_mask 1"));
}

TEST_CASE("the key/value cache is written in place and grows only past its capacity",
          "[models][generation][cache]") {
  KVCache cache(6);
  const auto k = torch::arange(2 * 3 * 4 * 5, torch::kFloat32).view({2, 3, 4, 5});
  const auto v = -k;
  auto [keys, values] = cache.append(7, k, v);  // layer 7 alone, as a pipeline stage would hold
  CHECK(cache.length() == 4);
  CHECK(cache.length(7) == 4);
  CHECK(cache.length(0) == 0);
  CHECK(torch::equal(keys, k));
  const auto buffer = keys.data_ptr();
  std::tie(keys, values) = cache.append(7, k.narrow(2, 0, 2), v.narrow(2, 0, 2));
  CHECK(keys.data_ptr() == buffer);  // still the buffer allocated first: nothing was copied
  CHECK(torch::equal(keys, torch::cat({k, k.narrow(2, 0, 2)}, 2)));
  CHECK(torch::equal(values, torch::cat({v, v.narrow(2, 0, 2)}, 2)));
  std::tie(keys, values) = cache.append(7, k, v);  // 10 > 6: doubled, earlier tokens kept
  CHECK(keys.data_ptr() != buffer);
  CHECK(cache.length() == 10);
  CHECK(torch::equal(keys, torch::cat({k, k.narrow(2, 0, 2), k}, 2)));

  CHECK_THROWS_WITH(cache.append(7, k.narrow(0, 0, 1), v.narrow(0, 0, 1)),
                    Contains("layer 7's cache holds [2, 3, 10, 5] Float") && Contains("start a new one"));
  CHECK_THROWS_WITH(cache.append(7, k, v.narrow(2, 0, 1)), Contains("of one shape"));
  cache.clear();
  CHECK(cache.length() == 0);
}

TEST_CASE("a forward pass whose mask does not match the cache is refused", "[models][generation][cache][errors]") {
  auto model = tiny_lm();
  KVCache cache;
  const auto ids = torch::tensor(kPrompts[0], torch::kLong).unsqueeze(0);
  model.forward(ids, {}, &cache);
  CHECK_THROWS_WITH(model.forward(ids.narrow(1, 0, 1), torch::ones({1, 3}, torch::kLong), &cache),
                    Contains("attention_mask has shape [1, 3]") && Contains("[1, 8]"));
  const auto blocks = SequentialBlocks(model);
  KVCache other;
  blocks.forward_cached({ids, torch::ones_like(ids)}, other);
  CHECK_THROWS_WITH(blocks.forward_cached({ids.narrow(1, 0, 1), torch::ones({1, 9}, torch::kLong)}, other),
                    Contains("layer 0's cache holds 7 tokens but the attention mask puts 8 before the new ones"));
  CHECK_THROWS_WITH(blocks.forward_cached({ids.narrow(1, 0, 1)}, other),
                    Contains("block embeddings needs an attention_mask"));
}

TEST_CASE("GPT-2 blocks run one by one with a cache equal the whole model", "[models][generation][cache]") {
  auto model = tiny_lm();
  const SequentialBlocks blocks(model);
  // Left-padded rows, a prefill and then two single-token steps.
  const auto ids = torch::tensor({{96, 5, 17, 42, 8, 1}, {3, 3, 70, 12, 9, 4}}, torch::kLong);
  const auto mask = torch::tensor({{0, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}}, torch::kLong);
  KVCache staged, whole;
  for (const auto& [start, length] : std::vector<std::pair<int, int>>{{0, 4}, {4, 1}, {5, 1}}) {
    const auto step_ids = ids.narrow(1, start, length);
    const auto step_mask = mask.narrow(1, 0, start + length);
    const auto expected = model.forward(step_ids, step_mask, &whole);
    const auto got = blocks.forward_cached({step_ids, step_mask}, staged)[0].to(torch::kFloat32);
    CHECK(torch::allclose(got, expected, 1e-5, 1e-5));
  }
  CHECK(staged.length() == 6);
}

TEST_CASE("a one-row decode step (matrix-vector path) agrees with the same row inside a batch",
          "[models][generation][cache]") {
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    INFO(c10::toString(dtype));
    auto model = tiny_lm(dtype);
    const auto ids = torch::tensor(kPrompts[0], torch::kLong).unsqueeze(0);
    KVCache alone, paired;
    model.forward(ids.narrow(1, 0, 6), {}, &alone);
    model.forward(ids.narrow(1, 0, 6).repeat({2, 1}), {}, &paired);
    const auto one = model.forward(ids.narrow(1, 6, 1), {}, &alone);  // one row: gemv
    const auto two = model.forward(ids.narrow(1, 6, 1).repeat({2, 1}), {}, &paired);  // gemm
    const double tolerance = dtype == torch::kFloat32 ? 1e-5 : 3e-2;
    CHECK(torch::allclose(one[0], two[0], tolerance, tolerance));
    CHECK(torch::allclose(one[0], two[1], tolerance, tolerance));
  }
}

TEST_CASE("language model heads say they are position-wise and are (the classification head is not)",
          "[models][generation]") {
  GPT2Options classifier_options;
  classifier_options.config = tiny_config();
  classifier_options.config.num_labels = 3;
  classifier_options.seed = 5;
  auto llama_options = testing::random_options(testing::tiny_llama());
  const std::vector<std::pair<std::string, std::vector<BlockSpec>>> models = {
      {"gpt2 lm", tiny_lm().blocks()},
      {"gpt2 classifier", GPT2ForSequenceClassification(classifier_options).blocks()},
      {"llama", LlamaForCausalLM(llama_options).blocks()}};
  for (const auto& [name, specs] : models) {
    INFO(name);
    const auto head = specs.back().build();
    CHECK(head->positionwise() == (name != "gpt2 classifier"));
    if (!head->positionwise()) continue;
    const auto hidden = torch::randn({2, 5, tiny_config().n_embd});
    const auto mask = torch::ones({2, 5}, torch::kLong);
    const auto all = head->forward({hidden, mask})[0];
    const auto last = head->forward({hidden.narrow(1, 4, 1), mask})[0];
    CHECK(torch::allclose(last.select(1, 0), all.select(1, 4), 1e-5, 1e-5));
  }
}
