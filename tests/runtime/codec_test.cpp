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

TEST_CASE("hostile bytes are a PeerError, never undefined behaviour or a crash", "[runtime][codec]") {
  const std::string mismatch =
      "rank 2 sent an object that does not decode as the type this rank expects; every rank must pass the same type "
      "to gather_object / broadcast_object";
  // A bool is one byte, 0 or 1: copying a 2 into a bool would be undefined behaviour.
  CHECK(decode<bool>(accel::Bytes{1}, 2));
  CHECK_THROWS_WITH(decode<bool>(accel::Bytes{2}, 2), mismatch);
  // CBOR arrays of one element nested 100 000 deep: nlohmann's reader recurses per level.
  accel::Bytes deep(100000, 0x81);
  deep.push_back(0xF6);
  CHECK_THROWS_AS(decode<nlohmann::json>(encode(deep), 2), accel::PeerError);
  CHECK_THROWS_WITH(decode<nlohmann::json>(encode(deep), 2),
                    "rank 2 sent JSON nested deeper than 256 levels; gather_object / broadcast_object refuse it");
  // Not CBOR at all (0xFF is a stray "break"): our error, not nlohmann's parse_error.
  CHECK_THROWS_WITH(decode<nlohmann::json>(encode(accel::Bytes{0xFF}), 2), mismatch);
  // An array header claiming 7.3e18 elements (found by fuzz/object_codec.cpp).
  CHECK_THROWS_WITH(decode<nlohmann::json>(encode(accel::Bytes{0x9B, 0x66, 0, 0, 0x73, 0x9D, 0x90, 0x8D, 0x9A}), 2),
                    mismatch);
  accel::Bytes at_bound(256, 0x81);
  at_bound.push_back(0xF6);
  CHECK(decode<nlohmann::json>(encode(at_bound), 2).is_array());
}
