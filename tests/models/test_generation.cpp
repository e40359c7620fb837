#include "accel/core/error.h"
#include "accel/models/gpt2.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

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
