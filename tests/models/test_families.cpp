// The model family registry: one entry per family, read by load_causal_lm, the errors, the
// examples' help and docs/models.md; every family's weights through one Checkpoint reader.
#include "accel/models/auto_model.h"
#include "accel/models/gpt2.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <set>

using namespace accel::models;
using accel::models::testing::run_command;
using accel::models::testing::tiny_config;
using accel::test::TempDir;
using Catch::Matchers::Contains;

TEST_CASE("each model_type belongs to one registered family", "[models][families]") {
  CHECK(supported_model_types() == "gpt2, llama, mistral, qwen2, qwen3");
  std::set<std::string> seen;
  for (const auto& family : model_families()) {
    INFO(family.name);
    CHECK_FALSE(family.block_names.empty());
    CHECK_FALSE(family.features.empty());
    CHECK(static_cast<bool>(family.load));
    for (const auto& type : family.model_types) {
      CHECK(seen.insert(type).second);
      CHECK(find_family(type) == &family);
    }
  }
  CHECK(find_family("qwen3")->name == "Llama");
  CHECK(find_family("bert") == nullptr);
}

TEST_CASE("docs/models.md shows the registry's family table", "[models][families][docs]") {
  std::ifstream in(std::string(ACCEL_SOURCE_DIR) + "/docs/models.md");
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- model_families_table() -->\n", end = "<!-- end of model_families_table() -->";
  const auto from = doc.find(begin), to = doc.find(end);
  REQUIRE(from != std::string::npos);
  REQUIRE(to != std::string::npos);
  INFO("paste this table between the markers in docs/models.md:\n" << model_families_table());
  CHECK(doc.substr(from + begin.size(), to - from - begin.size()) == model_families_table());
}

TEST_CASE("distributed_inference's help lists the registry's model types", "[models][families]") {
  const auto help = run_command(std::string(DISTRIBUTED_INFERENCE_EXE) + " --help");
  CHECK_THAT(help.output, Contains("config.json (" + supported_model_types() + ")"));
}

TEST_CASE("GPT-2 loads from a sharded checkpoint as from one file", "[models][families][checkpoint]") {
  TempDir single, sharded;
  GPT2Options options;
  options.config = tiny_config();
  options.seed = 11;
  GPT2LMHeadModel reference(options);
  reference.save_pretrained(single.root());
  // The same tensors in two shards and an index, as transformers writes them for large models.
  NamedTensors first, second;
  std::string weight_map;
  for (const auto& [name, tensor] : reference.state_dict()) {
    const bool early = name.find(".h.2.") == std::string::npos && name.find("ln_f") == std::string::npos;
    (early ? first : second).emplace_back(name, tensor);
    weight_map += std::string(weight_map.empty() ? "" : ", ") + "\"" + name + "\": \"" +
                  (early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors") + "\"";
  }
  REQUIRE_FALSE(second.empty());
  save_safetensors(sharded.path("model-00001-of-00002.safetensors"), first);
  save_safetensors(sharded.path("model-00002-of-00002.safetensors"), second);
  sharded.write("model.safetensors.index.json", "{\"metadata\": {}, \"weight_map\": {" + weight_map + "}}");
  sharded.write("config.json", options.config.to_json());

  const auto ids = torch::randint(0, tiny_config().vocab_size, {2, 6}, torch::kLong);
  const auto mask = torch::ones({2, 6}, torch::kLong);
  const auto from_one = load_causal_lm(single.root());
  const auto from_shards = load_causal_lm(sharded.root());
  REQUIRE(dynamic_cast<GPT2LMHeadModel*>(from_shards.model.get()) != nullptr);
  CHECK(torch::equal(from_shards.model->next_token_logits(ids, mask, nullptr),
                     from_one.model->next_token_logits(ids, mask, nullptr)));
}
