// apps/examples/distributed_inference on a Llama-family checkpoint with its tokenizer.json:
// what it prints and writes, that its greedy output is the library's generation of each prompt
// alone, that two processes give what one gives, and that bad options are refused by name.
#include "accel/models/llama.h"
#include "accel/models/tokenizer_json.h"
#include "test_helpers.h"
#include "tokenizer_fixture.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace accel::models;
using accel::models::testing::CommandOutcome;
using accel::models::testing::run_command;
using accel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

const std::vector<std::string> kPrompts = {"ab", "a b ab", "ba", "é ab", "b", "abab ab"};

// A qwen3-shaped checkpoint whose vocabulary is the fixture tokenizer's (264 ids).
void make_model(const TempDir& dir) {
  const auto made = run_command(std::string("/usr/bin/python3 ") + ACCEL_LLAMA_REFERENCE_SCRIPT + " make " +
                                dir.path("model") + " qwen3-qknorm --vocab_size 264");
  INFO(made.output);
  REQUIRE(made.status == 0);
  std::ofstream(dir.path("model/tokenizer.json")) << accel::models::testing::sentencepiece_style().dump();
  std::ofstream prompts(dir.path("prompts.txt"));
  for (const auto& p : kPrompts) prompts << p << "\n";
}

CommandOutcome infer(const TempDir& dir, const std::string& args, const std::string& launcher = "") {
  return run_command(launcher + DISTRIBUTED_INFERENCE_EXE " --model_dir " + dir.path("model") + " --prompts " +
                     dir.path("prompts.txt") + " --overwrite " + args);
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

}  // namespace

TEST_CASE("distributed_inference runs a Llama-family checkpoint and writes JSON lines",
          "[models][example][llama]") {
  TempDir dir;
  make_model(dir);
  const auto run = infer(dir, "--batch_size 4 --max_new_tokens 6 -o " + dir.path("out.jsonl"));
  INFO(run.output);
  REQUIRE(run.status == 0);
  CHECK_THAT(run.output, Contains("distributed_inference: model qwen3: 2 layers, hidden 32") &&
                             Contains("from " + dir.path("model")) && Contains("rank 0: 6 requests") &&
                             Contains("tokens/s") && Contains("total: ") && Contains("6/6 requests") &&
                             Contains("wrote " + dir.path("out.jsonl") + ": 6 lines (6 completions, 0 errors)"));
  CHECK_THAT(run.output, !Contains("timeline "));

  const auto records = read_jsonl(dir.path("out.jsonl"));
  REQUIRE(records.size() == kPrompts.size());
  // Greedy output is the library's generation of each prompt alone, with the tokenizer's BOS.
  LlamaForCausalLM model(LlamaOptions::from_directory(dir.path("model")));
  const auto tokenizer = TokenizerJson::from_file(dir.path("model/tokenizer.json"));
  GenerationOptions greedy;
  greedy.max_new_tokens = 6;
  for (std::size_t i = 0; i < records.size(); ++i) {
    INFO("record " << i << ": " << records[i].dump());
    const auto prompt = tokenizer.encode(kPrompts[i]);
    const auto expected = generate(model, {prompt}, greedy).new_tokens[0];
    const auto& body = records[i]["response"]["body"];
    CHECK(records[i]["custom_id"] == "prompt-" + std::to_string(i + 1));
    CHECK(body["usage"]["prompt_tokens"] == prompt.size());
    CHECK(body["usage"]["completion_tokens"] == expected.size());
    CHECK(body["choices"][0]["text"] == tokenizer.decode(expected));
    CHECK(body["model"] == "model");
  }
}

TEST_CASE("distributed_inference on two processes gives what one process gives",
          "[models][example][llama][launcher]") {
  TempDir dir;
  make_model(dir);
  for (const auto& sampling : {std::string(""), std::string("--temperature 0.9 --top_k 50 --top_p 0.95 --seed 5")}) {
    INFO("options: " << sampling);
    const auto one = infer(dir, "--batch_size 1 " + sampling + " -o " + dir.path("one.jsonl"));
    INFO(one.output);
    REQUIRE(one.status == 0);
    // Phase timelines only when asked: every rank's, gathered on rank 0.
    const bool timeline = sampling.empty();
    const auto two = infer(dir, "--batch_size 4 " + sampling + (timeline ? " --timeline" : "") + " -o " +
                                    dir.path("two.jsonl"),
                           std::string(ACCEL_LAUNCH_EXE) + " --num_processes 2 ");
    INFO(two.output);
    REQUIRE(two.status == 0);
    CHECK_THAT(two.output, Contains("rank 1: ") && Contains("over 2 process(es)"));
    if (timeline) CHECK_THAT(two.output, Contains("timeline rank=0 ready=") && Contains("timeline rank=1 ready="));
    else CHECK_THAT(two.output, !Contains("timeline "));
    const auto a = read_jsonl(dir.path("one.jsonl")), b = read_jsonl(dir.path("two.jsonl"));
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i]["custom_id"] == b[i]["custom_id"]);
      CHECK(a[i]["response"]["body"]["choices"] == b[i]["response"]["body"]["choices"]);
      CHECK(a[i]["response"]["body"]["usage"] == b[i]["response"]["body"]["usage"]);
    }
  }
}

TEST_CASE("distributed_inference sampling follows the seed", "[models][example][llama]") {
  TempDir dir;
  make_model(dir);
  auto texts_with = [&](const std::string& seed) {
    const auto run = infer(dir, "--temperature 1.5 --max_new_tokens 12 --seed " + seed + " -o " + dir.path("s.jsonl"));
    INFO(run.output);
    REQUIRE(run.status == 0);
    std::string all;
    for (const auto& r : read_jsonl(dir.path("s.jsonl"))) all += r["response"]["body"]["choices"].dump();
    return all;
  };
  const auto first = texts_with("1");
  CHECK(texts_with("1") == first);
  CHECK(texts_with("2") != first);
}

TEST_CASE("distributed_inference refuses bad options naming them", "[models][example][errors]") {
  TempDir dir;
  make_model(dir);
  auto bad = infer(dir, "--dtype float64");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Contains("unknown dtype 'float64'; accepted: float32 (fp32), bfloat16 (bf16)"));
  bad = infer(dir, "--temperature -1");
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Contains("--temperature"));
  bad = infer(dir, "--batch_size 0");
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Contains("--batch_size"));
  std::filesystem::remove(dir.path("model/tokenizer.json"));
  bad = infer(dir, "");
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Contains(dir.path("model")) && Contains("no tokenizer: expected tokenizer.json"));
  std::ofstream(dir.path("model/config.json")) << R"({"model_type": "t5"})";
  bad = infer(dir, "");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Contains("model_type 't5' is not supported; accepted: gpt2, llama, mistral, qwen2, qwen3"));
}
