#include <catch2/catch.hpp>

#include "accel/core/text.h"

using namespace accel::text;

TEST_CASE("edit distance and did-you-mean", "[core]") {
  CHECK(edit_distance("num_processes", "num_procesess") == 2);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(closest_match("num_procesess", {"num_machines", "num_processes"}) == std::string("num_processes"));
  CHECK_FALSE(closest_match("zzzzzzzz", {"num_machines", "num_processes"}).has_value());
}

TEST_CASE("parse_integer rejects junk", "[core]") {
  CHECK(parse_integer("42") == 42);
  CHECK(parse_integer(" -3 ") == -3);
  CHECK_FALSE(parse_integer("4x").has_value());
  CHECK_FALSE(parse_integer("").has_value());
  CHECK_FALSE(parse_integer("99999999999999999999999").has_value());
}

TEST_CASE("split, join, trim", "[core]") {
  CHECK(split("0,1,,2", ',') == std::vector<std::string>{"0", "1", "", "2"});
  CHECK(join({"a", "b"}, ", ") == "a, b");
  CHECK(trim("  x y \n") == "x y");
}
