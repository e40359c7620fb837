// Supervision decisions with scripted workers (no processes): who failed first, which ranks
// were stopped, when SIGKILL follows SIGTERM, restarts, and the summary's contents. The same
// behaviours with real processes are in cli_test.cpp and supervisor_test.cpp.
#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "accel/launch/resolve.h"
#include "accel/launch/supervisor.h"

namespace {

using accel::launch::RankOutcome;
using accel::launch::RunResult;
using accel::launch::WorkerExit;
using accel::launch::WorkerSpec;

// What one scripted worker does.
struct Behaviour {
  std::optional<int> exit_at_start;  // exits with this status as soon as it is started
  bool ignores_sigterm = false;      // only SIGKILL ends it then
  std::optional<int> status_on_sigterm;  // exits with this status on SIGTERM instead of dying of it
  std::string stderr_text;           // written before it ends
  std::string error_message;         // written to its error file (TORCHELASTIC_ERROR_FILE) at start
  int start_errno = 0;               // its exec fails with this errno (it then exits with 127)
};
using Script = std::function<Behaviour(int local_rank, int restart_count)>;

std::string variable(const WorkerSpec& worker, const std::string& name) {
  for (const auto& entry : worker.environment) {
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
  }
  return "";
}

struct Journal {
  std::vector<std::vector<int>> signals;  // per attempt, in the order sent
  std::vector<std::vector<std::string>> ranks;  // per attempt: each worker's RANK
};

class ScriptedGroup final : public accel::launch::WorkerGroup {
 public:
  ScriptedGroup(const Script& script, Journal& journal, pid_t first_pid)
      : script_(script), journal_(journal), next_pid_(first_pid) {
    journal_.signals.emplace_back();
    journal_.ranks.emplace_back();
  }
  ~ScriptedGroup() override {
    for (auto& [pid, worker] : running_) close_streams(worker);
  }

  pid_t spawn(const WorkerSpec& spec) override {
    const Behaviour behaviour = script_(spec.local_rank, std::stoi(variable(spec, "TORCHELASTIC_RESTART_COUNT")));
    journal_.ranks.back().push_back(variable(spec, "RANK"));
    const pid_t pid = next_pid_++;
    Running& worker = running_[pid];
    worker.behaviour = behaviour;
    worker.stdout_fd = ::dup(spec.stdout_fd);
    worker.stderr_fd = ::dup(spec.stderr_fd);
    if (!behaviour.error_message.empty()) {
      std::ofstream(variable(spec, "TORCHELASTIC_ERROR_FILE"))
          << R"({"message": {"message": ")" << behaviour.error_message << R"(", "extraInfo": {}}})";
    }
    if (behaviour.start_errno != 0) end(pid, 127 << 8);
    else if (behaviour.exit_at_start) end(pid, *behaviour.exit_at_start << 8);
    return pid;
  }

  int start_error(pid_t pid) override { return started_errno_.count(pid) ? started_errno_[pid] : 0; }

  void signal(int signal_number, const std::vector<pid_t>& running) override {
    journal_.signals.back().push_back(signal_number);
    for (pid_t pid : running) {
      const auto found = running_.find(pid);
      if (found == running_.end()) continue;
      const Behaviour& behaviour = found->second.behaviour;
      if (signal_number == SIGKILL) end(pid, SIGKILL);
      else if (signal_number == SIGTERM && behaviour.status_on_sigterm) end(pid, *behaviour.status_on_sigterm << 8);
      else if (signal_number == SIGTERM && !behaviour.ignores_sigterm) end(pid, SIGTERM);
    }
  }

  std::vector<WorkerExit> reap() override { return std::exchange(exits_, {}); }
  void end_leftovers() override {}

 private:
  struct Running {
    Behaviour behaviour;
    int stdout_fd = -1;
    int stderr_fd = -1;
  };

  static void close_streams(Running& worker) {
    if (worker.stdout_fd >= 0) ::close(worker.stdout_fd);
    if (worker.stderr_fd >= 0) ::close(worker.stderr_fd);
    worker.stdout_fd = worker.stderr_fd = -1;
  }

  // Ends worker `pid`: its last words on stderr, its streams closed (the supervisor sees their
  // end), its exit queued for reap().
  void end(pid_t pid, int wait_status) {
    Running& worker = running_.at(pid);
    const std::string& text = worker.behaviour.stderr_text;
    if (!text.empty()) REQUIRE(::write(worker.stderr_fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    if (worker.behaviour.start_errno != 0) started_errno_[pid] = worker.behaviour.start_errno;
    close_streams(worker);
    running_.erase(pid);
    exits_.push_back({pid, wait_status});
  }

  const Script& script_;
  Journal& journal_;
  pid_t next_pid_;
  std::map<pid_t, Running> running_;
  std::map<pid_t, int> started_errno_;
  std::vector<WorkerExit> exits_;
};

class ScriptedSpawner final : public accel::launch::Spawner {
 public:
  explicit ScriptedSpawner(Script script) : script_(std::move(script)) {}
  std::unique_ptr<accel::launch::WorkerGroup> start_group() override {
    // Fresh pids per attempt, as real restarts get: 1000, 1001, ... then 2000, ...
    const pid_t first = static_cast<pid_t>(1000 * (journal.signals.size() + 1));
    return std::make_unique<ScriptedGroup>(script_, journal, first);
  }
  Journal journal;

 private:
  Script script_;
};

accel::launch::LaunchSpec spec_for(int processes) {
  accel::launch::LaunchRequest request;
  request.num_processes = processes;
  request.quiet = true;
  request.dry_run = true;  // binds no port: nothing listens here
  request.job = {"sh", "-c", "exit 0"};
  accel::hardware::Machine machine;
  machine.cpus = 2;
  std::ostringstream notes;
  auto spec = accel::launch::resolve(request, machine, notes);
  spec.host = "node7";
  return spec;
}

Behaviour exits(int status) {
  Behaviour behaviour;
  behaviour.exit_at_start = status;
  return behaviour;
}

}  // namespace

TEST_CASE("launch supervision: the first failure stops the others with SIGTERM and is the root cause") {
  ScriptedSpawner spawner([](int local_rank, int) { return local_rank == 2 ? exits(3) : Behaviour{}; });
  const RunResult result = accel::launch::run(spec_for(4), spawner);
  CHECK(result.exit_code == 3);
  CHECK(result.failed == std::vector<int>{2});
  CHECK(result.stopped() == 3);
  CHECK(spawner.journal.signals == std::vector<std::vector<int>>{{SIGTERM}});
  REQUIRE(result.ranks.size() == 4);
  CHECK(result.ranks[0].ending == RankOutcome::Ending::kStopped);
  CHECK(result.ranks[0].signal == SIGTERM);
  CHECK(result.ranks[2].ending == RankOutcome::Ending::kFailed);
  CHECK(result.ranks[2].exit_status == 3);
  CHECK(result.ranks[2].pid == 1002);
  CHECK(result.ranks[2].rank == 2);
  CHECK(accel::launch::summary(result) ==
        "accel-launch: job failed: rank 2 (local rank 2 on node7, pid 1002) exited with status 3\n"
        "  stopped the 3 worker(s) still running\n"
        "accel-launch: exit code 3\n");
}

TEST_CASE("launch supervision: a rank that ignores SIGTERM gets SIGKILL after the grace period and counts as stopped") {
  ScriptedSpawner spawner([](int local_rank, int) {
    Behaviour behaviour = local_rank == 1 ? exits(4) : Behaviour{};
    behaviour.ignores_sigterm = local_rank == 0;
    return behaviour;
  });
  auto spec = spec_for(2);
  spec.grace_period_s = 0.05;
  const RunResult result = accel::launch::run(spec, spawner);
  CHECK(spawner.journal.signals == std::vector<std::vector<int>>{{SIGTERM, SIGKILL}});
  CHECK(result.exit_code == 4);
  CHECK(result.ranks[0].ending == RankOutcome::Ending::kStopped);
  CHECK(result.ranks[0].signal == SIGKILL);
  CHECK(result.failed == std::vector<int>{1});
}

TEST_CASE("launch supervision: ranks that fail on their own while the group stops are listed after the root cause") {
  ScriptedSpawner spawner([](int local_rank, int) {
    Behaviour behaviour = local_rank == 0 ? exits(9) : Behaviour{};
    if (local_rank == 2) behaviour.status_on_sigterm = 5;
    if (local_rank == 2) behaviour.stderr_text = "cleanup failed\nstill failing\n";
    return behaviour;
  });
  const RunResult result = accel::launch::run(spec_for(3), spawner);
  CHECK(result.failed == std::vector<int>{0, 2});
  CHECK(result.stopped() == 1);
  CHECK(accel::launch::summary(result) ==
        "accel-launch: job failed: rank 0 (local rank 0 on node7, pid 1000) exited with status 9\n"
        "  also failed: rank 2 (local rank 2 on node7, pid 1002) exited with status 5; last stderr line: still failing\n"
        "  stopped the 1 worker(s) still running\n"
        "accel-launch: exit code 9\n");
}

TEST_CASE("launch supervision: the root cause's error file and last stderr lines are in the summary") {
  ScriptedSpawner spawner([](int, int) {
    Behaviour behaviour = exits(1);
    behaviour.error_message = "ValueError: bad shard";
    behaviour.stderr_text = "loading\nTraceback\n";
    return behaviour;
  });
  const RunResult result = accel::launch::run(spec_for(1), spawner);
  REQUIRE(result.ranks.size() == 1);
  CHECK(result.ranks[0].error_message == std::string("ValueError: bad shard"));
  CHECK(result.ranks[0].stderr_tail == std::vector<std::string>{"loading", "Traceback"});
  CHECK(accel::launch::summary(result) ==
        "accel-launch: job failed: rank 0 (local rank 0 on node7, pid 1000) exited with status 1\n"
        "  error file: ValueError: bad shard\n"
        "  last lines on its stderr:\n"
        "    loading\n"
        "    Traceback\n"
        "accel-launch: exit code 1\n");
}

TEST_CASE("launch supervision: a failed group restarts with the next restart count until an attempt succeeds") {
  ScriptedSpawner spawner([](int local_rank, int restart_count) {
    return restart_count < 2 && local_rank == 1 ? exits(3) : exits(0);
  });
  auto spec = spec_for(2);
  spec.max_restarts = 3;
  const RunResult result = accel::launch::run(spec, spawner);
  CHECK(result.exit_code == 0);
  CHECK(result.restarts == 2);
  CHECK(result.failed.empty());
  CHECK(spawner.journal.ranks == std::vector<std::vector<std::string>>(3, {"0", "1"}));
  REQUIRE(result.ranks.size() == 2);
  CHECK(result.ranks[1].restart_count == 2);
  CHECK(result.ranks[1].ending == RankOutcome::Ending::kSucceeded);
  CHECK(accel::launch::summary(result).empty());
}

TEST_CASE("launch supervision: restarts stop at max_restarts and the last attempt's failure is reported") {
  ScriptedSpawner spawner([](int, int) { return exits(6); });
  auto spec = spec_for(1);
  spec.max_restarts = 1;
  const RunResult result = accel::launch::run(spec, spawner);
  CHECK(spawner.journal.ranks.size() == 2);
  CHECK(result.restarts == 1);
  CHECK(result.exit_code == 6);
  CHECK(result.ranks[0].pid == 2000);
}

TEST_CASE("launch supervision: a worker that cannot be started fails with the shell's code and the reason") {
  ScriptedSpawner spawner([](int, int) {
    Behaviour behaviour;
    behaviour.start_errno = ENOENT;
    return behaviour;
  });
  auto spec = spec_for(1);
  spec.executable = "/nonexistent/job";
  const RunResult result = accel::launch::run(spec, spawner);
  CHECK(result.exit_code == 127);
  CHECK(result.ranks[0].what == "could not be started: No such file or directory");
}

TEST_CASE("launch supervision: the summary lists at most eight further failures and counts the rest") {
  RunResult result;
  result.exit_code = 1;
  for (int local_rank = 0; local_rank < 11; ++local_rank) {
    RankOutcome rank;
    rank.rank = rank.local_rank = local_rank;
    rank.host = "node7";
    rank.pid = 100 + local_rank;
    rank.ending = RankOutcome::Ending::kFailed;
    rank.what = "exited with status 1";
    rank.exit_code = 1;
    result.ranks.push_back(rank);
    result.failed.push_back(local_rank);
  }
  const std::string text = accel::launch::summary(result);
  CHECK(text.rfind("accel-launch: job failed: rank 0 (local rank 0 on node7, pid 100) exited with status 1\n", 0) == 0);
  CHECK(text.find("  also failed: rank 8 (local rank 8 on node7, pid 108) exited with status 1\n") != std::string::npos);
  CHECK(text.find("rank 9 (") == std::string::npos);
  CHECK(text.find("  and 2 more failed rank(s)\naccel-launch: exit code 1\n") != std::string::npos);
}

TEST_CASE("launch supervision: the summary words machine 0's verdict and interruptions") {
  RunResult ended;
  ended.exit_code = 3;
  ended.job_ended = "machine 1 (node8): rank 3 (local rank 1 on node8, pid 9) exited with status 3";
  CHECK(accel::launch::summary(ended) ==
        "accel-launch: job failed: machine 1 (node8): rank 3 (local rank 1 on node8, pid 9) exited with status 3\n"
        "accel-launch: exit code 3\n");
  ended.exit_code = 0;
  ended.job_ended = "";
  CHECK(accel::launch::summary(ended).empty());

  RunResult between;
  between.exit_code = 128 + SIGINT;
  between.interrupted_by = SIGINT;
  between.interrupted_between_attempts = true;
  CHECK(accel::launch::summary(between) == "accel-launch: interrupted by SIGINT between attempts\naccel-launch: exit code 130\n");

  RunResult interrupted;
  interrupted.exit_code = 128 + SIGTERM;
  interrupted.interrupted_by = SIGTERM;
  CHECK(accel::launch::summary(interrupted) ==
        "accel-launch: interrupted by SIGTERM; forwarded it to the workers\naccel-launch: exit code 143\n");
}
