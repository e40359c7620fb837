// Work pulled, not split: WorkQueue's arithmetic, and PartialState::distribute over ranks as
// threads (each item to exactly one rank, a slow rank taking fewer, results in input order).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <ostream>
#include <thread>

#include "accel/core/error.h"
#include "accel/runtime/work_queue.h"
#include "thread_ranks.h"

namespace accel {
// For Catch's messages (found by ADL, also from glog's operator<< for vectors).
std::ostream& operator<<(std::ostream& out, const IndexRange& r) { return out << "[" << r.begin << ", " << r.end << ")"; }
}  // namespace accel

using accel::IndexRange;
using accel::PartialState;
using accel::WorkQueue;
using accel::testing::run_ranks;
using accel::testing::values_of;

namespace {

std::vector<IndexRange> drain(WorkQueue& queue) {
  std::vector<IndexRange> out;
  while (const auto range = queue.next()) out.push_back(*range);
  return out;
}

}  // namespace

TEST_CASE("a work queue hands out groups in order, the last one short", "[runtime][distribute]") {
  WorkQueue queue(10, 4, accel::local_counter());
  CHECK(drain(queue) == std::vector<IndexRange>{{0, 4}, {4, 8}, {8, 10}});
  CHECK(queue.claimed() == 10);
  CHECK_FALSE(queue.next());  // stays exhausted

  WorkQueue empty(0, 3, accel::local_counter());
  CHECK_FALSE(empty.next());
  CHECK_THROWS_WITH(WorkQueue(5, 0, accel::local_counter()),
                    Catch::Contains("distribute: group_size must be at least 1, got 0"));
}

TEST_CASE("two queues over one counter share the items between them", "[runtime][distribute]") {
  const auto counter = accel::local_counter();
  WorkQueue a(7, 2, counter), b(7, 2, counter);
  CHECK(a.next() == IndexRange{0, 2});
  CHECK(b.next() == IndexRange{2, 4});
  CHECK(b.next() == IndexRange{4, 6});
  CHECK(a.next() == IndexRange{6, 7});
  CHECK_FALSE(a.next());
  CHECK_FALSE(b.next());
  CHECK(a.claimed() + b.claimed() == 7);
}

TEST_CASE("distribute gives each item to exactly one rank and a slow rank takes fewer", "[runtime][distribute]") {
  constexpr std::size_t kItems = 60;
  const auto taken = values_of(run_ranks<std::vector<std::size_t>>(3, [&](const PartialState& s) {
    auto queue = s.distribute(kItems, 2);
    std::vector<std::size_t> mine;
    while (const auto range = queue.next()) {
      // Rank 0 is five times slower per group than the others.
      std::this_thread::sleep_for(std::chrono::milliseconds(s.process_index() == 0 ? 25 : 5));
      for (auto i = range->begin; i < range->end; ++i) mine.push_back(i);
    }
    return mine;
  }));
  std::vector<std::size_t> all;
  for (const auto& mine : taken) all.insert(all.end(), mine.begin(), mine.end());
  std::sort(all.begin(), all.end());
  std::vector<std::size_t> expected(kItems);
  for (std::size_t i = 0; i < kItems; ++i) expected[i] = i;
  CHECK(all == expected);
  INFO("rank 0 took " << taken[0].size() << ", rank 1 " << taken[1].size() << ", rank 2 " << taken[2].size());
  CHECK(taken[0].size() < taken[1].size());
  CHECK(taken[0].size() < taken[2].size());
}

TEST_CASE("distribute(items, fn) returns every result in input order on every rank", "[runtime][distribute]") {
  std::vector<std::string> words;
  for (int i = 0; i < 23; ++i) words.push_back("w" + std::to_string(i));
  const auto results = values_of(run_ranks<std::vector<std::string>>(2, [&](const PartialState& s) {
    // A second call right after the first is a queue of its own: nothing left over from the first.
    const auto first = s.distribute(words, [&](const std::string& w) { return w + "@" + std::to_string(s.process_index()); }, 3);
    const auto second = s.distribute(words, [](const std::string& w) { return w + "!"; });
    std::vector<std::string> both;
    for (std::size_t i = 0; i < words.size(); ++i) {
      both.push_back(first[i].substr(0, first[i].find('@')));
      both.push_back(second[i]);
    }
    return both;
  }));
  CHECK(results[0] == results[1]);
  for (std::size_t i = 0; i < words.size(); ++i) {
    CHECK(results[0][2 * i] == words[i]);
    CHECK(results[0][2 * i + 1] == words[i] + "!");
  }
}

TEST_CASE("distribute in a job of one takes every item itself", "[runtime][distribute]") {
  accel::PartialStateOptions options;
  options.lookup = [](const std::string&) { return std::optional<std::string>(); };
  const PartialState state(options);
  auto queue = state.distribute(5, 2);
  CHECK(drain(queue) == std::vector<IndexRange>{{0, 2}, {2, 4}, {4, 5}});
  CHECK(state.distribute(std::vector<int>{3, 1, 2}, [](int x) { return x * 10; }) == std::vector<int>{30, 10, 20});
  CHECK_THROWS_AS(state.distribute(3, 0), accel::UsageError);
}

TEST_CASE("a mailbox brings every rank's messages to the main process, each once", "[runtime][distribute]") {
  const auto taken = values_of(run_ranks<std::vector<std::string>>(3, [](const PartialState& s) {
    auto box = s.mailbox("results");
    std::vector<std::string> got;
    for (int i = 0; i < 5; ++i) box.post(std::to_string(s.process_index()) + ":" + std::to_string(i));
    if (!s.is_main_process()) {
      s.wait_for_everyone();
      return got;
    }
    s.wait_for_everyone();  // every rank has posted: one take() gets them all, none twice
    for (auto& m : box.take()) got.push_back(std::move(m));
    for (auto& m : box.take()) got.push_back(std::move(m));
    return got;
  }));
  auto all = taken[0];
  CHECK(all.size() == 15);
  std::sort(all.begin(), all.end());
  CHECK(std::unique(all.begin(), all.end()) == all.end());
  CHECK(all.front() == "0:0");
  CHECK(all.back() == "2:4");
  // Within one rank, messages arrive in the order it posted them.
  std::vector<std::string> from_one;
  for (const auto& m : taken[0]) if (m[0] == '1') from_one.push_back(m);
  CHECK(from_one == std::vector<std::string>{"1:0", "1:1", "1:2", "1:3", "1:4"});
  CHECK(taken[1].empty());
}

TEST_CASE("a mailbox in a job of one is a local queue", "[runtime][distribute]") {
  accel::Mailbox box(accel::local_mailbox_backend(), "x");
  box.post("a");
  box.post("b");
  CHECK(box.take() == std::vector<std::string>{"a", "b"});
  CHECK(box.take().empty());
  box.post("c");
  CHECK(box.take() == std::vector<std::string>{"c"});
}
