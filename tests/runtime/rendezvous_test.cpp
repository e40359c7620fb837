#include <catch2/catch.hpp>
#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include "accel/core/error.h"
#include "accel/runtime/rendezvous.h"

using namespace accel::runtime;

TEST_CASE("ranks_behind names the ranks that did not reach an operation, and where they were", "[runtime][rdzv]") {
  auto store = c10::make_intrusive<::c10d::HashStore>();
  record_progress(*store, 0, 4, "gather_object");
  record_progress(*store, 1, 3, "broadcast");
  record_progress(*store, 3, 4, "gather_object");
  CHECK(ranks_behind(*store, 4, 4) ==
        std::vector<std::string>{"rank 1 (last seen in #3 broadcast)", "rank 2 (never joined)"});
  CHECK(ranks_behind(*store, 4, 3) == std::vector<std::string>{"rank 2 (never joined)"});
}

TEST_CASE("the host leaves the store only after the other ranks, or after the grace period", "[runtime][rdzv]") {
  auto store = c10::make_intrusive<::c10d::HashStore>();
  leave_store(*store, 1, false, {0, 1, 2}, std::chrono::milliseconds(0));
  leave_store(*store, 2, false, {0, 1, 2}, std::chrono::milliseconds(0));
  CHECK(store->check({"accel/left/1", "accel/left/2"}));
  leave_store(*store, 0, true, {0, 1, 2}, std::chrono::minutes(10));  // returns: both have left
  leave_store(*store, 0, true, {0, 1, 2, 3}, std::chrono::milliseconds(100));  // returns: rank 3 is given up
}

TEST_CASE("the Gloo transport address is the one that routes to MASTER_ADDR", "[runtime][rdzv]") {
  CHECK(local_address_towards("127.0.0.1", 29500) == "127.0.0.1");
  CHECK_THROWS_WITH(local_address_towards("no-such-host.invalid", 29500),
                    Catch::StartsWith("cannot resolve the rendezvous host MASTER_ADDR='no-such-host.invalid'"));
}
