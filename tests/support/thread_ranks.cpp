#include "support/thread_ranks.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/torch.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace accel::test {
namespace {

// Every rank arrives, then all go on.
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (++arrived_ == count_) {
      changed_.notify_all();
      return;
    }
    changed_.wait(lock, [this] { return arrived_ == count_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int count_;
  int arrived_ = 0;
};

}  // namespace

std::vector<std::exception_ptr> run_ranks(int world, const std::function<void(runtime::GroupHandle&)>& fn,
                                          std::chrono::milliseconds timeout) {
  // The ranks share this machine's cores: one intra-op thread each keeps them from fighting.
  torch::set_num_threads(1);
  auto store = c10::make_intrusive<::c10d::HashStore>();
  std::vector<std::exception_ptr> errors(world);
  Barrier formed(world), finished(world);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      runtime::GroupHandle group;
      try {
        group = runtime::make_gloo_group(store, rank, world, timeout);
      } catch (...) {
        errors[rank] = std::current_exception();
      }
      formed.arrive_and_wait();
      if (!errors[rank]) {
        try {
          fn(group);
        } catch (...) {
          errors[rank] = std::current_exception();
        }
      }
      finished.arrive_and_wait();
    });
  }
  for (auto& thread : threads) thread.join();
  return errors;
}

std::string message_of(const std::exception_ptr& error) {
  if (!error) return "(no error)";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

}  // namespace accel::test
