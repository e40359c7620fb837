// Checkpoint: one model.safetensors or a model.safetensors.index.json with shards.
#include "accel/core/error.h"
#include "accel/models/checkpoint.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <fstream>

using namespace accel::models;
using accel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

void write_index(const TempDir& dir, const std::string& text) {
  std::ofstream(dir.path("model.safetensors.index.json")) << text;
}

// Two shards: a.weight in the first, b.weight in the second.
void write_two_shards(const TempDir& dir) {
  save_safetensors(dir.path("s1.safetensors"), {{"a.weight", torch::ones({2, 3})}});
  save_safetensors(dir.path("s2.safetensors"), {{"b.weight", torch::full({4}, 2.0).to(torch::kBFloat16)}});
  write_index(dir, R"({"metadata": {"total_size": 40},
                       "weight_map": {"a.weight": "s1.safetensors", "b.weight": "s2.safetensors"}})");
}

}  // namespace

TEST_CASE("a sharded checkpoint opens a shard only when one of its tensors is read",
          "[models][checkpoint]") {
  TempDir dir;
  write_two_shards(dir);
  const Checkpoint checkpoint(dir.root());
  CHECK(checkpoint.path() == dir.path("model.safetensors.index.json"));
  CHECK(checkpoint.names() == std::vector<std::string>{"a.weight", "b.weight"});
  CHECK(checkpoint.opened_files().empty());
  const auto b = checkpoint.get_floating("b.weight", {4}, torch::kFloat32);
  CHECK(b.scalar_type() == torch::kFloat32);
  CHECK(torch::equal(b, torch::full({4}, 2.0)));
  CHECK(checkpoint.opened_files() == std::vector<std::string>{dir.path("s2.safetensors")});
}

TEST_CASE("a single-file checkpoint is read through the same interface", "[models][checkpoint]") {
  TempDir dir;
  save_safetensors(dir.path("model.safetensors"), {{"w", torch::arange(6.0).view({2, 3})}});
  const Checkpoint checkpoint(dir.root());
  CHECK(checkpoint.contains("w"));
  CHECK_FALSE(checkpoint.contains("v"));
  CHECK(torch::equal(checkpoint.get_floating("w", {2, 3}, torch::kFloat32), torch::arange(6.0).view({2, 3})));
  REQUIRE_THROWS_WITH(checkpoint.get_floating("v", {1}, torch::kFloat32),
                      Contains(dir.path("model.safetensors")) && Contains("missing tensor 'v'"));
}

TEST_CASE("bad sharded checkpoints are refused naming the file and the fault", "[models][checkpoint]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(Checkpoint(dir.root()),
                      Contains(dir.root()) && Contains("holds no weights; expected "
                                                                "model.safetensors or "
                                                                "model.safetensors.index.json"));
  const auto index = dir.path("model.safetensors.index.json");
  write_index(dir, "{not json");
  REQUIRE_THROWS_WITH(Checkpoint(dir.root()),
                      Contains(index) && Contains("checkpoint index is not valid JSON"));
  write_index(dir, R"({"metadata": {}})");
  REQUIRE_THROWS_WITH(Checkpoint(dir.root()),
                      Contains(index) && Contains("no \"weight_map\" object"));
  write_index(dir, R"({"weight_map": {"a": 3}})");
  REQUIRE_THROWS_WITH(Checkpoint(dir.root()),
                      Contains("weight_map[\"a\"] is '3'; expected the name of a shard file"));
  write_index(dir, R"({"weight_map": {"a": "../elsewhere.safetensors"}})");
  REQUIRE_THROWS_WITH(Checkpoint(dir.root()),
                      Contains("names shard '../elsewhere.safetensors'; expected a file name in the "
                               "index's own directory"));

  // A shard the index names but the directory lacks, and a shard without its promised tensor.
  write_two_shards(dir);
  write_index(dir, R"({"weight_map": {"a.weight": "gone.safetensors", "b.weight": "s1.safetensors"}})");
  const Checkpoint checkpoint(dir.root());
  REQUIRE_THROWS_WITH(checkpoint.get_floating("a.weight", {2, 3}, torch::kFloat32),
                      Contains(dir.path("gone.safetensors")));
  REQUIRE_THROWS_WITH(checkpoint.get_floating("b.weight", {4}, torch::kFloat32),
                      Contains(dir.path("s1.safetensors")) &&
                          Contains("does not hold tensor 'b.weight', which " + index + " places in it"));
  CHECK(checkpoint.opened_files() == std::vector<std::string>{dir.path("s1.safetensors")});
}
