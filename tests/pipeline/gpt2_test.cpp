// GPT-2 through the pipeline: the model users run, not only the toy one, with random weights
// and with weights read back from a checkpoint (each rank then reads only its own tensors).
#include <catch2/catch.hpp>

#include "accel/models/gpt2.h"
#include "accel/models/sequential.h"
#include "harness.h"
// The models suite's tiny config and scratch directory, so both suites test the same model.
#include "../models/test_helpers.h"

using namespace accel::pipeline;
using namespace accel::pipeline::testing;
using accel::models::GPT2ForSequenceClassification;
using accel::models::GPT2Options;

namespace {

// Token ids and a mask whose odd rows are left-padded, as generate() pads prompts.
Activations gpt2_batch(std::int64_t rows, std::int64_t length, std::int64_t vocab) {
  auto generator = at::detail::createCPUGenerator(5);
  auto ids = torch::randint(0, vocab, {rows, length}, generator, torch::kInt64);
  auto mask = torch::ones({rows, length}, torch::kInt64);
  for (std::int64_t b = 1; b < rows; b += 2) mask[b].slice(0, 0, length / 3).zero_();
  return {ids, mask};
}

}  // namespace

TEST_CASE("GPT-2 sequence classification pipelined over 2 and 3 ranks matches one process, random and "
          "checkpoint weights", "[gpt2]") {
  const auto config = accel::models::testing::tiny_config();
  GPT2Options options;
  options.config = config;
  options.seed = 11;
  GPT2ForSequenceClassification random(options);
  const accel::test::TempDir dir;
  random.save_pretrained(dir.root());
  GPT2ForSequenceClassification loaded(GPT2Options::from_directory(dir.root()));

  const auto batch = gpt2_batch(7, 6, config.vocab_size);
  const auto example = gpt2_batch(1, 6, config.vocab_size);
  const auto expected = accel::models::SequentialBlocks(random).forward(batch);
  REQUIRE(expected.size() == 1);
  REQUIRE(expected[0].sizes() == std::vector<std::int64_t>{7, config.num_labels});
  // The checkpoint holds the same model, so one reference serves both.
  REQUIRE(all_close(accel::models::SequentialBlocks(loaded).forward(batch), expected));

  // 5 blocks: embeddings, h.0 .. h.2, head.
  const std::vector<std::pair<int, SplitPoints>> cuts{{2, "auto"}, {3, SplitPoints::counts({1, 2, 2})}};
  for (const auto* model : {&random, &loaded}) {
    for (const auto& cut : cuts) {
      const int stages = cut.first;
      INFO((model == &random ? "random" : "checkpoint") << " weights, " << stages << " stages");
      Activations out;
      auto errors = run_ranks(stages, [&](accel::runtime::GroupHandle& group) {
        auto pipe = prepare(*model, example, quiet(cut.second, 3), group);
        auto mine = pipe.forward(batch);
        if (pipe.is_last_stage()) out = std::move(mine);
      });
      expect_no_errors(errors);
      CHECK(all_close(out, expected));
    }
  }
}
