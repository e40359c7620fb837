#include <catch2/catch.hpp>

#include "accel/core/error.h"
#include "accel/runtime/split.h"

using accel::plan_split;

namespace {
std::vector<std::size_t> counts(std::size_t total, int world, bool pad) {
  std::vector<std::size_t> out;
  for (int r = 0; r < world; ++r) out.push_back(pad ? plan_split(total, world, r, true).padded : plan_split(total, world, r, false).count);
  return out;
}
}  // namespace

TEST_CASE("plan_split follows accelerate's rule: the first n % world ranks get one more", "[runtime][split]") {
  CHECK(counts(3, 2, false) == std::vector<std::size_t>{2, 1});
  CHECK(counts(17, 4, false) == std::vector<std::size_t>{5, 4, 4, 4});
  CHECK(counts(1, 2, false) == std::vector<std::size_t>{1, 0});
  CHECK(counts(0, 3, false) == std::vector<std::size_t>{0, 0, 0});
  CHECK(counts(3, 2, true) == std::vector<std::size_t>{2, 2});
  CHECK(counts(1, 7, true) == std::vector<std::size_t>(7, 1));
  CHECK(counts(0, 3, true) == std::vector<std::size_t>{0, 0, 0});
  CHECK(plan_split(17, 4, 2, false).start == 9);
  CHECK(plan_split(1, 2, 1, false).start == 1);
}

TEST_CASE("plan_split covers every item exactly once, in order", "[runtime][split]") {
  for (int world : {1, 2, 3, 4, 7}) {
    for (std::size_t total : {0, 1, 2, 6, 7, 8, 50}) {
      std::size_t next = 0;
      for (int r = 0; r < world; ++r) {
        const auto p = plan_split(total, world, r, false);
        CHECK(p.start == next);
        next += p.count;
      }
      CHECK(next == total);
    }
  }
}

TEST_CASE("plan_split rejects a rank outside the world", "[runtime][split]") {
  CHECK_THROWS_WITH(plan_split(3, 2, 2, false), "plan_split: rank 2 is not in a world of 2");
}
