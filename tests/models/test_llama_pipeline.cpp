// A sharded Llama checkpoint through pipeline::prepare, cut by its HF block names: the
// pipelined logits equal the whole model's, and each rank opens only the shards of its blocks.
#include "accel/models/llama.h"
#include "accel/models/sequential.h"
#include "test_helpers.h"
// The pipeline suite's ranks-as-threads harness, so both suites run pipelines the same way.
#include "../pipeline/harness.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <mutex>
#include <set>

using namespace accel::models;
using accel::models::testing::run_command;
using accel::test::TempDir;
namespace pipeline = accel::pipeline;

TEST_CASE("a sharded Llama checkpoint pipelined by HF block names matches one process, each rank "
          "opening only its shards",
          "[models][llama][pipeline]") {
  TempDir dir;
  const auto made = run_command(std::string("/usr/bin/python3 ") + ACCEL_LLAMA_REFERENCE_SCRIPT + " make " +
                                dir.root() + " llama-mha --shards 5");
  INFO(made.output);
  REQUIRE(made.status == 0);

  // The shards each stage needs, from the index: stage 0 runs model.embed_tokens and
  // model.layers.0, stage 1 model.layers.1 and lm_head (model.norm + lm_head).
  std::ifstream index_file(dir.path("model.safetensors.index.json"));
  const auto index = nlohmann::json::parse(index_file);
  std::set<std::string> stage_shards[2];
  for (const auto& [name, shard] : index["weight_map"].items()) {
    const bool first = name.rfind("model.embed_tokens.", 0) == 0 || name.rfind("model.layers.0.", 0) == 0;
    stage_shards[first ? 0 : 1].insert(dir.path(shard.get<std::string>()));
  }

  const LlamaForCausalLM whole(LlamaOptions::from_directory(dir.root()));
  torch::manual_seed(4);
  const auto ids = torch::randint(3, whole.config().vocab_size, {5, 7}, torch::kLong);
  auto mask = torch::ones({5, 7}, torch::kLong);
  mask[1].narrow(0, 0, 3).zero_();
  const pipeline::Activations batch{ids, mask};
  const auto expected = SequentialBlocks(whole).forward(batch);

  std::mutex lock;
  pipeline::Activations out;
  std::set<std::string> opened[2];
  const auto errors = pipeline::testing::run_ranks(2, [&](accel::runtime::GroupHandle& group) {
    const LlamaForCausalLM model(LlamaOptions::from_directory(dir.root()));
    auto pipe = pipeline::prepare(model, {ids.narrow(0, 0, 1), mask.narrow(0, 0, 1)},
                                  pipeline::testing::quiet(pipeline::SplitPoints::at({"model.layers.1"}), 2), group);
    auto mine = pipe.forward(batch);
    const auto files = model.checkpoint()->opened_files();
    std::lock_guard<std::mutex> guard(lock);
    opened[pipe.stage()] = std::set<std::string>(files.begin(), files.end());
    if (pipe.is_last_stage()) out = std::move(mine);
  });
  pipeline::testing::expect_no_errors(errors);
  CHECK(pipeline::testing::all_close(out, expected));
  for (int stage = 0; stage < 2; ++stage) {
    INFO("stage " << stage);
    CHECK(opened[stage] == stage_shards[stage]);
  }
  CHECK(stage_shards[0] != stage_shards[1]);
}
