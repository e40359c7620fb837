// run() inside a process that has other threads, as the launcher does once NVML is loaded:
// worker exits and forwarded signals must reach the supervision loop whichever thread the
// kernel picks to deliver a process-directed signal to.
#include <catch2/catch.hpp>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <sstream>
#include <thread>

#include "accel/launch/resolve.h"
#include "accel/launch/supervisor.h"

namespace {

// A thread that does not block any signal, parked until the test ends.
class IdleThread {
 public:
  IdleThread()
      : thread_([this] {
          std::unique_lock<std::mutex> lock(mutex_);
          wake_.wait(lock, [this] { return done_; });
        }) {}
  ~IdleThread() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

accel::launch::LaunchSpec spec_for(int processes, const std::string& script) {
  accel::launch::LaunchRequest request;
  request.num_processes = processes;
  request.quiet = true;
  request.job = {"sh", "-c", script};
  accel::hardware::Machine machine;
  machine.cpus = 2;
  std::ostringstream notes;
  return accel::launch::resolve(request, machine, notes);
}

}  // namespace

TEST_CASE("launch run: worker exits are seen with another thread in the launcher") {
  IdleThread other;
  const auto ok = spec_for(4, "exit 0");
  for (int i = 0; i < 20; ++i) REQUIRE(accel::launch::run(ok).exit_code == 0);
  CHECK(accel::launch::run(spec_for(3, "[ $RANK = 2 ] && exit 7; exec sleep 30")).exit_code == 7);
}

TEST_CASE("launch run: a signal sent to the launcher is forwarded with another thread in the launcher") {
  IdleThread other;
  // Rank 0 sends SIGTERM to the launcher (its parent); every worker then receives it.
  CHECK(accel::launch::run(spec_for(2, "[ $RANK = 0 ] && kill -TERM $PPID; exec sleep 30")).exit_code == 128 + SIGTERM);
}
