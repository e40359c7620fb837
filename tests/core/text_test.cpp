#include <catch2/catch.hpp>

#include "accel/core/text.h"

using namespace accel::text;

TEST_CASE("edit distance and did-you-mean", "[core]") {
  CHECK(edit_distance("num_processes", "num_procesess") == 2);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(closest_match("num_procesess", {"num_machines", "num_processes"}) == std::string("num_processes"));
  CHECK_FALSE(closest_match("zzzzzzzz", {"num_machines", "num_processes"}).has_value());
  CHECK(closest_match("--num_proc", {"--num_machines", "--num_processes", "--num-processes"}) ==
        std::string("--num_processes"));
  CHECK_FALSE(closest_match("--num", {"--num_machines", "--num_processes"}).has_value());  // ambiguous
}

TEST_CASE("parse_integer rejects junk", "[core]") {
  CHECK(parse_integer("42") == 42);
  CHECK(parse_integer(" -3 ") == -3);
  CHECK_FALSE(parse_integer("4x").has_value());
  CHECK_FALSE(parse_integer("").has_value());
  CHECK_FALSE(parse_integer("99999999999999999999999").has_value());
}

TEST_CASE("count: a number and its noun, singular for one", "[core]") {
  CHECK(accel::text::count(1, "worker") == "1 worker");
  CHECK(accel::text::count(0, "prompt") == "0 prompts");
  CHECK(accel::text::count(2, "process", "processes") == "2 processes");
}

TEST_CASE("split, join, trim", "[core]") {
  CHECK(split("0,1,,2", ',') == std::vector<std::string>{"0", "1", "", "2"});
  CHECK(join({"a", "b"}, ", ") == "a, b");
  CHECK(trim("  x y \n") == "x y");
}

#include "accel/core/hardware.h"

TEST_CASE("CUDA_VISIBLE_DEVICES limits and renumbers GPUs as CUDA does", "[core][hardware]") {
  std::vector<accel::hardware::Gpu> all;
  for (int i = 0; i < 4; ++i) all.push_back({i, "GPU" + std::to_string(i), 0, std::to_string(i)});
  const auto kept = accel::hardware::visible_gpus(all, "2, 0");
  REQUIRE(kept.size() == 2);
  CHECK(kept[0].index == 0);
  CHECK(kept[0].name == "GPU2");
  CHECK(kept[0].cuda_id == "2");
  CHECK(kept[1].name == "GPU0");
  CHECK(accel::hardware::visible_gpus(all, "").empty());
  CHECK(accel::hardware::visible_gpus(all, "1,7,2").size() == 1);  // stops at the first id with no GPU
  const auto uuid = accel::hardware::visible_gpus(all, "GPU-8e1a");
  REQUIRE(uuid.size() == 1);
  CHECK(uuid[0].cuda_id == "GPU-8e1a");
}

TEST_CASE("quote bounds and escapes a value for a message", "[core]") {
  CHECK(quote("F99") == "'F99'");
  CHECK(quote("a\nb\x1b") == "'a\\x0Ab\\x1B'");
  const std::string long_value(1 << 20, 'x');
  const std::string quoted = quote(long_value);
  CHECK(quoted == "'" + std::string(80, 'x') + "'... (1048576 bytes in all)");
  // "é" is two bytes: a cut between them would leave half a character.
  CHECK(quote("aé", 2) == "'a'... (3 bytes in all)");
  CHECK(excerpt("parse error; last read: '" + long_value + "'") ==
        "parse error; last read: '" + std::string(175, 'x') + "... (1048602 bytes in all)");
  CHECK(excerpt("short\ttext") == "short\\x09text");
}

TEST_CASE("json_nesting_problem finds nesting past the bound", "[core]") {
  CHECK_FALSE(json_nesting_problem(R"({"a": [1, {"b": [[]]}], "c": "[[[["})").has_value());
  const std::string at_bound = std::string(kMaxJsonNesting, '[') + std::string(kMaxJsonNesting, ']');
  CHECK_FALSE(json_nesting_problem(at_bound).has_value());
  const std::string hostile = "{\"dtype\": " + std::string(100000, '[');
  const auto problem = json_nesting_problem(hostile);
  REQUIRE(problem.has_value());
  CHECK(*problem == "arrays/objects nested deeper than 256 levels (at byte 265); no file of this kind needs that many");
  // Brackets inside strings, escaped quotes included, do not count.
  const std::string in_string = "[\"\\\"" + std::string(1000, '[') + "\"]";
  CHECK_FALSE(json_nesting_problem(in_string).has_value());
}
