// The job `accel-launch test` runs: exercises the runtime across the launched processes and
// checks every result on every rank. Exit 0 with one success line from the main process, or
// non-zero with a message naming the rank and the check that failed.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "accel/core/error.h"
#include "accel/runtime/partial_state.h"

namespace {

template <class T>
std::string show(const std::vector<T>& v) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

class Checker {
 public:
  explicit Checker(const accel::PartialState& state) : rank_(state.process_index()) {}
  template <class A, class B>
  void equal(const char* what, const A& got, const B& expected) const {
    if (!(got == expected)) fail(what, show_value(got), show_value(expected));
  }

 private:
  template <class T>
  static std::string show_value(const T& v) {
    if constexpr (std::is_same_v<T, torch::Tensor>) {
      std::ostringstream os;
      os << v.flatten();
      return os.str();
    } else if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
      std::ostringstream os;
      os << v;
      return os.str();
    } else {
      return show(v);
    }
  }
  [[noreturn]] void fail(const char* what, const std::string& got, const std::string& expected) const {
    throw accel::Error("check failed on rank " + std::to_string(rank_) + ": " + what + ": got " + got + ", expected " +
                       expected);
  }
  int rank_;
};

bool same(const torch::Tensor& a, const torch::Tensor& b) { return a.sizes() == b.sizes() && a.equal(b); }

void check_ordering(const accel::PartialState& state, const Checker& check) {
  // main_process_first: the main process writes a marker that the other ranks on its machine
  // must then see (ranks on other machines do not share its temp directory).
  const auto marker = std::filesystem::temp_directory_path() /
                      ("accel-test-job-" + std::to_string(state.broadcast_object(static_cast<long>(::getpid()))));
  {
    auto first = state.main_process_first();
    if (state.is_main_process()) {
      std::ofstream(marker) << "ready";
    } else if (state.world().node_rank == 0) {
      check.equal("main_process_first: the main process had run first", std::filesystem::exists(marker), true);
    }
    first.finish();
  }
  state.wait_for_everyone();
  state.on_main_process([&] { std::filesystem::remove(marker); });

  int ran = 0;
  state.on_main_process([&] { ran |= 1; });
  state.on_last_process([&] { ran |= 2; });
  state.on_process(state.num_processes() - 1, [&] { ran |= 4; });
  state.on_local_main_process([&] { ran |= 8; });
  const int expected = (state.is_main_process() ? 1 : 0) | (state.is_last_process() ? 6 : 0) |
                       (state.is_local_main_process() ? 8 : 0);
  check.equal("on_main/on_last/on_process/on_local_main ran where expected", ran, expected);
  check.equal("exactly one main process",
              state.reduce(torch::tensor({state.is_main_process() ? 1 : 0}), accel::ReduceOp::Sum).item<int>(), 1);
}

void check_split_and_gather(const accel::PartialState& state, const Checker& check) {
  const int n = state.num_processes();
  const int rank = state.process_index();
  // 2n + 1 items: uneven on every world size, so padding is exercised.
  std::vector<std::string> prompts;
  for (int i = 0; i < 2 * n + 1; ++i) prompts.push_back("prompt " + std::to_string(i));

  const auto plain = state.split_between_processes(prompts);
  const std::size_t expected_len = 2 + (rank == 0 ? 1 : 0);
  check.equal("split_between_processes: items on this rank", plain.items.size(), expected_len);
  check.equal("split_between_processes: first item", plain.items.front(), prompts[plain.start]);
  check.equal("gather_object of the splits restores the input", state.gather_object(plain.items), prompts);

  const auto padded = state.split_between_processes(prompts, /*apply_padding=*/true);
  check.equal("split with padding: every rank has the longest share", padded.items.size(), std::size_t{3});
  check.equal("split with padding: real items", padded.num_real, expected_len);
  if (padded.padded()) {
    check.equal("padding repeats the input's last item (accelerate's inputs[-1])", padded.items.back(), prompts.back());
  }
  check.equal("gather_unpadded drops exactly the padding", state.gather_unpadded(padded.items, padded), prompts);

  std::vector<int> ranks;
  for (int r = 0; r < n; ++r) ranks.push_back(r);
  check.equal("gather_object of one value per rank", state.gather_object(rank), ranks);

  const auto rows = torch::full({rank + 1, 2}, rank, torch::kLong);
  std::vector<torch::Tensor> expected_rows;
  for (int r = 0; r < n; ++r) expected_rows.push_back(torch::full({r + 1, 2}, r, torch::kLong));
  check.equal("gather of uneven tensors", same(state.gather(rows), torch::cat(expected_rows)), true);

  const auto from_last = state.broadcast(torch::arange(4) * (rank + 1), n - 1);
  check.equal("broadcast from the last process", same(from_last, torch::arange(4) * n), true);
  check.equal("broadcast_object from the main process", state.broadcast_object(std::string("hello from ") +
                                                                                   std::to_string(rank)),
              std::string("hello from 0"));

  const auto value = torch::tensor({static_cast<double>(rank)});
  check.equal("reduce sum", state.reduce(value, accel::ReduceOp::Sum).item<double>(), n * (n - 1) / 2.0);
  check.equal("reduce mean", state.reduce(value, accel::ReduceOp::Mean).item<double>(), (n - 1) / 2.0);
  check.equal("reduce max", state.reduce(value, accel::ReduceOp::Max).item<double>(), n - 1.0);
  check.equal("reduce min", state.reduce(value, accel::ReduceOp::Min).item<double>(), 0.0);
  check.equal("pad_across_processes", state.pad_across_processes(torch::ones({rank + 1})).size(0),
              static_cast<std::int64_t>(n));
}

}  // namespace

int main() {
  try {
    accel::PartialState state;
    const Checker check(state);
    check_ordering(state, check);
    check_split_and_gather(state, check);
    state.wait_for_everyone();
    state.print("accel-test-job: all checks passed on", state.num_processes(),
                "process(es) (launcher " + state.world().launcher + ", backend " + accel::to_string(state.backend()) + ", device " +
                    state.device().str() + ")");
    return 0;
  } catch (const accel::Error& e) {
    std::cerr << "accel-test-job: error: " << e.what() << "\n";
    return e.exit_code();
  }
}
