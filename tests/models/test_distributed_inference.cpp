// apps/examples/distributed_inference on a Llama-family checkpoint with its tokenizer.json:
// what it prints and writes, that its greedy output is the library's generation of each prompt
// alone, that two processes give what one gives, and that bad options are refused by name.
#include "accel/models/chat.h"
#include "accel/models/llama.h"
#include "accel/models/tokenizer_json.h"
#include "test_helpers.h"
#include "tokenizer_fixture.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
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
    CHECK_THAT(two.output, Contains("rank 1: ") && Contains("over 2 processes"));
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

namespace {

// Every choice of an output file, as one text to compare runs by.
std::string choices_of(const std::string& path) {
  std::string all;
  for (const auto& r : read_jsonl(path)) all += r["response"]["body"]["choices"].dump();
  return all;
}

// The choices of a 12-token run over the prompts file with `args`.
std::string sampled_texts(const TempDir& dir, const std::string& args) {
  const auto run = infer(dir, "--max_new_tokens 12 " + args + " -o " + dir.path("s.jsonl"));
  INFO(run.output);
  REQUIRE(run.status == 0);
  return choices_of(dir.path("s.jsonl"));
}

}  // namespace

TEST_CASE("distributed_inference sampling follows the seed", "[models][example][llama]") {
  TempDir dir;
  make_model(dir);
  const auto first = sampled_texts(dir, "--temperature 1.5 --seed 1");
  CHECK(sampled_texts(dir, "--temperature 1.5 --seed 1") == first);
  CHECK(sampled_texts(dir, "--temperature 1.5 --seed 2") != first);
}

TEST_CASE("distributed_inference samples as generation_config.json says unless a flag or the body says otherwise",
          "[models][example][llama][chat]") {
  TempDir dir;
  make_model(dir);
  auto texts_with = [&](const std::string& args) { return sampled_texts(dir, "--seed 3 " + args); };
  const auto greedy = texts_with("");
  std::ofstream(dir.path("model/generation_config.json")) << R"({"do_sample": true, "temperature": 1.5, "top_k": 0})";
  const auto checkpoint_default = texts_with("");
  CHECK(checkpoint_default != greedy);
  CHECK(checkpoint_default == texts_with("--temperature 1.5"));  // the same sampling, spelled by the flag
  CHECK(texts_with("--temperature 0") == greedy);                 // a flag wins over the checkpoint
  // So does a request's body: temperature 0 in each request of a batch file is greedy again.
  std::ofstream batch(dir.path("greedy.jsonl"));
  for (std::size_t i = 0; i < kPrompts.size(); ++i)
    batch << nlohmann::json{{"custom_id", "prompt-" + std::to_string(i + 1)},
                            {"method", "POST"},
                            {"url", "/v1/completions"},
                            {"body", {{"model", "m"}, {"prompt", kPrompts[i]}, {"temperature", 0}}}}
                 .dump()
          << "\n";
  batch.close();
  const auto run = run_command(DISTRIBUTED_INFERENCE_EXE " --model_dir " + dir.path("model") + " -i " +
                               dir.path("greedy.jsonl") + " --max_new_tokens 12 --seed 3 -o " + dir.path("b.jsonl"));
  INFO(run.output);
  REQUIRE(run.status == 0);
  CHECK(choices_of(dir.path("b.jsonl")) == greedy);
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

namespace {

const std::string kChatTemplate =
    "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}";

void add_chat_template(const TempDir& dir) {
  const nlohmann::json config = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"chat_template", kChatTemplate}};
  std::ofstream(dir.path("model/tokenizer_config.json")) << config.dump();
}

// Two chat requests and a completion, as an OpenAI batch file.
void write_chat_batch(const TempDir& dir) {
  std::ofstream batch(dir.path("chat.jsonl"));
  batch << R"({"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "ab"}]}})"
        << "\n"
        << R"({"custom_id": "c2", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "system", "content": "b"}, {"role": "user", "content": "a b ab"}]}})"
        << "\n"
        << R"({"custom_id": "p3", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "ba"}})"
        << "\n";
}

// The output lines of write_chat_batch's file served by the model in `dir`.
std::vector<nlohmann::json> serve_chat_batch(const TempDir& dir, int max_tokens) {
  write_chat_batch(dir);
  const auto run = run_command(DISTRIBUTED_INFERENCE_EXE " --model_dir " + dir.path("model") + " -i " +
                               dir.path("chat.jsonl") + " --max_new_tokens " + std::to_string(max_tokens) +
                               " -o " + dir.path("out.jsonl"));
  INFO(run.output);
  REQUIRE(run.status == 0);
  auto records = read_jsonl(dir.path("out.jsonl"));
  REQUIRE(records.size() == 3);
  return records;
}

ChatRequest chat_of(const std::string& messages) {
  ChatRequest request;
  request.messages = messages;
  return request;
}

const std::vector<std::string> kChatMessages = {R"([{"role": "user", "content": "ab"}])",
                                                R"([{"role": "system", "content": "b"}, {"role": "user", "content": "a b ab"}])"};

}  // namespace

TEST_CASE("distributed_inference serves chat requests with the checkpoint's chat template",
          "[models][example][llama][chat]") {
  TempDir dir;
  make_model(dir);
  add_chat_template(dir);
  const auto records = serve_chat_batch(dir, 5);

  // Greedy content is the library's generation from ChatModel's prompt ids, up to a stop id.
  const auto chat = ChatModel::from_directory(dir.path("model"));
  const auto stops = chat.stop_token_ids();
  LlamaForCausalLM model(LlamaOptions::from_directory(dir.path("model")));
  GenerationOptions greedy;
  greedy.max_new_tokens = 5;
  for (std::size_t i = 0; i < kChatMessages.size(); ++i) {
    INFO("record " << i << ": " << records[i].dump());
    const auto prompt = chat.prompt(chat_of(kChatMessages[i]));
    auto expected = generate(model, {prompt.ids}, greedy).new_tokens[0];
    const auto stop = std::find_first_of(expected.begin(), expected.end(), stops.begin(), stops.end());
    expected.erase(stop, expected.end());
    const auto& body = records[i]["response"]["body"];
    CHECK(records[i]["error"].is_null());
    CHECK(body["object"] == "chat.completion");
    CHECK(body["choices"][0]["message"]["role"] == "assistant");
    CHECK(body["choices"][0]["message"]["content"] == chat.tokenizer().completion_text(expected));
    CHECK(body["usage"]["prompt_tokens"] == prompt.ids.size());
  }
  CHECK(records[2]["response"]["body"]["object"] == "text_completion");
}

TEST_CASE("distributed_inference --render_only prints ChatModel's prompts without serving",
          "[models][example][llama][chat]") {
  TempDir dir;
  make_model(dir);
  add_chat_template(dir);
  write_chat_batch(dir);
  // No weights are read: a job that loaded them would fail on the removed file.
  std::filesystem::remove(dir.path("model/model.safetensors"));
  const auto chat = ChatModel::from_directory(dir.path("model"));
  const auto exe = std::string(DISTRIBUTED_INFERENCE_EXE) + " --model_dir " + dir.path("model") + " --render_only ";

  const auto run = run_command(exe + "-i " + dir.path("chat.jsonl"));
  INFO(run.output);
  REQUIRE(run.status == 0);
  std::istringstream lines(run.output);
  std::vector<nlohmann::json> printed;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.front() == '{') printed.push_back(nlohmann::json::parse(line));
  REQUIRE(printed.size() == 3);
  for (std::size_t i = 0; i < kChatMessages.size(); ++i) {
    const auto prompt = chat.prompt(chat_of(kChatMessages[i]));
    CHECK(printed[i]["prompt"] == prompt.text);
    CHECK(printed[i]["prompt_token_ids"] == prompt.ids);
  }
  CHECK(printed[0]["custom_id"] == "c1");
  CHECK(printed[0]["prompt"] == "<s>user: ab\nassistant:");
  CHECK(printed[2]["prompt"] == "ba");
  CHECK(printed[2]["prompt_token_ids"] == chat.tokenizer().prompt_ids("ba"));

  // --chat: each prompts line is one user message.
  const auto chat_prompts = run_command(exe + "--chat --prompts " + dir.path("prompts.txt"));
  INFO(chat_prompts.output);
  REQUIRE(chat_prompts.status == 0);
  const auto first = nlohmann::json::parse(chat_prompts.output.substr(0, chat_prompts.output.find('\n')));
  CHECK(first["custom_id"] == "prompt-1");
  CHECK(first["prompt_token_ids"] == chat.prompt(chat_of(kChatMessages[0])).ids);

  const auto both = run_command(exe + "--chat -i " + dir.path("chat.jsonl"));
  CHECK(both.status != 0);
  CHECK_THAT(both.output, Contains("--chat applies to --prompts"));
}

TEST_CASE("distributed_inference gives chat requests to a model without a chat template an error line",
          "[models][example][llama][chat][errors]") {
  TempDir dir;
  make_model(dir);
  std::filesystem::remove(dir.path("model/tokenizer_config.json"));
  const auto records = serve_chat_batch(dir, 2);
  const auto& error = records[1]["error"]["error"];
  CHECK_THAT(error["message"].get<std::string>(),
             Contains("line 2: the model has no chat template") && Contains(dir.path("model")));
  CHECK(error["param"] == "messages");
  CHECK(records[1]["response"]["status_code"] == 400);
  CHECK(records[2]["error"].is_null());  // the completion is served
}
