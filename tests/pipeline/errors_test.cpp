// Bad input fails on every rank with the same message, before any transfer; failures during a
// call name the failing rank everywhere and never hang.
#include <catch2/catch.hpp>

#include "accel/core/error.h"
#include "accel/pipeline/adapters.h"
#include "accel/pipeline/pipeline.h"
#include "harness.h"

using namespace accel::pipeline;
using namespace accel::pipeline::testing;

namespace {

// Every rank throws a UsageError containing `expected`.
void expect_usage_error_everywhere(int world, const std::function<void(accel::runtime::GroupHandle&)>& fn,
                                   const std::string& expected) {
  auto errors = run_ranks(world, fn);
  for (int r = 0; r < world; ++r) {
    INFO("rank " << r << ": " << message_of(errors[r]));
    REQUIRE(errors[r]);
    CHECK_THROWS_AS(std::rethrow_exception(errors[r]), accel::UsageError);
    CHECK_THAT(message_of(errors[r]), Catch::Contains(expected));
  }
}

}  // namespace

TEST_CASE("more processes than blocks is refused on every rank") {
  const ToyModel model(1);  // embed, h.0, head
  expect_usage_error_everywhere(
      4, [&](auto& group) { prepare(model, toy_batch(2, 4, 1), quiet("auto", 2), group); },
      "the model has 3 block(s) but there are 4 processes: every process needs a stage of at least one block, so "
      "run with at most 3 processes");
}

TEST_CASE("split points that are not blocks are refused on every rank with a suggestion") {
  const ToyModel model(4);
  expect_usage_error_everywhere(
      2, [&](auto& group) { prepare(model, toy_batch(2, 4, 1), quiet(SplitPoints::at({"h3"}), 2), group); },
      "split point 'h3' is not a block of this model (did you mean 'h.3'?); its blocks are: embed, h.0, h.1, h.2, "
      "h.3, head");
}

TEST_CASE("split points in the wrong number or order, and bad counts, are refused") {
  const ToyModel model(4);
  expect_usage_error_everywhere(
      3, [&](auto& group) { prepare(model, toy_batch(2, 4, 1), quiet(SplitPoints::at({"h.2"}), 2), group); },
      "but 3 processes need exactly 2: the first block of each stage after the first");
  expect_usage_error_everywhere(
      3, [&](auto& group) { prepare(model, toy_batch(2, 4, 1), quiet(SplitPoints::at({"h.3", "h.1"}), 2), group); },
      "split point 'h.1' must come after 'h.3' in block order");
  expect_usage_error_everywhere(
      2, [&](auto& group) { prepare(model, toy_batch(2, 4, 1), quiet(SplitPoints::counts({6, 0}), 2), group); },
      "split_points block counts (6,0) leave a stage empty");
  expect_usage_error_everywhere(
      2, [&](auto& group) { prepare(model, toy_batch(2, 4, 1), quiet(SplitPoints::counts({2, 2}), 2), group); },
      "split_points block counts (2,2) add up to 4 but the model has 6 blocks");
}

TEST_CASE("num_chunks below 1 is refused on every rank") {
  const ToyModel model(2);
  for (int chunks : {0, -3}) {
    expect_usage_error_everywhere(
        2, [&](auto& group) { prepare(model, toy_batch(2, 4, 1), quiet("auto", chunks), group); },
        "num_chunks = " + std::to_string(chunks) + " is not allowed: it is the number of micro-batches per batch");
  }
}

TEST_CASE("an example input the model rejects is reported on every rank, naming the block and rank") {
  SECTION("rejected by the first stage") {
    const ToyModel model(3);
    expect_usage_error_everywhere(
        3, [&](auto& group) { prepare(model, toy_batch(2, 20, 1), quiet("parameters", 2), group); },
        "prepare(): the trial run of the example inputs failed: block 'embed' (rank 0, stage 0) failed on batch 0, "
        "micro-batch 0: sequence longer than 16 positions");
  }
  SECTION("rejected by a middle stage") {
    torch::nn::Sequential sequential(torch::nn::Linear(8, 12), torch::nn::Linear(16, 16), torch::nn::Tanh(),
                                     torch::nn::Linear(16, 4));
    const SequentialModel model(sequential);
    expect_usage_error_everywhere(
        3,
        [&](auto& group) {
          prepare(model, {torch::randn({2, 8})}, quiet(SplitPoints::counts({1, 1, 2}), 2), group);
        },
        "block '1' (rank 1, stage 1) failed on batch 0, micro-batch 0: mat1 and mat2 shapes cannot be multiplied");
  }
}

TEST_CASE("a rank whose inputs are refused fails the call on every rank, and the next call returns its own batch") {
  // Issue 11, bug 1: the refused rank used to throw alone and return rank 0's stale batch on its
  // next call. `refusing` is the rank that passes no tensors to the first call.
  const ToyModel model(3);
  const auto first_batch = toy_batch(5, 4, 20);
  const auto second_batch = toy_batch(4, 4, 21);
  for (auto [world, refusing] : {std::pair{2, 1}, std::pair{3, 1}, std::pair{3, 0}}) {
    INFO("world " << world << ", rank " << refusing << " refused");
    std::vector<std::string> messages(world);
    std::vector<Activations> after(world);
    auto errors = run_ranks(world, [&](accel::runtime::GroupHandle& group) {
      auto pipe = prepare(model, toy_batch(2, 4, 1), quiet("parameters", 2), group);
      try {
        pipe.forward(group.rank == refusing ? Activations{} : first_batch);
      } catch (const accel::Error& e) {
        messages[group.rank] = e.what();
      }
      after[group.rank] = pipe.forward(second_batch);
    });
    expect_no_errors(errors);
    const std::string cause = "forward(): the batch holds no tensors; pass at least one input tensor";
    for (int r = 0; r < world; ++r) {
      INFO("rank " << r);
      CHECK(messages[r] == (r == refusing ? cause
                                          : "rank " + std::to_string(r) + " stopped because rank " +
                                                std::to_string(refusing) + " failed: " + cause));
    }
    REQUIRE(after[world - 1].size() == 2);
    CHECK(after[world - 1][0].size(0) == 4);
    CHECK(all_close(after[world - 1], run_whole(model, second_batch)));
  }
}

TEST_CASE("a rank whose batch has other rows than rank 0's fails the call on every rank") {
  const ToyModel model(3);
  std::vector<std::string> messages(3);
  auto errors = run_ranks(3, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(model, toy_batch(2, 4, 1), quiet("parameters", 2), group);
    try {
      pipe.forward(toy_batch(group.rank == 2 ? 5 : 4, 4, 30));
    } catch (const accel::Error& e) {
      messages[group.rank] = e.what();
    }
  });
  expect_no_errors(errors);
  const std::string cause = "rank 2's batch 0 has 5 rows but rank 0's has 4; every rank must pass the same inputs";
  CHECK(messages[2] == cause);
  CHECK(messages[0] == "rank 0 stopped because rank 2 failed: " + cause);
  CHECK(messages[1] == "rank 1 stopped because rank 2 failed: " + cause);
}

TEST_CASE("inputs whose batch sizes disagree are refused before anything is sent") {
  const ToyModel model(2);
  auto errors = run_ranks(2, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(model, toy_batch(2, 4, 1), quiet("parameters", 2), group);
    pipe.forward({torch::ones({4, 3}, torch::kInt64), torch::ones({5, 3}, torch::kInt64)});
  });
  for (int r = 0; r < 2; ++r) {
    CHECK_THAT(message_of(errors[r]),
               Catch::Equals("forward(): the batch: input 1 has 5 rows in dim 0 but input 0 has 4; every input is cut "
                             "into micro-batches along dim 0"));
  }
}

TEST_CASE("a block that fails mid-call names its rank on every rank, and the next call works") {
  const ToyModel model(4);
  auto poisoned = toy_batch(6, 4, 50);
  poisoned[1][4][0] = 7;  // row 4 lands in micro-batch 1 of 2
  const auto good = toy_batch(6, 4, 51);
  std::vector<std::string> messages(3);
  std::vector<bool> peer_error(3, false);
  std::vector<Activations> after(3);
  auto errors = run_ranks(3, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(model, toy_batch(2, 4, 1), quiet(SplitPoints::counts({1, 2, 3}), 2), group);
    try {
      pipe.forward(poisoned);
    } catch (const accel::PeerError& e) {
      peer_error[group.rank] = true;
      messages[group.rank] = e.what();
    } catch (const accel::Error& e) {
      messages[group.rank] = e.what();
    }
    after[group.rank] = pipe.forward(good);
  });
  const std::string cause = "block 'h.0' (rank 1, stage 1) failed on batch 0, micro-batch 1: poisoned row";
  expect_no_errors(errors);
  CHECK(messages[1] == cause);
  CHECK_FALSE(peer_error[1]);
  CHECK(messages[0] == "rank 0 stopped because rank 1 failed: " + cause);
  CHECK(messages[2] == "rank 2 stopped because rank 1 failed: " + cause);
  CHECK(peer_error[0]);
  CHECK(peer_error[2]);
  CHECK(all_close(after[2], run_whole(model, good)));
}

TEST_CASE("a rank that goes away makes its neighbours fail with an error naming it") {
  const ToyModel model(4);
  std::vector<std::string> messages(3);
  std::atomic<bool> rank1_gone{false};
  auto errors = run_ranks(
      3,
      [&](accel::runtime::GroupHandle& group) {
        std::optional<Pipeline> pipe = prepare(model, toy_batch(2, 4, 1), quiet("parameters", 2), group);
        if (group.rank == 1) {
          pipe.reset();
          group.group.reset();  // the last reference: the Gloo group closes its connections
          rank1_gone = true;
          return;
        }
        while (!rank1_gone) std::this_thread::yield();
        try {
          pipe->forward(toy_batch(4, 4, 2));
        } catch (const accel::PeerError& e) {
          messages[group.rank] = e.what();
        }
      },
      std::chrono::seconds(30));
  // Rank 0 hears it from the broken connection to rank 1, or from rank 2 if that comes first.
  CHECK_THAT(messages[2], Catch::StartsWith("rank 2 could not receive from rank 1"));
  CHECK_THAT(messages[0], Catch::Contains("rank 1"));
}

TEST_CASE("a rank that stops answering makes the others fail after the group timeout, naming it") {
  const ToyModel model(4);
  std::vector<std::string> messages(3);
  std::atomic<int> finished{0};
  auto errors = run_ranks(
      3,
      [&](accel::runtime::GroupHandle& group) {
        auto pipe = prepare(model, toy_batch(2, 4, 1), quiet("parameters", 2), group);
        if (group.rank == 1) {
          while (finished < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
          return;
        }
        try {
          pipe.forward(toy_batch(4, 4, 2));
        } catch (const accel::PeerError& e) {
          messages[group.rank] = e.what();
        }
        ++finished;
      },
      std::chrono::milliseconds(1500));
  // A Gloo timeout closes every connection of the rank that timed out, so rank 0, waiting for the
  // last rank, sees rank 2 go away; rank 2's report in the store names rank 1 (issue 11, bug 3).
  const std::string cause = "rank 2 could not receive from rank 1: rank 1 failed, exited or stopped answering within the 1.5 s timeout";
  CHECK_THAT(messages[2], Catch::StartsWith(cause));
  CHECK_THAT(messages[0], Catch::StartsWith("rank 0 could not receive from rank 2, which had failed itself: " + cause));
}
