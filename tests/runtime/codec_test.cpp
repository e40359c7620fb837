#include <catch2/catch.hpp>

#include "accel/runtime/json_codec.h"
#include "accel/runtime/object_codec.h"

using accel::decode;
using accel::encode;

TEST_CASE("object codec round-trips nested values", "[runtime][codec]") {
  // Double parentheses: Catch cannot print these types, only compare them.
  using Nested = std::map<std::string, std::vector<std::optional<double>>>;
  const Nested value{{"a", {1.5, std::nullopt}}, {"", {}}};
  CHECK((decode<Nested>(encode(value), 0) == value));
  using Pairs = std::vector<std::pair<int, std::string>>;
  const Pairs pairs{{1, "x"}, {-2, std::string(1000, 'y')}};
  CHECK((decode<Pairs>(encode(pairs), 0) == pairs));
  const std::vector<bool> flags{true, false, true};
  CHECK(decode<std::vector<bool>>(encode(flags), 0) == flags);
  const nlohmann::json j = {{"prompt", "a dog"}, {"scores", {1, 2.5, nullptr}}};
  CHECK(decode<nlohmann::json>(encode(j), 0) == j);
}

TEST_CASE("bytes of another type are a PeerError naming the sender", "[runtime][codec]") {
  const auto bytes = encode(std::string("hello"));
  const std::string expected =
      "rank 3 sent an object that does not decode as the type this rank expects; every rank must pass the same type "
      "to gather_object / broadcast_object";
  CHECK_THROWS_AS(decode<std::vector<std::string>>(bytes, 3), accel::PeerError);
  CHECK_THROWS_WITH(decode<std::vector<std::string>>(bytes, 3), expected);
  CHECK_THROWS_WITH(decode<int>(bytes, 3), expected);  // trailing bytes left over
  CHECK_THROWS_WITH(decode<double>(accel::Bytes{1, 2}, 3), expected);  // too short
}
