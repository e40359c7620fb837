// One rank of a multi-process runtime test or benchmark, started with launcher variables.
//   runtime_worker die-in-gather R         rank R exits (status 3) instead of joining a gather
//   runtime_worker form | form-c10d        prints when this rank began and finished forming the group
//                                          (form-c10d: c10d's own connect retry, the baseline)
//   runtime_worker gather-bench N BYTES ROUNDS   gather_object throughput, printed by rank 0
//   runtime_worker describe               prints the state and the compute dtype it chose
//   runtime_worker distribute N SLOW_MS    pulls N items (rank 0 spends SLOW_MS on each, the others
//                                          1 ms); prints the items this rank took and whether
//                                          distribute(items, fn) gave every item in input order
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "accel/core/error.h"
#include "accel/runtime/partial_state.h"

namespace {

long long now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int form(bool poll) {
  const auto begin = now_us();
  accel::PartialStateOptions options;
  options.poll_before_connect = poll;
  const accel::PartialState state(options);
  const auto end = now_us();
  std::printf("formed rank %d begin_us %lld end_us %lld\n", state.process_index(), begin, end);
  return 0;
}

int die_in_gather(int victim) {
  const accel::PartialState state;
  state.wait_for_everyone();
  if (state.process_index() == victim) ::_exit(3);
  const auto all = state.gather_object(state.process_index());
  std::printf("rank %d gathered %zu values\n", state.process_index(), all.size());
  return 0;
}

int gather_bench(int items, int bytes, int rounds) {
  const accel::PartialState state;
  const std::vector<std::string> mine(items, std::string(bytes, 'x'));
  state.gather_object(mine);  // warm-up: first use of every connection
  state.wait_for_everyone();
  const auto begin = std::chrono::steady_clock::now();
  std::size_t received = 0;
  for (int i = 0; i < rounds; ++i) received += state.gather_object(mine).size();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  const double mb = static_cast<double>(received) * bytes / rounds / 1e6;
  state.print("gather_object world", state.num_processes(), "items/rank", items, "bytes/item", bytes, "ms/round",
              seconds * 1000 / rounds, "MB/s", mb * rounds / seconds);
  return 0;
}

int distribute(int items, int slow_ms) {
  const accel::PartialState state;
  const auto pause = std::chrono::milliseconds(state.is_main_process() ? slow_ms : 1);
  std::vector<int> input(items);
  for (int i = 0; i < items; ++i) input[i] = i;
  std::size_t taken = 0;
  const auto squares = state.distribute(input, [&](int i) {
    std::this_thread::sleep_for(pause);
    ++taken;
    return i * i;
  });
  bool in_order = squares.size() == input.size();
  for (int i = 0; in_order && i < items; ++i) in_order = squares[i] == i * i;
  std::printf("rank %d took %zu items; results in input order: %s\n", state.process_index(), taken,
              in_order ? "yes" : "no");
  return in_order ? 0 : 1;
}

int describe() {
  const accel::PartialState state;
  std::cout << state << "compute dtype: " << c10::toString(state.compute_dtype()) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "form" || mode == "form-c10d") return form(mode == "form");
    if (mode == "describe") return describe();
    if (mode == "distribute" && argc == 4) return distribute(std::stoi(argv[2]), std::stoi(argv[3]));
    if (mode == "die-in-gather" && argc == 3) return die_in_gather(std::stoi(argv[2]));
    if (mode == "gather-bench" && argc == 5) return gather_bench(std::stoi(argv[2]), std::stoi(argv[3]), std::stoi(argv[4]));
    std::cerr << "usage: runtime_worker form | form-c10d | describe | die-in-gather RANK | gather-bench ITEMS BYTES ROUNDS | distribute N SLOW_MS\n";
    return accel::kExitUsage;
  } catch (const accel::Error& e) {
    std::cerr << "runtime_worker: error: " << e.what() << "\n";
    return e.exit_code();
  }
}
