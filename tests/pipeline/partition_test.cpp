#include "accel/pipeline/partition.h"

#include <catch2/catch.hpp>

#include "accel/core/error.h"

using namespace accel::pipeline;

namespace {

std::vector<BlockInfo> blocks_with(const std::vector<std::int64_t>& parameters) {
  std::vector<BlockInfo> blocks;
  for (std::size_t i = 0; i < parameters.size(); ++i) blocks.push_back({"b" + std::to_string(i), parameters[i]});
  return blocks;
}

std::vector<int> counts_of(const Plan& plan) {
  std::vector<int> counts;
  for (const auto& s : plan.stages) counts.push_back(s.num_blocks);
  return counts;
}

}  // namespace

TEST_CASE("linear partition minimises the slowest group and never leaves one empty") {
  CHECK(linear_partition({1, 1, 1, 1}, 2) == std::vector<int>{2, 2});
  CHECK(linear_partition({5, 1, 1, 1, 1, 1}, 2) == std::vector<int>{1, 5});
  CHECK(linear_partition({1, 2, 3, 4, 5, 6, 7, 8, 9}, 3) == std::vector<int>{5, 2, 2});
  CHECK(linear_partition({0, 0, 0}, 3) == std::vector<int>{1, 1, 1});
  CHECK(linear_partition({1, 2}, 3).empty());
}

TEST_CASE("linear partition respects a weight bound per group") {
  // By cost alone {1,1 | 1,1}; the heavy first item forces it to stand alone.
  CHECK(linear_partition({1, 1, 1, 1}, 2, {10, 1, 1, 1}, 10) == std::vector<int>{1, 3});
  CHECK(linear_partition({1, 1, 1, 1}, 2, {10, 1, 1, 1}, 9).empty());
}

TEST_CASE("auto balances measured time, not parameters, within the memory bound") {
  // A GPT-2-like shape: big embedding that costs little time, equal blocks, a light head.
  const auto blocks = blocks_with({40, 7, 7, 7, 7, 7, 7, 1});
  const std::vector<double> seconds{0.1, 1, 1, 1, 1, 1, 1, 0.1};
  auto plan = make_plan(blocks, 2, "auto", seconds);
  CHECK(counts_of(plan) == std::vector<int>{4, 4});
  CHECK(plan.stages[0].estimated_seconds == Approx(3.1));
  CHECK(plan.stages[0].parameter_count == 61);
  CHECK(counts_of(make_plan(blocks, 2, "parameters")) == std::vector<int>{1, 7});
  // 55 parameters per stage at most: the embedding's stage can hold only two blocks more.
  CHECK(counts_of(make_plan(blocks, 2, "auto", seconds, 55)) == std::vector<int>{3, 5});
}

TEST_CASE("auto that cannot fit the memory bound names the largest block") {
  const auto blocks = blocks_with({40, 7, 7});
  CHECK_THROWS_WITH(make_plan(blocks, 2, "auto", {1, 1, 1}, 30),
                    "split_points \"auto\" found no way to give each of the 2 processes at most 30 parameters (its "
                    "memory budget); the largest block, 'b0', has 40: use more processes or more memory per process");
}

TEST_CASE("split points parse from the command-line form") {
  CHECK(SplitPoints::parse("auto").mode() == SplitPoints::Mode::kAuto);
  CHECK(SplitPoints::parse("parameters").mode() == SplitPoints::Mode::kParameters);
  CHECK(SplitPoints::parse("6, 6").block_counts() == std::vector<int>{6, 6});
  CHECK(SplitPoints::parse("h.4,h.8").names() == std::vector<std::string>{"h.4", "h.8"});
  CHECK_THROWS_WITH(SplitPoints("balanced"),
                    "split_points \"balanced\" is not a mode; accepted: \"auto\", \"parameters\", block names that "
                    "start stages 2..S, or block counts per stage");
  CHECK_THROWS_AS(SplitPoints::parse(" "), accel::UsageError);
}

TEST_CASE("the plan report lists blocks, parameters and time per stage") {
  auto plan = make_plan(blocks_with({1500000, 2000, 3}), 2, SplitPoints::counts({1, 2}), {0.002, 0.001, 0.0005});
  const auto text = plan.to_string();
  CHECK_THAT(text, Catch::Contains("pipeline plan: 2 stage(s), 3 blocks, split block counts 1,2"));
  CHECK_THAT(text, Catch::Contains("1.50M"));
  CHECK_THAT(text, Catch::Contains("b1 .. b2"));
  CHECK_THAT(text, Catch::Contains("1.50 "));
}

TEST_CASE("split points by Hugging Face module paths name the same blocks") {
  // Issue 11, point 10: "transformer.h.6" (GPT-2) and "model.layers.12" (Llama) as users write them.
  std::vector<BlockInfo> gpt2{{"embeddings", 10}};
  for (int i = 0; i < 12; ++i) gpt2.push_back({"h." + std::to_string(i), 10});
  gpt2.push_back({"head", 10});
  CHECK(counts_of(make_plan(gpt2, 2, SplitPoints::at({"transformer.h.6"}))) == std::vector<int>{7, 7});
  CHECK(counts_of(make_plan(gpt2, 3, SplitPoints::parse("transformer.h.4,h.8"))) == std::vector<int>{5, 4, 5});
  std::vector<BlockInfo> llama{{"model.embed_tokens", 10}};
  for (int i = 0; i < 16; ++i) llama.push_back({"model.layers." + std::to_string(i), 10});
  llama.push_back({"lm_head", 10});
  CHECK(counts_of(make_plan(llama, 2, SplitPoints::at({"layers.12"}))) == std::vector<int>{13, 5});
  CHECK(counts_of(make_plan(llama, 2, SplitPoints::at({"model.layers.12"}))) == std::vector<int>{13, 5});
  CHECK_THROWS_WITH(make_plan(gpt2, 2, SplitPoints::at({"transformer.h.60"})),
                    Catch::StartsWith("split point 'transformer.h.60' is not a block of this model"));
  const std::vector<BlockInfo> twice{{"encoder.h.0", 1}, {"decoder.h.0", 1}, {"head", 1}};
  CHECK_THROWS_WITH(make_plan(twice, 2, SplitPoints::at({"h.0"})),
                    "split point 'h.0' could name any of the blocks encoder.h.0, decoder.h.0; write the block's own name");
}
