// The SlotDecoder (accel/models/slot_decoder.h): sequences in slots of their own, decoded side by
// side. Checked against generate() on each prompt alone, bitwise against the same row decoded
// alone, across release and refill, and for every refusal its header names.
#include "accel/core/error.h"
#include "accel/models/gpt2.h"
#include "accel/models/llama.h"
#include "accel/models/slot_decoder.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <functional>
#include <memory>

using namespace accel::models;
using Catch::Matchers::Contains;

namespace {

// A tiny seeded model of each family the decoder serves (as the family's own tests build them).
struct Family {
  const char* name;
  std::function<std::unique_ptr<CausalLM>(torch::ScalarType)> make;
};

// A CausalLM the decoder does not know (each call forwarded to a GPT-2): served row by row.
class Unknown : public CausalLM {
 public:
  explicit Unknown(GPT2Options options) : model_(std::move(options)) {}
  torch::Tensor next_token_logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  KVCache* cache) override {
    return model_.next_token_logits(input_ids, attention_mask, cache);
  }
  std::optional<std::int64_t> max_positions() const override { return model_.max_positions(); }
  std::vector<std::int64_t> eos_token_ids() const override { return model_.eos_token_ids(); }
  std::string describe() const override { return "unknown"; }

 private:
  GPT2LMHeadModel model_;
};

GPT2Options gpt2_options(torch::ScalarType dtype) {
  GPT2Options o;
  o.config = testing::tiny_config();
  o.seed = 21;
  o.dtype = dtype;
  return o;
}

std::vector<Family> families() {
  return {{"gpt2",
           [](torch::ScalarType dtype) {
             return std::unique_ptr<CausalLM>(std::make_unique<GPT2LMHeadModel>(gpt2_options(dtype)));
           }},
          {"another CausalLM",
           [](torch::ScalarType dtype) { return std::unique_ptr<CausalLM>(std::make_unique<Unknown>(gpt2_options(dtype))); }},
          {"llama", [](torch::ScalarType dtype) {
             auto o = testing::random_options(testing::tiny_llama());
             o.dtype = dtype;
             return std::unique_ptr<CausalLM>(std::make_unique<LlamaForCausalLM>(o));
           }}};
}

// Prompts of different lengths, every id valid in both tiny vocabularies (61 and 97 entries).
const std::vector<std::vector<std::int64_t>> kPrompts = {
    {5, 17, 42, 8, 1, 56, 23}, {40}, {3, 3, 50, 12}, {7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27},
    {60, 0}, {31, 32, 33}, {44, 4, 44, 4, 44}, {12, 24, 36, 48, 59, 1, 2, 3, 4}};

std::int64_t greedy(const torch::Tensor& logits) { return logits.argmax(-1).item<std::int64_t>(); }

GenerationOptions greedy_options(std::int64_t tokens) {
  GenerationOptions g;
  g.max_new_tokens = tokens;
  g.stop_at_eos = false;
  return g;
}

// Greedy tokens for every prompt, all slots busy and decoded in one step each time.
std::vector<std::vector<std::int64_t>> decode_together(SlotDecoder& decoder,
                                                       const std::vector<std::vector<std::int64_t>>& prompts,
                                                       std::int64_t steps) {
  std::vector<std::vector<std::int64_t>> tokens(prompts.size());
  std::vector<int> slots;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    tokens[i].push_back(greedy(decoder.prefill(static_cast<int>(i), prompts[i])));
    slots.push_back(static_cast<int>(i));
  }
  for (std::int64_t step = 1; step < steps; ++step) {
    std::vector<std::int64_t> last;
    for (const auto& row : tokens) last.push_back(row.back());
    const auto logits = decoder.decode(slots, last);
    REQUIRE(logits.sizes() == torch::IntArrayRef({static_cast<std::int64_t>(slots.size()), logits.size(1)}));
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i].push_back(greedy(logits[static_cast<std::int64_t>(i)]));
  }
  return tokens;
}

// Runs `check` on a tiny model of every family, in float32 and in bfloat16.
template <class Check>
void for_each_model(Check check) {
  for (const auto& family : families())
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      INFO(family.name << " " << c10::toString(dtype));
      const auto model = family.make(dtype);
      check(family, *model);
    }
}

}  // namespace

TEST_CASE("slot decoder: prefill and decode give generate()'s greedy tokens for each prompt alone",
          "[models][slots]") {
  for_each_model([&](const Family&, CausalLM& model) {
    constexpr std::int64_t kSteps = 10;
    auto decoder = make_slot_decoder(model, static_cast<int>(kPrompts.size()), 24);
    const auto together = decode_together(*decoder, kPrompts, kSteps);
    for (std::size_t i = 0; i < kPrompts.size(); ++i) {
      CHECK(decoder->length(static_cast<int>(i)) == static_cast<std::int64_t>(kPrompts[i].size()) + kSteps - 1);
      CHECK(together[i] == generate(model, {kPrompts[i]}, greedy_options(kSteps)).new_tokens[0]);
    }
  });
}

TEST_CASE("slot decoder: a row's logits are bitwise the same alone or beside 1..7 rows of other lengths",
          "[models][slots]") {
  for_each_model([&](const Family&, CausalLM& model) {
    const auto& mine = kPrompts[0];
    auto alone = make_slot_decoder(model, 1, 32);
    std::vector<torch::Tensor> expected{alone->prefill(0, mine)};
    for (int step = 0; step < 6; ++step) expected.push_back(alone->decode({0}, {greedy(expected.back())})[0]);
    for (int others = 1; others <= 7; ++others) {
      INFO(others << " other rows");
      // The row sits in the middle slot; the other slots hold prompts of other lengths.
      auto decoder = make_slot_decoder(model, others + 1, 32);
      const int my_slot = (others + 1) / 2;
      std::vector<int> slots;
      std::vector<std::int64_t> tokens;
      for (int s = 0, other = 1; s <= others; ++s) {
        const auto& prompt = s == my_slot ? mine : kPrompts[static_cast<std::size_t>(other++)];
        const auto logits = decoder->prefill(s, prompt);
        if (s == my_slot) CHECK(torch::equal(logits, expected[0]));
        slots.push_back(s);
        tokens.push_back(greedy(logits));
      }
      for (std::size_t step = 1; step < expected.size(); ++step) {
        const auto logits = decoder->decode(slots, tokens);
        CHECK(torch::equal(logits[my_slot], expected[step]));
        for (std::size_t r = 0; r < slots.size(); ++r) tokens[r] = greedy(logits[static_cast<std::int64_t>(r)]);
      }
    }
  });
}

TEST_CASE("slot decoder: releasing and refilling a slot leaves the other slots' logits unchanged",
          "[models][slots]") {
  for (const auto& family : families()) {
    INFO(family.name);
    auto model = family.make(torch::kFloat32);
    const std::vector<std::vector<std::int64_t>> prompts = {kPrompts[0], kPrompts[1], kPrompts[3]};
    auto undisturbed = make_slot_decoder(*model, 3, 32);
    auto refilled = make_slot_decoder(*model, 3, 32);
    std::vector<std::int64_t> tokens;
    for (int s = 0; s < 3; ++s) {
      const auto logits = undisturbed->prefill(s, prompts[static_cast<std::size_t>(s)]);
      CHECK(torch::equal(refilled->prefill(s, prompts[static_cast<std::size_t>(s)]), logits));
      tokens.push_back(greedy(logits));
    }
    for (int step = 0; step < 8; ++step) {
      const auto expected = undisturbed->decode({0, 1, 2}, tokens);
      if (step == 3) {
        refilled->release(1);
        CHECK(refilled->length(1) == 0);
        refilled->prefill(1, kPrompts[7]);
        CHECK(refilled->length(1) == static_cast<std::int64_t>(kPrompts[7].size()));
      }
      // The refilled slot gets its own tokens; the others must not notice.
      const auto got = step >= 3 ? refilled->decode({2, 1, 0}, {tokens[2], 5, tokens[0]})
                                 : refilled->decode({0, 1, 2}, tokens);
      CHECK(torch::equal(got[step >= 3 ? 2 : 0], expected[0]));
      CHECK(torch::equal(got[step >= 3 ? 0 : 2], expected[2]));
      for (std::size_t r = 0; r < tokens.size(); ++r) tokens[r] = greedy(expected[static_cast<std::int64_t>(r)]);
    }
    CHECK(refilled->length(1) == static_cast<std::int64_t>(kPrompts[7].size()) + 5);
  }
}

TEST_CASE("slot decoder: refuses what its header names, changing nothing", "[models][slots]") {
  for (const auto& family : families()) {
    INFO(family.name);
    auto model = family.make(torch::kFloat32);
    REQUIRE_THROWS_WITH(make_slot_decoder(*model, 0, 8), Contains("at least 1 slot, got 0"));
    REQUIRE_THROWS_WITH(make_slot_decoder(*model, 2, 0), Contains("capacity must be at least 1 token, got 0"));
    if (model->max_positions())
      REQUIRE_THROWS_WITH(make_slot_decoder(*model, 2, *model->max_positions() + 1),
                          Contains("exceeds the model's maximum sequence length 48"));
    auto decoder = make_slot_decoder(*model, 3, 6);
    CHECK(decoder->slots() == 3);
    CHECK(decoder->slot_capacity() == 6);
    REQUIRE_THROWS_WITH(decoder->prefill(0, {}), Contains("prompt for slot 0 is empty"));
    REQUIRE_THROWS_WITH(decoder->prefill(0, {1, 2, 3, 4, 5, 6, 7}),
                        Contains("a prompt of 7 tokens does not fit a slot of 6"));
    REQUIRE_THROWS_WITH(decoder->prefill(0, {1, 500}), Contains("token id 500 is outside the vocabulary"));
    REQUIRE_THROWS_WITH(decoder->prefill(0, {-1}), Contains("token id -1 is outside the vocabulary"));
    REQUIRE_THROWS_WITH(decoder->prefill(3, {1}), Contains("slot 3 does not exist (slots 0..2)"));
    REQUIRE_THROWS_WITH(decoder->release(-1), Contains("release: slot -1 does not exist"));
    CHECK(decoder->length(0) == 0);
    decoder->prefill(0, {1, 2, 3, 4, 5});
    decoder->prefill(2, {7});
    REQUIRE_THROWS_WITH(decoder->prefill(0, {1}), Contains("slot 0 is busy (5 tokens); release it first"));
    REQUIRE_THROWS_WITH(decoder->decode({0, 2}, {1}), Contains("2 slots but 1 tokens"));
    REQUIRE_THROWS_WITH(decoder->decode({0, 1}, {1, 1}), Contains("slot 1 is free; prefill it first"));
    REQUIRE_THROWS_WITH(decoder->decode({2, 2}, {1, 1}), Contains("slot 2 is given twice"));
    REQUIRE_THROWS_WITH(decoder->decode({2, 0}, {1, 9999}), Contains("the token for slot 0: token id 9999"));
    CHECK(decoder->length(0) == 5);
    CHECK(decoder->length(2) == 1);  // the refused steps advanced nothing
    decoder->decode({0}, {1});
    REQUIRE_THROWS_WITH(decoder->decode({2, 0}, {1, 1}), Contains("slot 0 is full (6 tokens)"));
    CHECK(decoder->length(2) == 1);
    CHECK(decoder->decode({}, {}).size(0) == 0);
  }
}

TEST_CASE("slot decoder: a prompt joining in parts beside decoding rows gets the logits it gets alone",
          "[models][slots]") {
  for_each_model([&](const Family& family, CausalLM& model) {
    const auto& mine = kPrompts[3];  // 11 tokens
    auto alone = make_slot_decoder(model, 1, 32);
    const auto expected = alone->prefill(0, mine);
    const auto expected_next = alone->decode({0}, {greedy(expected)})[0];

    // Slots 0 and 2 decode while slot 1's prompt joins in parts of 4, 4 and 3 tokens.
    auto decoder = make_slot_decoder(model, 3, 32);
    std::vector<std::int64_t> tokens{greedy(decoder->prefill(0, kPrompts[0])), 0,
                                     greedy(decoder->prefill(2, kPrompts[2]))};
    torch::Tensor logits;
    for (std::size_t from = 0; from < mine.size(); from += 4) {
      const auto to = std::min(mine.size(), from + 4);
      logits = decoder->step({{2, {tokens[2]}},
                              {1, {mine.begin() + static_cast<std::ptrdiff_t>(from), mine.begin() + static_cast<std::ptrdiff_t>(to)}},
                              {0, {tokens[0]}}});
      REQUIRE(logits.size(0) == 3);
      tokens[0] = greedy(logits[2]);
      tokens[2] = greedy(logits[0]);
    }
    CHECK(decoder->length(1) == static_cast<std::int64_t>(mine.size()));
    const auto next = decoder->step({{1, {greedy(logits[1])}}})[0];
    if (std::string(family.name) == "another CausalLM") {
      // Served row by row through the general path, whose products block by the rows given.
      CHECK(torch::allclose(logits[1], expected, 1e-2, 1e-2));
      CHECK(torch::allclose(next, expected_next, 1e-2, 1e-2));
    } else {
      CHECK(torch::equal(logits[1], expected));
      CHECK(torch::equal(next, expected_next));
    }
  });
}

TEST_CASE("slot decoder: a long prompt joining a step gets the logits it gets alone, and so do the others",
          "[models][slots]") {
  for (const auto& family : families()) {
    INFO(family.name);
    auto model = family.make(torch::kFloat32);
    std::vector<std::int64_t> long_prompt;  // long enough to run alone by BLAS products
    for (std::int64_t i = 0; i < 40; ++i) long_prompt.push_back((i * 13 + 5) % 60);
    auto alone = make_slot_decoder(*model, 1, 44);
    const auto long_alone = alone->prefill(0, long_prompt);
    const auto long_next = alone->decode({0}, {greedy(long_alone)})[0];
    alone->release(0);
    const auto short_alone = alone->prefill(0, kPrompts[0]);

    auto decoder = make_slot_decoder(*model, 2, 44);
    const auto both = decoder->step({{1, kPrompts[0]}, {0, long_prompt}});
    CHECK(torch::equal(both[0], short_alone));
    CHECK(torch::equal(both[1], long_alone));
    const auto next = decoder->decode({0, 1}, {greedy(long_alone), greedy(short_alone)});
    CHECK(torch::equal(next[0], long_next));
  }
}

TEST_CASE("slot decoder: step refuses empty inputs and tokens beyond a slot's capacity, changing nothing",
          "[models][slots][errors]") {
  for (const auto& family : families()) {
    INFO(family.name);
    auto model = family.make(torch::kFloat32);
    auto decoder = make_slot_decoder(*model, 2, 6);
    decoder->prefill(0, {1, 2, 3, 4});
    REQUIRE_THROWS_WITH(decoder->step({{1, {}}}), Contains("step: no tokens for slot 1"));
    REQUIRE_THROWS_WITH(decoder->step({{1, {5}}, {0, {1, 2, 3}}}),
                        Contains("slot 0 holds 4 tokens; 3 more do not fit its 6"));
    REQUIRE_THROWS_WITH(decoder->step({{1, {5, 6}}, {1, {7}}}), Contains("slot 1 is given twice"));
    REQUIRE_THROWS_WITH(decoder->step({{1, {5, 9999}}}), Contains("slot 1's token 1: token id 9999 is outside"));
    CHECK(decoder->length(0) == 4);
    CHECK(decoder->length(1) == 0);
    CHECK(decoder->step({{1, {5, 6}}, {0, {1, 2}}}).size(0) == 2);
    CHECK(decoder->length(0) == 6);
    CHECK(decoder->length(1) == 2);
  }
}
