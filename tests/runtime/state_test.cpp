// PartialState itself: the job of one, ordering helpers, bad input, and peers that go missing.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <sstream>
#include <thread>

#include "accel/runtime/group.h"
#include "thread_ranks.h"

using accel::PartialState;
using accel::testing::run_ranks;
using accel::testing::values_of;

TEST_CASE("without launcher variables: one process, no group, every operation works locally", "[runtime][state]") {
  accel::PartialStateOptions options;
  options.lookup = [](const std::string&) { return std::optional<std::string>(); };
  const PartialState state(options);
  const PartialState again;  // a second handle shares the first one's state
  CHECK(&state.world() == &again.world());
  CHECK(state.num_processes() == 1);
  CHECK(state.is_main_process());
  CHECK(state.is_last_process());
  CHECK(state.backend() == accel::Backend::kNone);
  CHECK(state.device().is_cpu());
  CHECK_FALSE(state.group().group);
  state.wait_for_everyone();
  CHECK(state.split_between_processes(std::vector<int>{1, 2, 3}, true).items == std::vector<int>{1, 2, 3});
  CHECK(state.gather_object(std::vector<int>{4, 5}) == std::vector<int>{4, 5});
  CHECK(state.gather_object(7) == std::vector<int>{7});
  CHECK(state.broadcast_object(std::string("x")) == "x");
  CHECK(state.gather(torch::ones({2})).size(0) == 2);
  CHECK(state.reduce(torch::ones({2}), accel::ReduceOp::Mean).sum().item<double>() == 2);
  int ran = 0;
  CHECK(state.on_process(0, [&] { ++ran; }));
  CHECK(state.on_process(3, [&] { ++ran; }));  // a job of one runs every process's block
  CHECK(state.on_last_process([&] { ++ran; }));
  state.main_process_first([&] { ++ran; });
  CHECK(ran == 4);
}

TEST_CASE("main_process_first runs the main process's block before everyone else's", "[runtime][state]") {
  for (int world : {2, 4}) {
    std::atomic<int> main_done{0};
    const auto seen = values_of(run_ranks<int>(world, [&](const PartialState& s) {
      int seen_done = -1;
      {
        auto first = s.main_process_first();
        if (s.is_main_process()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          main_done = 1;
        } else {
          seen_done = main_done;
        }
      }
      s.local_main_process_first([&] {
        if (!s.is_local_main_process()) seen_done += main_done;
      });
      return seen_done;
    }));
    for (int r = 1; r < world; ++r) CHECK(seen[r] == 2);
  }
}

TEST_CASE("on_main / on_last / on_process run only there", "[runtime][state]") {
  const auto seen = values_of(run_ranks<std::string>(3, [](const PartialState& s) {
    std::string ran;
    s.on_main_process([&] { ran += "main "; });
    s.on_local_main_process([&] { ran += "local "; });
    s.on_last_process([&] { ran += "last "; });
    s.on_process(1, [&] { ran += "one "; });
    return ran;
  }));
  CHECK(seen == std::vector<std::string>{"main local ", "one ", "last "});
}

TEST_CASE("bad arguments name the value and what is accepted", "[runtime][state][errors]") {
  const auto outcomes = run_ranks<int>(2, [](const PartialState& s) {
    const std::string which = s.is_main_process() ? "on_process" : "broadcast_object";
    if (which == "on_process") s.on_process(2, [] {});
    s.broadcast_object(1, -1);
    return 0;
  });
  CHECK(outcomes[0].error == "on_process: process 2 does not exist; this job has 2 process(es), numbered 0 to 1");
  CHECK(outcomes[1].error ==
        "broadcast_object: process -1 does not exist; this job has 2 process(es), numbered 0 to 1");
  CHECK(outcomes[0].error_type == "UsageError");

  const auto local = run_ranks<int>(1, [](const PartialState& s) {
    s.split_between_processes(std::map<std::string, std::vector<int>>{{"a", {1, 2, 3}}, {"b", {1, 2}}});
    return 0;
  });
  CHECK(local[0].error ==
        "split_between_processes: every value of the map must have the same length, but key 'a' has 3 items and "
        "key 'b' has 2");
  const auto scalar = run_ranks<int>(1, [](const PartialState& s) {
    s.split_between_processes(torch::tensor(3));
    return 0;
  });
  CHECK(scalar[0].error ==
        "split_between_processes: a 0-d tensor (a single value) cannot be split; pass a tensor whose first "
        "dimension indexes the items");
  const auto dim = run_ranks<int>(1, [](const PartialState& s) {
    s.pad_across_processes(torch::ones({2, 2}), 2);
    return 0;
  });
  CHECK(dim[0].error == "pad_across_processes: dim 2 is out of range for a tensor with 2 dimension(s)");
  const auto results = run_ranks<int>(1, [](const PartialState& s) {
    const auto split = s.split_between_processes(std::vector<int>{1, 2});
    s.gather_unpadded(std::vector<int>{1}, split);
    return 0;
  });
  CHECK(results[0].error ==
        "gather_unpadded: got 1 results for a split of 2 items; pass exactly one result per item of the split "
        "(padding included)");
}

TEST_CASE("tensors that disagree across ranks fail on every rank with both shapes", "[runtime][state][errors]") {
  const auto outcomes = run_ranks<int>(2, [](const PartialState& s) {
    s.gather(torch::zeros({2, s.is_main_process() ? 3 : 4}));
    return 0;
  });
  for (const auto& o : outcomes) {
    CHECK(o.error == "gather: rank 1 passed a Float tensor of shape [2, 4] but rank 0 passed a Float tensor of "
                     "shape [2, 3]; the dtype and every dimension except dim 0 must agree across ranks");
  }
  const auto types = run_ranks<int>(2, [](const PartialState& s) {
    if (s.is_main_process()) s.gather_object(std::string("text"));
    else s.gather_object(3.5);
    return 0;
  });
  CHECK(types[0].error_type == "PeerError");
  CHECK_THAT(types[0].error, Catch::Contains("rank 1 sent an object that does not decode"));
}

TEST_CASE("a rank that never reaches a collective is named within the timeout", "[runtime][state][errors]") {
  // Rank 2 stays alive but never calls the gather: the others time out and say who is missing.
  const auto outcomes = run_ranks<int>(
      3,
      [](const PartialState& s) {
        s.wait_for_everyone();
        if (s.process_index() == 2) {
          std::this_thread::sleep_for(std::chrono::milliseconds(2500));
          return 0;
        }
        s.gather_object(s.process_index());
        return 1;
      },
      std::chrono::milliseconds(800));
  for (int r : {0, 1}) {
    INFO("rank " << r);
    CHECK(outcomes[r].error_type == "PeerError");
    CHECK_THAT(outcomes[r].error, Catch::StartsWith("gather_object (collective #2) failed on rank " +
                                                    std::to_string(r) +
                                                    ": rank 2 (last seen in #1 wait_for_everyone) never reached it"));
  }
}

TEST_CASE("a rank that leaves mid-job makes the others fail, not hang", "[runtime][state][errors]") {
  // Rank 1 returns (its group closes its connections) while the others gather.
  const auto outcomes = run_ranks<int>(
      4,
      [](const PartialState& s) {
        s.wait_for_everyone();
        if (s.process_index() == 1) return 0;
        s.gather_object(std::vector<int>(1000, s.process_index()));
        s.wait_for_everyone();
        return 1;
      },
      std::chrono::seconds(3));
  for (int r : {0, 2, 3}) {
    INFO("rank " << r);
    CHECK(outcomes[r].error_type == "PeerError");
    // A live rank that was merely slower to enter the gather may be listed beside rank 1.
    CHECK_THAT(outcomes[r].error, Catch::Contains("rank 1 (last seen in #1 wait_for_everyone)") &&
                                      Catch::Contains("never reached it"));
  }
}

namespace {
void count_sigpipe(int) {}
}  // namespace

TEST_CASE("a group of several ranks ignores SIGPIPE unless the job handles it", "[runtime][state][errors]") {
  // A peer that closes its sockets must give a PeerError, not kill this process with SIGPIPE.
  ::signal(SIGPIPE, SIG_DFL);
  run_ranks<int>(2, [](const PartialState&) { return 0; });
  struct sigaction now {};
  ::sigaction(SIGPIPE, nullptr, &now);
  CHECK(now.sa_handler == SIG_IGN);

  ::signal(SIGPIPE, count_sigpipe);
  run_ranks<int>(2, [](const PartialState&) { return 0; });
  ::sigaction(SIGPIPE, nullptr, &now);
  CHECK(now.sa_handler == count_sigpipe);
  ::signal(SIGPIPE, SIG_IGN);
}

TEST_CASE("print joins its arguments with spaces on the local main process only", "[runtime][state]") {
  // Issue 11, point 6: as accelerate's PartialState.print (Python's print(*args)).
  std::ostringstream captured;
  auto* saved = std::cout.rdbuf(captured.rdbuf());
  const auto outcomes = run_ranks<int>(3, [](const PartialState& s) {
    s.print("rank", s.process_index(), "of", s.num_processes(), 2.5);
    return 0;
  });
  std::cout.rdbuf(saved);
  for (const auto& o : outcomes) CHECK(o.error.empty());
  CHECK(captured.str() == "rank 0 of 3 2.5\n");
}

TEST_CASE("the decorator forms wrap a callable that runs only on its process", "[runtime][state]") {
  struct Seen {
    bool main_ran, last_ran, local_ran;
    std::optional<int> one;
  };
  const auto seen = values_of(run_ranks<Seen>(3, [](const PartialState& s) {
    auto on_main = s.main_process_only([] {});
    auto on_last = s.last_process_only([] {});
    auto on_local = s.local_main_process_only([] {});
    auto on_one = s.process_only(1, [](int x) { return x * 2; });
    return Seen{on_main(), on_last(), on_local(), on_one(21)};
  }));
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r);
    CHECK(seen[r].main_ran == (r == 0));
    CHECK(seen[r].local_ran == (r == 0));
    CHECK(seen[r].last_ran == (r == 2));
    CHECK(seen[r].one == (r == 1 ? std::optional<int>(42) : std::nullopt));
  }
  const auto bad = run_ranks<int>(2, [](const PartialState& s) {
    s.process_only(5, [] {});
    return 0;
  });
  CHECK(bad[0].error == "process_only: process 5 does not exist; this job has 2 process(es), numbered 0 to 1");
}

TEST_CASE("debug mode: ranks in different collectives fail on every rank, naming both", "[runtime][state][errors]") {
  // Issue 11, point 8: ACCELERATE_DEBUG_MODE turns on accelerate's checks before collectives.
  const auto outcomes = run_ranks<int>(2, [](const PartialState& s) {
    const auto debug = PartialState::over_group(s.group(), true);
    debug.gather(torch::ones({2, 3}));  // the same on both ranks: passes
    if (debug.is_main_process()) debug.gather(torch::ones({2}));
    else debug.reduce(torch::ones({2}));
    return 0;
  });
  for (const auto& o : outcomes) {
    CHECK(o.error_type == "UsageError");
    CHECK(o.error == "debug mode: collective #3 is gather on rank 0 but reduce on rank 1; every rank must call the "
                     "same collectives in the same order");
  }
}

TEST_CASE("the state prints as accelerate's, and destroy_process_group ends its collectives", "[runtime][state]") {
  const auto outcomes = run_ranks<std::string>(2, [](const PartialState& s) {
    const auto own = PartialState::over_group(s.group());
    const auto text = own.to_string();
    own.wait_for_everyone();
    own.destroy_process_group();
    own.wait_for_everyone();
    return text;
  });
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r);
    CHECK(outcomes[r].error == "wait_for_everyone: the process group was destroyed (destroy_process_group()); no "
                               "collective may follow it");
  }
  const auto texts = values_of(run_ranks<std::string>(2, [](const PartialState& s) {
    std::ostringstream out;
    out << s;
    return out.str() + accel::to_string(s.distributed_type());
  }));
  CHECK_THAT(texts[1], Catch::StartsWith("Distributed environment: MULTI_CPU  Backend: gloo\nNum processes: 2\n"
                                         "Process index: 1\nLocal process index: 1\nDevice: cpu\n") &&
                           Catch::Contains("Mixed precision: no\nDebug: false\n") && Catch::EndsWith("MULTI_CPU"));
}

TEST_CASE("a process-order guard's finish throws for a peer that never arrives, its destructor only reports it", "[runtime][state][errors]") {
  // Rank 1 stays alive but never takes its side of the guard, so rank 0's wait at the end times out.
  const auto body = [](bool finish_explicitly) {
    return [finish_explicitly](const PartialState& s) {
      s.wait_for_everyone();
      if (s.process_index() == 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2500));
        return 0;
      }
      auto first = s.main_process_first();
      if (finish_explicitly) first.finish();
      return 1;
    };
  };
  const auto thrown = run_ranks<int>(2, body(true), std::chrono::milliseconds(800));
  CHECK(thrown[0].error_type == "PeerError");
  CHECK_THAT(thrown[0].error, Catch::Contains("rank 1 (last seen in #1 wait_for_everyone) never reached it"));

  std::ostringstream captured;
  auto* const original = std::cerr.rdbuf(captured.rdbuf());
  const auto reported = run_ranks<int>(2, body(false), std::chrono::milliseconds(800));
  std::cerr.rdbuf(original);
  CHECK(reported[0].error.empty());  // the destructor did not throw
  CHECK(reported[0].value == 1);
  CHECK_THAT(captured.str(), Catch::StartsWith("accel: the wait at the end of a main_process_first block failed (call "
                                               "finish() to catch it): ") &&
                                 Catch::Contains("rank 1 (last seen in #1 wait_for_everyone) never reached it"));
}

TEST_CASE("NCCL only when each local rank has a GPU of its own, Gloo otherwise", "[runtime][state]") {
  using accel::runtime::nccl_suits;
  const bool nccl_if_built = accel::runtime::nccl_available();
  CHECK_FALSE(nccl_suits(/*cuda=*/false, 2, 0));
  CHECK_FALSE(nccl_suits(/*cuda=*/false, 2, 8));  // --cpu on a GPU machine
  CHECK(nccl_suits(/*cuda=*/true, 2, 2) == nccl_if_built);
  CHECK(nccl_suits(/*cuda=*/true, 1, 4) == nccl_if_built);
  // Two processes sharing one GPU (gpu-check's pipeline step): NCCL would refuse them.
  CHECK_FALSE(nccl_suits(/*cuda=*/true, 2, 1));
  CHECK_FALSE(nccl_suits(/*cuda=*/true, 5, 4));
}
