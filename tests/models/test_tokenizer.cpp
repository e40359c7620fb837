#include "accel/core/error.h"
#include "accel/models/tokenizer.h"
#include "npm_packages.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace accel::models;
using accel::models::testing::npm_modules;
using accel::models::testing::run_command;
using accel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

const GPT2Tokenizer& gpt2() {
  static const GPT2Tokenizer tokenizer = GPT2Tokenizer::bundled();
  return tokenizer;
}

}  // namespace

TEST_CASE("GPT-2 tokenizer gives GPT-2's ids", "[models][tokenizer]") {
  // Expected ids from the reference JavaScript encoder shipped with the same vocabulary.
  using Ids = std::vector<std::int64_t>;
  CHECK(gpt2().encode("Hello world") == Ids{15496, 995});
  CHECK(gpt2().encode("Hello, world!") == Ids{15496, 11, 995, 0});
  CHECK(gpt2().encode(" the quick brown fox's tail") == Ids{262, 2068, 7586, 21831, 338, 7894});
  CHECK(gpt2().encode("I'll   go\n\nnow  ") == Ids{40, 1183, 220, 220, 467, 198, 198, 2197, 220, 220});
  CHECK(gpt2().encode("naïve café 東京 123 4567") ==
        Ids{2616, 38776, 40304, 10545, 251, 109, 12859, 105, 17031, 4153, 3134});
  CHECK(gpt2().encode("emoji 🙂!!") == Ids{368, 31370, 32485, 3228});
  CHECK(gpt2().encode("it's 'quoted' TEXT") == Ids{270, 338, 705, 421, 5191, 6, 40383});
  CHECK(gpt2().encode("  leading") == Ids{220, 3756});
  CHECK(gpt2().encode("a\tb\r\nc") == Ids{64, 197, 65, 201, 198, 66});
  CHECK(gpt2().encode("one<|endoftext|>two") == Ids{505, 50256, 11545});
  CHECK(gpt2().eos_token_id() == 50256);
  CHECK(gpt2().vocab_size() == 50257);
  CHECK(gpt2().encode("").empty());
}

TEST_CASE("GPT-2 ids equal OpenAI tiktoken's on a large varied corpus", "[models][tokenizer][npm]") {
  const auto modules = npm_modules();
  if (modules.empty()) return;
  TempDir scratch("tiktoken");
  const auto reference = scratch.path("reference.json");
  const auto ran = run_command("node " + std::string(ACCEL_SOURCE_DIR) + "/scripts/tiktoken-reference.mjs " +
                               modules + " " + ACCEL_SOURCE_DIR + " " + reference);
  INFO(ran.output);
  REQUIRE(ran.status == 0);
  std::ifstream in(reference);
  const auto expected = nlohmann::json::parse(in);
  using Ids = std::vector<std::int64_t>;
  const auto& texts = expected["texts"];
  const auto& wasm = expected["ids"]["tiktoken"];
  const auto& js = expected["ids"]["js-tiktoken"];
  // The two builds differ only in their regex engines' Unicode tables (the wasm one predates
  // Unicode 16, node's V8 has ours); where they disagree, the current tables decide.
  std::size_t references_differ = 0, mismatches = 0;
  std::string first_failures;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto ours = gpt2().encode(texts[i].get<std::string>());
    const bool agree = wasm[i] == js[i];
    references_differ += agree ? 0 : 1;
    if (ours == js[i].get<Ids>() && (!agree || ours == wasm[i].get<Ids>())) continue;
    if (++mismatches <= 3)
      first_failures += "ids of " + texts[i].dump() + ": ours " + nlohmann::json(ours).dump() + ", tiktoken " +
                        wasm[i].dump() + ", js-tiktoken " + js[i].dump() + "\n";
  }
  INFO(texts.size() << " texts, " << references_differ << " where the references differ; first differences:\n"
                    << first_failures);
  CHECK(texts.size() > 3000);
  CHECK(references_differ < texts.size() / 100);
  CHECK(mismatches == 0);
}

TEST_CASE("GPT-2 tokenizer round-trips any bytes", "[models][tokenizer]") {
  for (const std::string& text : std::vector<std::string>{"Hello world", "  spaces   and\ttabs\n\n", "naïve café 東京 123",
                                 "emoji 🙂!! <|endoftext|> more", "\xff\xfe invalid \xc3 utf-8",
                                 std::string("nul\0byte", 8)})
    CHECK(gpt2().decode(gpt2().encode(text)) == text);
  REQUIRE_THROWS_WITH(gpt2().decode({15496, 50257}),
                      Contains("token id 50257 is not in the GPT-2 vocabulary (50257 tokens)"));
}

TEST_CASE("the bundled vocabulary's directory is ACCEL_GPT2_VOCAB_DIR when set and not empty", "[models][tokenizer]") {
  const auto only = [](std::optional<std::string> value) {
    return [value](const std::string& name) { return name == "ACCEL_GPT2_VOCAB_DIR" ? value : std::nullopt; };
  };
  CHECK(bundled_vocabulary_dir(only("/opt/vocab")) == "/opt/vocab");
  const std::string built_in = bundled_vocabulary_dir(only(std::nullopt));
  CHECK(built_in != "/opt/vocab");
  CHECK(bundled_vocabulary_dir(only("")) == built_in);
}

TEST_CASE("tokenizer file errors name the file", "[models][tokenizer][errors]") {
  TempDir dir;
  const auto vocab = dir.path("vocab.json");
  const auto merges = dir.path("merges.txt");
  REQUIRE_THROWS_WITH(GPT2Tokenizer::from_directory(dir.root()),
                      Contains(dir.root()) && Contains("vocab.json + merges.txt"));
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges), Contains(vocab) && Contains("cannot read"));
  std::ofstream(vocab) << "{\"a\": 1";
  std::ofstream(merges) << "#version: 0.2\na b\n";
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges), Contains(vocab) && Contains("not valid JSON"));
  std::ofstream(vocab) << R"({"a": "one"})";
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges), Contains("token 'a' has id '\"one\"'"));
  // An id past the token count would size the decoder table by the id.
  std::ofstream(vocab) << R"({"a": 0, "b": 18446744073709551615})";
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges),
                      Contains("token 'b' has id '18446744073709551615'") && Contains("integers from 0 to 1"));
  std::ofstream(vocab) << R"({"a": 1, "b": 1})";
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges), Contains("tokens 'a' and 'b' share id 1"));
  // A value nested 100 000 deep must get this message, not overflow the stack.
  std::ofstream(vocab) << "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  REQUIRE_THROWS_AS(GPT2Tokenizer(vocab, merges), accel::FileError);
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges), Contains(vocab) && Contains("nested deeper than 256 levels"));
  std::ofstream(vocab) << R"({"a": 0})";
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges), Contains("has no token for byte 0"));
  // A vocabulary of the 256 byte symbols alone, then a malformed merges line.
  std::ifstream full(bundled_vocabulary_dir() + "/encoder.json");
  std::ofstream(vocab) << full.rdbuf();
  std::ofstream(merges) << "#version: 0.2\nĠ t\nbad line here\n";
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges),
                      Contains(merges) && Contains("line 3: expected two symbols") && Contains("got 'bad line here'"));
  std::ofstream(merges) << "#version: 0.2\n" + std::string(1 << 20, 'x') + "\n";
  REQUIRE_THROWS_WITH(GPT2Tokenizer(vocab, merges), Contains("(1048576 bytes in all)"));
}
