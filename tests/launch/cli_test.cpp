// Integration tests: the real accel-launch binary running the helper programs.
#include <arpa/inet.h>
#include <sched.h>
#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "accel/launch/port.h"
#include "cluster_env.h"
#include "support/listener.h"
#include "support/temp_dir.h"
#include "support/terminal_screen.h"
#include "support/wait.h"

namespace {

using namespace std::chrono_literals;
using accel::test::slurp;
using accel::test::TempDir;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// accel-launch started in the background with stdout/stderr captured in files.
class Launcher {
 public:
  // `in_child` runs in the launcher's process just before exec (to change what it inherits);
  // `wrapper` is a command that runs the launcher (unshare ...).
  Launcher(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
           const std::function<void()>& in_child = {}, const std::vector<std::string>& wrapper = {}) {
    std::vector<std::string> argv = wrapper;
    argv.push_back(ACCEL_LAUNCH_EXE);
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setenv("ACCEL_FAKE_GPUS", "0", 1);  // the same answers on machines with and without GPUs
      for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
      ::unsetenv("OMP_NUM_THREADS");
      // No config file from the machine's user may change what the tests expect.
      ::unsetenv("ACCEL_CONFIG_FILE");
      for (const char* home : {"HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HF_HOME"}) ::setenv(home, dir_.root().c_str(), 1);
      ::dup2(::open(dir_.path("stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), 1);
      ::dup2(::open(dir_.path("stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), 2);
      if (in_child) in_child();
      std::vector<char*> raw;
      for (auto& arg : argv) raw.push_back(arg.data());
      raw.push_back(nullptr);
      ::execvp(raw[0], raw.data());
      ::_exit(126);
    }
  }
  ~Launcher() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }

  // The launcher's exit code once it has ended; nullopt while it runs.
  std::optional<int> try_wait() {
    int status = 0;
    if (!status_ && ::waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
    if (!status_) return std::nullopt;
    return WIFEXITED(*status_) ? WEXITSTATUS(*status_) : 128 + WTERMSIG(*status_);
  }

  // The launcher's exit code; fails the test if it runs longer than `limit`.
  int wait(std::chrono::milliseconds limit = 20000ms) {
    if (!accel::test::wait_until([this] { return try_wait().has_value(); }, limit))
      FAIL("accel-launch did not finish in time; stderr:\n" << err());
    return *try_wait();
  }

  std::string out() const { return slurp(dir_.path("stdout")); }
  std::string err() const { return slurp(dir_.path("stderr")); }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct Result {
  int code;
  std::string out, err;
};

Result launch(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  Launcher launcher(args, env);
  const int code = launcher.wait();
  return {code, launcher.out(), launcher.err()};
}

// Output lines of one rank ("[rank2]: X" -> "X"), in order.
std::vector<std::string> rank_lines(const std::string& text, int rank) {
  const std::string prefix = "[rank" + std::to_string(rank) + "]: ";
  std::vector<std::string> out;
  for (const auto& line : lines_of(text)) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line.substr(prefix.size()));
  }
  return out;
}

bool alive(pid_t pid) {
  // A zombie waiting for init counts as gone: it runs no code and holds no resources.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
}

// Pids written by sleep-forever into DIR/<rank>.pids, once all `ranks` files exist.
std::vector<pid_t> wait_for_pids(const TempDir& dir, int ranks) {
  std::vector<pid_t> pids;
  for (int rank = 0; rank < ranks; ++rank) {
    const std::string path = dir.path(std::to_string(rank) + ".pids");
    if (!accel::test::wait_until([&] { return ::access(path.c_str(), F_OK) == 0; }, 10s)) {
      FAIL("rank " << rank << " never wrote " << path);
    }
    for (const auto& line : lines_of(slurp(path))) pids.push_back(std::stoi(line));
  }
  return pids;
}

// A shell fragment that waits until sleep-forever wrote the pid files of `ranks` into `dir`.
std::string wait_for_ranks(const TempDir& dir, std::initializer_list<int> ranks) {
  std::string condition;
  for (int rank : ranks) condition += (condition.empty() ? "" : " -a ") + std::string("-e ") + dir.path(std::to_string(rank) + ".pids");
  return "until [ " + condition + " ]; do sleep 0.01; done;";
}

void require_all_gone(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) {
    INFO("pid " << pid);
    CHECK(accel::test::wait_until([pid] { return !alive(pid); }, 5s));
  }
}

const std::vector<std::string> kContract = {
    "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_NAME",
    "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
    "TORCHELASTIC_MAX_RESTARTS", "ACCEL_LAUNCHER", "ACCEL_USE_CPU", "ACCEL_MIXED_PRECISION", "ACCEL_DEBUG",
    "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "INHERITED_MARKER"};

std::map<std::string, std::string> parse_env(const std::vector<std::string>& lines) {
  std::map<std::string, std::string> env;
  for (const auto& line : lines) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

// The two ports of a multi-machine job on machine 0, held while its launchers run: the workers'
// store's and, one above, the launchers' control plane's. No other free-port choice on this
// machine can take a held port; the launchers can still listen on it.
struct JobPorts {
  accel::launch::PortReservation store;
  accel::launch::PortReservation control;
};

JobPorts reserve_job_ports() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto store = accel::launch::PortReservation::any_free();
    if (auto control = accel::launch::PortReservation::at(store.port() + 1)) return {std::move(store), std::move(*control)};
  }
  throw std::runtime_error("no two consecutive free ports in 100 tries");
}

// `port` and the one above it, when both are free here.
std::optional<JobPorts> reserve_job_ports_at(int port) {
  auto store = accel::launch::PortReservation::at(port);
  auto control = accel::launch::PortReservation::at(port + 1);
  if (!store || !control) return std::nullopt;
  return JobPorts{std::move(*store), std::move(*control)};
}

}  // namespace

TEST_CASE("launch cli: every rank gets exactly its environment, for N = 1, 2, 3, 7") {
  for (int n : {1, 2, 3, 7}) {
    std::vector<std::string> args{"--num_processes", std::to_string(n), PRINT_ENV_EXE};
    args.insert(args.end(), kContract.begin(), kContract.end());
    const auto result = launch(args, {{"INHERITED_MARKER", "kept"}});
    INFO("N = " << n << "\n" << result.err);
    REQUIRE(result.code == 0);
    std::string port;
    for (int rank = 0; rank < n; ++rank) {
      // One worker's output is unprefixed, as under accelerate's simple launcher.
      auto env = parse_env(n == 1 ? lines_of(result.out) : rank_lines(result.out, rank));
      REQUIRE(env.size() == kContract.size() - 1);  // CUDA_VISIBLE_DEVICES is unset
      if (port.empty()) port = env["MASTER_PORT"];
      const std::map<std::string, std::string> expected = {
          {"RANK", std::to_string(rank)}, {"LOCAL_RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(n)}, {"LOCAL_WORLD_SIZE", std::to_string(n)},
          {"GROUP_RANK", "0"}, {"GROUP_WORLD_SIZE", "1"}, {"ROLE_NAME", "default"},
          {"ROLE_RANK", std::to_string(rank)}, {"ROLE_WORLD_SIZE", std::to_string(n)},
          {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port}, {"TORCHELASTIC_RUN_ID", "accel-127.0.0.1-" + port},
          {"TORCHELASTIC_RESTART_COUNT", "0"}, {"TORCHELASTIC_MAX_RESTARTS", "0"},
          {"ACCEL_LAUNCHER", "accel-launch"}, {"ACCEL_USE_CPU", "true"}, {"ACCEL_MIXED_PRECISION", "no"},
          {"ACCEL_DEBUG", "false"},
          {"OMP_NUM_THREADS", std::to_string(std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN) / n))},
          {"INHERITED_MARKER", "kept"}};
      if (n == 1 || rank == 0) CHECK(std::stoi(port) > 0);
      // OMP_NUM_THREADS depends on the affinity mask; checked separately below.
      env.erase("OMP_NUM_THREADS");
      auto want = expected;
      want.erase("OMP_NUM_THREADS");
      CHECK(env == want);
    }
  }
}

TEST_CASE("launch cli: guessed values are announced in one line, given ones never") {
  const auto guessed = launch({"--num_processes", "2", PRINT_ENV_EXE, "OMP_NUM_THREADS"});
  const auto notes = lines_of(guessed.err);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].rfind("accel-launch: using --num_cpu_threads_per_process ", 0) == 0);
  CHECK(notes[0].find("--num_processes") == std::string::npos);
  std::smatch threads;
  REQUIRE(std::regex_search(notes[0], threads, std::regex(R"(--num_cpu_threads_per_process (\d+) )")));
  CHECK(rank_lines(guessed.out, 1) == std::vector<std::string>{"OMP_NUM_THREADS=" + threads[1].str()});

  const auto given = launch({"--num_processes", "2", "--num_cpu_threads_per_process", "3", "--main_process_port", "0",
                             PRINT_ENV_EXE, "OMP_NUM_THREADS"});
  CHECK(given.err.empty());
  CHECK(rank_lines(given.out, 0) == std::vector<std::string>{"OMP_NUM_THREADS=3"});
}

TEST_CASE("launch cli: the launch subcommand, dashed flags, and job flags passed through untouched") {
  const auto result = launch({"launch", "--num-processes", "2", "--cpu", "-q", PRINT_ENV_EXE, "--cpu", "WORLD_SIZE"});
  REQUIRE(result.code == 0);
  CHECK(lines_of(result.out) == std::vector<std::string>{"--cpu unset", "WORLD_SIZE=2", "--cpu unset", "WORLD_SIZE=2"});
  const auto separated = launch({"-q", "--", PRINT_ENV_EXE, "--", "WORLD_SIZE"});
  CHECK(separated.out == "-- unset\nWORLD_SIZE=1\n");
}

TEST_CASE("launch cli: the failing worker's exit code, one summary with its stderr and error file") {
  TempDir dir;
  const std::string script = "if [ \"$RANK\" = 1 ]; then " + wait_for_ranks(dir, {0, 2}) + " exec " WRITE_TO_STDERR_EXE
                             " --exit 3 --error-file 'ValueError: bad shard' first second; else exec " SLEEP_FOREVER_EXE
                             " " + dir.root() + "; fi";
  Launcher launcher({"--num_processes", "3", "sh", "-c", script});
  CHECK(launcher.wait() == 3);
  const auto pids = wait_for_pids(dir, 1);
  const std::string err = launcher.err();
  CHECK(std::regex_search(err, std::regex(R"(accel-launch: job failed: rank 1 \(local rank 1 on \S+, pid \d+\) exited with status 3\n)"
                                          R"(  error file: ValueError: bad shard\n)"
                                          R"(  last lines on its stderr:\n    first\n    second\n)"
                                          R"(  stopped the 2 worker\(s\) still running\n)"
                                          R"(accel-launch: exit code 3\n)")));
  CHECK(rank_lines(err, 1) == std::vector<std::string>{"first", "second"});
  require_all_gone(pids);
}

TEST_CASE("launch cli: a worker killed by a signal gives 128+N and names the signal") {
  const auto result = launch({"--num_processes", "2", "sh", "-c", "[ \"$RANK\" = 0 ] && exec " EXIT_WITH_CODE_EXE " -9; exec sleep 30"});
  CHECK(result.code == 137);
  CHECK(result.err.find("rank 0 (local rank 0 on ") != std::string::npos);
  CHECK(result.err.find("killed by signal 9 (SIGKILL)") != std::string::npos);
}

TEST_CASE("launch cli: SIGKILL of the launcher leaves no worker and no grandchild") {
  TempDir dir;
  Launcher launcher({"--num_processes", "3", SLEEP_FOREVER_EXE, "--child", dir.root()});
  const auto pids = wait_for_pids(dir, 3);
  REQUIRE(pids.size() == 6);
  ::kill(launcher.pid(), SIGKILL);
  launcher.wait();
  require_all_gone(pids);
}

TEST_CASE("launch cli: what a finished worker left running is stopped when the job ends") {
  TempDir dir;
  const std::string pidfile = dir.path("grandchild");
  // The grandchild holds the worker's stdout; waiting for it would outlast launch()'s limit.
  const auto result = launch({"-q", "sh", "-c", "sleep 30 & echo $! > " + pidfile + "; exit 0"});
  CHECK(result.code == 0);
  require_all_gone({std::stoi(slurp(pidfile))});
}

TEST_CASE("launch cli: Ctrl-C is forwarded to every worker and the launcher exits 130") {
  TempDir dir;
  Launcher launcher({"--num_processes", "7", SLEEP_FOREVER_EXE, "--trap", dir.root()});
  const auto pids = wait_for_pids(dir, 7);
  ::kill(launcher.pid(), SIGINT);
  CHECK(launcher.wait() == 130);
  for (int rank = 0; rank < 7; ++rank) CHECK(rank_lines(launcher.out(), rank) == std::vector<std::string>{"got INT"});
  CHECK(launcher.err().find("accel-launch: interrupted by SIGINT; forwarded it to the workers") != std::string::npos);
  require_all_gone(pids);
}

TEST_CASE("launch cli: each worker gets a forwarded signal exactly once, in the group or out of it") {
  // A second SIGINT would land in the job's KeyboardInterrupt handler while it saves its work.
  // The race (the group's copy handled before a copy by pid arrives) shows in a few runs out of
  // twenty, hence the rounds. Rank 1 leaves the group (setsid); the others stay in it; each
  // lingers after the first delivery so that a second one would be counted.
  const std::string sleeper = std::string(SLEEP_FOREVER_EXE) + " --trap --linger 100 ";
  for (int round = 0; round < 12; ++round) {
    for (const auto& [number, name] : std::vector<std::pair<int, std::string>>{{SIGINT, "INT"}, {SIGUSR1, "USR1"}}) {
      TempDir dir;
      const std::string script =
          "[ \"$RANK\" = 1 ] && exec " + sleeper + "--setsid " + dir.root() + "; exec " + sleeper + dir.root();
      Launcher launcher({"--num_processes", "3", "sh", "-c", script});
      wait_for_pids(dir, 3);
      ::kill(launcher.pid(), number);
      INFO("round " << round << ", SIG" << name);
      REQUIRE(launcher.wait() == (number == SIGINT ? 130 : 0));
      for (int rank = 0; rank < 3; ++rank) REQUIRE(rank_lines(launcher.out(), rank) == std::vector<std::string>{"got " + name});
    }
    // The SIGTERM that stops the others after rank 2 failed.
    TempDir dir;
    const std::string script = "[ \"$RANK\" = 2 ] && { " + wait_for_ranks(dir, {0, 1}) + " exit 5; };" +
                               "[ \"$RANK\" = 1 ] && exec " + sleeper + "--setsid " + dir.root() + "; exec " + sleeper +
                               dir.root();
    Launcher launcher({"--num_processes", "3", "sh", "-c", script});
    INFO("round " << round << ", SIGTERM after a failure");
    REQUIRE(launcher.wait() == 5);
    for (int rank = 0; rank < 2; ++rank) REQUIRE(rank_lines(launcher.out(), rank) == std::vector<std::string>{"got TERM"});
  }
}

TEST_CASE("launch cli: under nohup SIGHUP is not forwarded, SIGTERM is, and gives 143") {
  TempDir dir;
  Launcher launcher({"--num_processes", "2", SLEEP_FOREVER_EXE, "--trap", dir.root()}, {}, [] { ::signal(SIGHUP, SIG_IGN); });
  const auto pids = wait_for_pids(dir, 2);
  // Ignored (nohup), SIGHUP is discarded by kill() itself: nothing to wait for before SIGTERM.
  ::kill(launcher.pid(), SIGHUP);
  ::kill(launcher.pid(), SIGTERM);
  CHECK(launcher.wait() == 143);
  for (int rank = 0; rank < 2; ++rank) CHECK(rank_lines(launcher.out(), rank) == std::vector<std::string>{"got TERM"});
  require_all_gone(pids);
}

TEST_CASE("launch cli: a job that cannot be executed is reported like a shell does (126)") {
  TempDir dir;
  const std::string path = dir.path("not-a-program");
  std::ofstream(path) << std::string("\x7f" "ELF garbage", 12);
  ::chmod(path.c_str(), 0755);
  const auto result = launch({"--num_processes", "2", path});
  CHECK(result.code == 126);
  CHECK(std::regex_search(result.err, std::regex(R"(job failed: rank \d \(local rank \d on \S+, pid \d+\) could not be started: Exec format error)")));
}

TEST_CASE("launch cli: workers that ignore SIGTERM are killed after the grace period") {
  TempDir dir;
  const std::string script = "[ \"$RANK\" = 2 ] && { " + wait_for_ranks(dir, {0, 1}) + " exec " EXIT_WITH_CODE_EXE
                             " 5; }; exec " SLEEP_FOREVER_EXE " --ignore --child " + dir.root();
  Launcher launcher({"--num_processes", "3", "--grace_period", "0.3", "sh", "-c", script});
  CHECK(launcher.wait() == 5);
  CHECK(launcher.err().find("rank 2 (local rank 2 on ") != std::string::npos);
  const auto pids = wait_for_pids(dir, 2);
  REQUIRE(pids.size() == 4);
  require_all_gone(pids);
}

TEST_CASE("launch cli: --max_restarts restarts the group with TORCHELASTIC_RESTART_COUNT incremented") {
  // Rank 1 fails on the first two attempts; the other ranks wait to be stopped.
  const std::string flaky =
      "echo attempt $TORCHELASTIC_RESTART_COUNT; [ $TORCHELASTIC_RESTART_COUNT -ge 2 ] && exit 0;"
      "[ $RANK = 1 ] && exit 1; exec sleep 30";
  const auto ok = launch({"--num_processes", "3", "--max_restarts", "3", "sh", "-c", flaky});
  INFO(ok.err);
  CHECK(ok.code == 0);
  CHECK(rank_lines(ok.out, 1) == std::vector<std::string>{"attempt 0", "attempt 1", "attempt 2"});
  CHECK(std::regex_search(ok.err, std::regex(R"(accel-launch: rank 1 \(local rank 1 on \S+, pid \d+\) exited with status 1; restarting the group \(restart 1 of 3\)\n)"
                                             R"(accel-launch: rank 1 \(local rank 1 on \S+, pid \d+\) exited with status 1; restarting the group \(restart 2 of 3\)\n)")));
  CHECK(ok.err.find("restart 3 of 3") == std::string::npos);

  const auto exhausted = launch({"--num_processes", "2", "--max_restarts", "1", "sh", "-c", "exit 4"});
  CHECK(exhausted.code == 4);
  CHECK(exhausted.err.find("restarting the group (restart 1 of 1)") != std::string::npos);
  CHECK(exhausted.err.find("accel-launch: job failed: ") != std::string::npos);
}

TEST_CASE("launch cli: stopping a group that is still starting never looks like a signal to the launcher") {
  // Every attempt fails at once, so its stop reaches a guardian and workers that may not have
  // run yet; a signal they took with the launcher's inherited handler would end the restarts.
  const auto result = launch({"--num_processes", "4", "--max_restarts", "40", "sh", "-c", "exit 1"});
  INFO(result.err);
  CHECK(result.code == 1);
  CHECK(result.err.find("restart 40 of 40") != std::string::npos);
  CHECK(result.err.find("interrupted") == std::string::npos);
}

TEST_CASE("launch cli: output lines are whole and prefixed, --quiet and --local_ranks_filter") {
  std::vector<std::string> args{"--num_processes", "7", WRITE_TO_STDERR_EXE, "--split"};
  for (int i = 0; i < 20; ++i) args.push_back("line-" + std::to_string(i) + "-of-a-rank");
  const auto result = launch(args);
  REQUIRE(result.code == 0);
  const std::regex whole(R"(\[rank(\d)\]: line-(\d+)-of-a-rank)");
  int lines = 0;
  for (const auto& line : lines_of(result.err)) {
    if (line.rfind("accel-launch: ", 0) == 0) continue;
    INFO(line);
    CHECK(std::regex_match(line, whole));
    ++lines;
  }
  CHECK(lines == 7 * 20);

  const auto quiet = launch({"-q", "--num_processes", "2", "sh", "-c", "echo hi"});
  CHECK(quiet.out == "hi\nhi\n");
  CHECK(quiet.err.empty());

  const auto filtered = launch({"--num_processes", "3", "--local_ranks_filter", "0,2", "sh", "-c", "echo r$RANK"});
  auto shown = lines_of(filtered.out);
  std::sort(shown.begin(), shown.end());
  CHECK(shown == std::vector<std::string>{"[rank0]: r0", "[rank2]: r2"});
}

TEST_CASE("launch cli: --log_dir writes per-rank files per attempt and never reuses a run's directory") {
  TempDir dir;
  // Held for the whole test: no other free-port choice here can take it between the two runs.
  const auto reservation = accel::launch::PortReservation::any_free();
  const int port = reservation.port();
  const std::vector<std::string> args{"--num_processes", "2", "--log_dir", dir.path("logs"), "--main_process_port",
                                      std::to_string(port), "sh", "-c", "echo out$RANK; echo err$RANK >&2"};
  const auto first = launch(args);
  REQUIRE(first.code == 0);
  const std::string run = dir.path("logs/accel-127.0.0.1-" + std::to_string(port));
  CHECK(first.err.find("accel-launch: per-rank logs in " + run + "\n") != std::string::npos);
  CHECK(slurp(run + "/attempt_0/1/stdout.log") == "out1\n");
  CHECK(slurp(run + "/attempt_0/1/stderr.log") == "err1\n");
  CHECK(rank_lines(first.out, 0) == std::vector<std::string>{"out0"});
  const auto second = launch(args);
  CHECK(second.err.find("per-rank logs in " + run + ".1\n") != std::string::npos);
  CHECK(slurp(run + "/attempt_0/0/stdout.log") == "out0\n");
}

TEST_CASE("launch cli: two machines on loopback form one world") {
  const auto ports = reserve_job_ports();
  const std::string port = std::to_string(ports.store.port());
  const std::vector<std::string> common{"--num_machines", "2", "--main_process_ip", "127.0.0.1", "--main_process_port",
                                        port, "--num_processes", "4", "-q"};
  auto machine = [&](const char* rank, std::vector<std::string> job) {
    std::vector<std::string> args = common;
    args.insert(args.end(), {"--machine_rank", rank});
    args.insert(args.end(), job.begin(), job.end());
    return args;
  };
  Launcher second(machine("1", {"sh", "-c", PRINT_ENV_EXE " RANK LOCAL_RANK GROUP_RANK WORLD_SIZE && exec " RENDEZVOUS_EXE}));
  Launcher first(machine("0", {RENDEZVOUS_EXE}));
  CHECK(first.wait() == 0);
  CHECK(second.wait() == 0);
  CHECK(first.out() == "rank 0 met 3 peers\n");
  const auto lines = lines_of(second.out());
  REQUIRE(lines.size() == 8);
  auto has = [&](const std::string& text) { return std::find(lines.begin(), lines.end(), text) != lines.end(); };
  CHECK(has("RANK=2"));
  CHECK(has("RANK=3"));
  CHECK(has("GROUP_RANK=1"));
  CHECK(has("WORLD_SIZE=4"));
}

TEST_CASE("launch cli: IPv6 endpoints as torchrun writes them, [::1]:PORT, on one machine and on two") {
  const int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  const bool ipv6 = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof loopback) == 0;
  if (probe >= 0) ::close(probe);
  if (!ipv6) {
    WARN("no IPv6 loopback here: not tested");
    return;
  }
  const auto ports = reserve_job_ports();
  const std::string port = std::to_string(ports.store.port());
  // One machine, torchrun's spelling: MASTER_ADDR loses the brackets, and the ranks meet.
  const auto one = launch({"--num_processes", "2", "--rdzv_endpoint", "[::1]:" + port, "sh", "-c",
                           PRINT_ENV_EXE " MASTER_ADDR MASTER_PORT && exec " RENDEZVOUS_EXE});
  INFO(one.err);
  CHECK(one.code == 0);
  CHECK(rank_lines(one.out, 0) == std::vector<std::string>{"MASTER_ADDR=::1", "MASTER_PORT=" + port, "rank 0 met 1 peers"});
  // Two machines: the launchers' control plane reaches machine 0 over IPv6 too.
  const std::vector<std::string> common{"--num_machines", "2", "--main_process_ip", "[::1]", "--main_process_port",
                                        port, "--num_processes", "4", "-q"};
  auto machine = [&](const char* rank) {
    std::vector<std::string> args = common;
    args.insert(args.end(), {"--machine_rank", rank, RENDEZVOUS_EXE});
    return args;
  };
  Launcher second(machine("1"));
  Launcher first(machine("0"));
  CHECK(first.wait() == 0);
  CHECK(second.wait() == 0);
  CHECK(first.out() == "rank 0 met 3 peers\n");
}

TEST_CASE("launch cli: jobs started at once on one machine get different free ports") {
  std::set<std::string> ports;
  std::vector<std::unique_ptr<Launcher>> jobs;
  for (int i = 0; i < 4; ++i) {
    jobs.push_back(std::make_unique<Launcher>(std::vector<std::string>{"-q", "--num_processes", "2", "sh", "-c",
                                                                       PRINT_ENV_EXE " MASTER_PORT; exec " RENDEZVOUS_EXE}));
  }
  for (auto& job : jobs) {
    CHECK(job->wait() == 0);
    const auto lines = lines_of(job->out());
    REQUIRE(lines.size() >= 2);
    ports.insert(lines[0]);
  }
  CHECK(ports.size() == 4);
}

TEST_CASE("launch cli: bad input is one line, exit code 2, and no worker started") {
  TempDir dir;
  const std::string marker = dir.path("started");
  const std::vector<std::string> job{"sh", "-c", "touch " + marker};
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::listen(listener, 1);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string taken = std::to_string(ntohs(address.sin_port));
  char script[] = "/tmp/accel-cli-noexec-XXXXXX";
  ::close(::mkstemp(script));

  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--num_proceses", "2"}, "unknown flag --num_proceses; did you mean --num_processes?"},
      {{"--frobnicate"}, "unknown flag --frobnicate; see accel-launch --help"},
      {{"--num_processes", "0"}, "--num_processes 0: expected an integer >= 1"},
      {{"--num_processes", "-3"}, "--num_processes -3: expected an integer >= 1"},
      {{"--num_processes", "two"}, "--num_processes 'two': not an integer"},
      {{"--grace_period", "soon"}, "--grace_period 'soon': not a number of seconds"},
      {{"--num_machines", "2", "--machine_rank", "2", "--main_process_ip", "127.0.0.1"},
       "--machine_rank 2 must be smaller than --num_machines 2 (machines are numbered 0..1)"},
      {{"--main_process_port", "65536"}, "--main_process_port 65536: out of range; expected 1..65535 (or 0 for a free port on one machine)"},
      {{"--gpu_ids", "0,3"}, "--gpu_ids 0,3: GPU 3 does not exist; this machine has 2 GPU(s), numbered 0..1"},
      {{"--gpu_ids", "0", "--num_processes", "2"},
       "--gpu_ids 0 names 1 GPU(s) but each machine runs 2 process(es) (--num_processes 2 in total); give one GPU per process"},
      {{"--num_processes", "4"}, "--num_processes 4 needs 4 GPU(s) per machine but 2 GPU(s) are available; pass "
                                 "--num_processes 2 or less, or --cpu for CPU workers"},
      {{"--num_processes", "3", "--num_machines", "2", "--machine_rank", "0", "--main_process_ip", "127.0.0.1"},
       "--num_processes 3 is the total over all machines and must divide evenly by --num_machines 2; pass a multiple of 2"},
      {{"--tee", "yes", "--log_dir", "logs"}, "--tee 'yes': expected 0 (none), 1 (stdout), 2 (stderr) or 3 (both)"},
      {{"--cpu", "--use_fsdp"}, "only one of --cpu, --multi_gpu, --tpu, --use_deepspeed, --use_fsdp, --use_megatron_lm may be given"},
      {{"--tpu"}, "distributed_type XLA (TPU) is not run: accel-launch runs jobs on local machines only; launch TPU jobs "
                  "with `accelerate launch`"},
      {{"--aws_access_key_id", "AKIA"}, "--aws_access_key_id: accel-launch runs jobs on local machines only; use "
                                        "`accelerate launch` for SageMaker"},
      {{"--nproc_per_node", "2", "--num_processes", "3"},
       "--nproc_per_node 2 contradicts --num_processes 3 (the total over all machines); pass one of them"},
      {{"--mpirun_hostfile", "/no/hosts", "--cpu"},
       "mpirun_hostfile /no/hosts: no such readable file; mpirun needs it to know the hosts (write one host per line, or "
       "remove mpirun_config / --mpirun_hostfile to let accel-launch start the workers on this machine)"},
      {{"--num_proc", "2"}, "unknown flag --num_proc; did you mean --num_processes?"},
      {{"--nproc_per_nod", "2"}, "unknown flag --nproc_per_nod; did you mean --nproc_per_node?"},
      {{"--rdzv_backend", "etcd"}, "--rdzv_backend etcd: accepted: static, c10d (rank 0's host runs the store at "
                                   "--main_process_ip)"},
      {{"-m", "--no_python"}, "-m/--module runs JOB as a Python module under python3; it cannot be combined with "
                              "--no_python"},
      {{"--num_processes", "2", "launch"}, "--num_processes is given before 'launch'; put options after the command: "
                                           "accel-launch launch [options] ..."},
      {{"--cpu", "test"}, "--cpu is given before 'test'; put options after the command: accel-launch test [options] ..."},
  };
  for (const auto& [flags, message] : cases) {
    std::vector<std::string> args = flags;
    args.insert(args.end(), job.begin(), job.end());
    const auto result = launch(args, {{"ACCEL_FAKE_GPUS", "2"}});
    INFO(message);
    CHECK(result.code == 2);
    CHECK(result.err == "accel-launch: error: " + message + "\n");
    CHECK(::access(marker.c_str(), F_OK) != 0);
  }
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad_jobs = {
      {{}, "missing JOB: usage: accel-launch [options] JOB [JOB ARGS...]"},
      {{"--num_processes", "2"}, "missing JOB: usage: accel-launch [options] JOB [JOB ARGS...]"},
      {{"no-such-job-xyz"}, "JOB no-such-job-xyz: not found on PATH (give a path such as ./no-such-job-xyz)"},
      {{"--no_python", script},
       std::string("JOB ") + script + ": not executable (chmod +x it, or drop --no_python to run it under python3)"},
      {{"--python", "/no/such/python", script},
       "--python /no/such/python: no such executable file; name a Python interpreter such as /usr/bin/python3 or a "
       "virtual environment's bin/python"},
  };
  for (const auto& [args, message] : bad_jobs) {
    const auto result = launch(args);
    INFO(message);
    CHECK(result.code == 2);
    CHECK(result.err == "accel-launch: error: " + message + "\n");
  }
  ::unlink(script);
  ::close(listener);
}

TEST_CASE("launch cli: what accelerate runs, accel-launch runs: a GPU mode without GPUs, a busy port on one machine") {
  TempDir dir;
  const std::string marker = dir.path("started");
  const auto no_gpu = launch({"--multi_gpu", "--num_processes", "2", "sh", "-c", "touch " + marker},
                             {{"ACCEL_FAKE_GPUS", "0"}});
  CHECK(no_gpu.code == 0);
  CHECK(no_gpu.err.find("accel-launch: warning: distributed_type MULTI_GPU asks for GPU workers but this machine has no GPU; running "
                        "CPU workers instead (as accelerate does)\n") != std::string::npos);
  CHECK(::access(marker.c_str(), F_OK) == 0);

  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::listen(listener, 1);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string taken = std::to_string(ntohs(address.sin_port));
  const auto busy = launch({"--main_process_port", taken, "--num_processes", "2", "--cpu", PRINT_ENV_EXE, "MASTER_PORT"});
  CHECK(busy.code == 0);
  CHECK(busy.err.find("accel-launch: warning: --main_process_port " + taken + ": 127.0.0.1:" + taken +
                      " is not available (Address already in use)") != std::string::npos);
  const auto ports = rank_lines(busy.out, 0);
  REQUIRE(ports.size() == 1);
  CHECK(ports[0] != "MASTER_PORT=" + taken);
  ::close(listener);
}

TEST_CASE("launch cli: --dry_run prints each worker's variables and the command, and starts nothing") {
  TempDir dir;
  const std::string marker = dir.path("started");
  const auto unknown = launch({"--dry_run", "--frobnicate", "sh"});
  CHECK(unknown.code == 2);  // a dry run checks everything a launch checks
  const auto dry = launch({"--dry-run", "--nproc_per_node", "2", "--nnodes", "2", "--node_rank", "1", "--master_addr",
                           "10.1.2.3", "--master_port", "29501", "--mixed_precision", "bf16", "--dynamo_backend",
                           "inductor", "sh", "-c", "touch " + marker});
  INFO(dry.err);
  CHECK(dry.code == 0);
  CHECK(::access(marker.c_str(), F_OK) != 0);
  const auto lines = lines_of(dry.out);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("RANK=2 LOCAL_RANK=0 WORLD_SIZE=4 LOCAL_WORLD_SIZE=2 GROUP_RANK=1 GROUP_WORLD_SIZE=2 ", 0) == 0);
  CHECK(lines[1].rfind("RANK=3 LOCAL_RANK=1 WORLD_SIZE=4 ", 0) == 0);
  for (const char* pair : {" MASTER_ADDR=10.1.2.3 ", " MASTER_PORT=29501 ", " ACCELERATE_MIXED_PRECISION=bf16 ",
                           " ACCELERATE_DYNAMO_BACKEND=INDUCTOR ", " ACCEL_MIXED_PRECISION=bf16 "}) {
    CHECK(lines[1].find(pair) != std::string::npos);
  }
  CHECK(lines[2] == "sh -c 'touch " + marker + "'");
}

TEST_CASE("launch cli: --gpu_ids reaches the workers as CUDA_VISIBLE_DEVICES") {
  const auto result = launch({"-q", "--gpu_ids", "1,0", PRINT_ENV_EXE, "CUDA_VISIBLE_DEVICES", "ACCEL_USE_CPU"},
                             {{"ACCEL_FAKE_GPUS", "2"}});
  CHECK(result.code == 0);
  CHECK(result.out == "CUDA_VISIBLE_DEVICES=1,0\nACCEL_USE_CPU=false\nCUDA_VISIBLE_DEVICES=1,0\nACCEL_USE_CPU=false\n");
}

TEST_CASE("launch cli: --enable_cpu_affinity binds each GPU worker to the CPUs it announces") {
  // Fake GPUs share out the CPUs this test may use; each worker reports its own affinity.
  const auto result = launch({"--enable_cpu_affinity", "--num_processes", "2", "/bin/grep", "Cpus_allowed_list",
                              "/proc/self/status"},
                             {{"ACCEL_FAKE_GPUS", "2"}});
  CHECK(result.code == 0);
  for (const std::string rank : {"0", "1"}) {
    std::smatch announced;
    INFO(result.err);
    REQUIRE(std::regex_search(result.err, announced,
                              std::regex("CPU affinity: .*rank " + rank + " on CPUs ([0-9,-]+) \\(GPU " + rank + "\\)")));
    CHECK(result.out.find("[rank" + rank + "]: Cpus_allowed_list:\t" + announced[1].str() + "\n") != std::string::npos);
  }
}

TEST_CASE("launch cli: the launcher links neither LibTorch nor CUDA") {
  FILE* pipe = ::popen("ldd " ACCEL_LAUNCH_EXE, "r");
  REQUIRE(pipe);
  std::string text;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) text += buffer;
  REQUIRE(::pclose(pipe) == 0);
  CHECK(text.find("libc.so") != std::string::npos);  // ldd really listed the libraries
  for (const char* library : {"libtorch", "libc10", "libcudart", "libcuda.so", "libnvidia"}) {
    INFO(text);
    CHECK(text.find(library) == std::string::npos);
  }
}

TEST_CASE("launch cli: accelerate's -m, --multi_gpu, --same_network, --rdzv_backend and --monitor_interval") {
  const auto module = launch({"-q", "--cpu", "-m", "platform"});
  CHECK(module.code == 0);
  CHECK_THAT(module.out, Catch::Contains("Linux"));
  const auto compatible = launch({"-q", "--multi_gpu", "--num_processes", "2", "--same_network", "--rdzv_backend",
                                  "c10d", "--monitor_interval", "0.1", PRINT_ENV_EXE},
                                 {{"ACCEL_FAKE_GPUS", "2"}});
  CHECK(compatible.code == 0);
  CHECK_THAT(compatible.out, Catch::Contains("ACCEL_USE_CPU=false") && Catch::Contains("WORLD_SIZE=2"));
}

// --- Faults, signals and hostile input (issue 10) ---

namespace {

// Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [2] pgrp, ...
std::vector<std::string> stat_fields(pid_t pid) {
  const std::string line = slurp("/proc/" + std::to_string(pid) + "/stat");
  const auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// Waits until `condition` holds; fails the test with `what` after `limit`.
void wait_until(const std::function<bool()>& condition, const std::string& what,
                std::chrono::milliseconds limit = 10000ms) {
  if (!accel::test::wait_until(condition, limit)) FAIL("timed out waiting until " << what);
}

char process_state(pid_t pid) {
  const auto fields = stat_fields(pid);
  return fields.empty() ? '?' : fields[0][0];
}

}  // namespace

TEST_CASE("launch cli: a worker that left the process group is stopped with the others") {
  TempDir dir;
  // Rank 0 calls setsid(): the group signals miss it, the signals by pid do not.
  const std::string script = "[ \"$RANK\" = 2 ] && { " + wait_for_ranks(dir, {0, 1}) + " exit 5; };"
                             "[ \"$RANK\" = 0 ] && exec " SLEEP_FOREVER_EXE " --setsid " + dir.root() +
                             "; exec " SLEEP_FOREVER_EXE " " + dir.root();
  Launcher launcher({"--num_processes", "3", "--grace_period", "0.5", "sh", "-c", script});
  CHECK(launcher.wait(15000ms) == 5);
  const auto pids = wait_for_pids(dir, 2);
  require_all_gone(pids);
}

TEST_CASE("launch cli: a daemon a worker left behind neither holds the launcher nor survives the job") {
  TempDir dir;
  // The daemon keeps the worker's stdout open and ignores SIGTERM; the worker then exits 0.
  const std::string script = "setsid " SLEEP_FOREVER_EXE " --ignore " + dir.root() + " & " + wait_for_ranks(dir, {0}) +
                             " exit 0";
  Launcher launcher({"-q", "sh", "-c", script});
  CHECK(launcher.wait(15000ms) == 0);
  require_all_gone(wait_for_pids(dir, 1));
}

TEST_CASE("launch cli: orphans a worker leaves are adopted and reaped by the launcher, as PID 1 would") {
  TempDir dir;
  const std::string pidfile = dir.path("orphan");
  // The inner shell starts a short sleep and exits at once, orphaning it.
  const std::string script = "sh -c 'sleep 1 & echo $! > " + pidfile + "'; exec " SLEEP_FOREVER_EXE " " + dir.root();
  Launcher launcher({"-q", "sh", "-c", script});
  wait_for_pids(dir, 1);
  wait_until([&] { return !slurp(pidfile).empty(); }, "the orphan's pid is written");
  const pid_t orphan = std::stoi(slurp(pidfile));
  const auto fields = stat_fields(orphan);
  REQUIRE(fields.size() > 1);
  CHECK(fields[1] == std::to_string(launcher.pid()));  // adopted by the launcher
  // Once it exits the launcher reaps it: no zombie remains.
  wait_until([&] { return ::access(("/proc/" + std::to_string(orphan)).c_str(), F_OK) != 0; }, "the orphan is reaped");
  ::kill(launcher.pid(), SIGTERM);
  CHECK(launcher.wait() == 143);
}

TEST_CASE("launch cli: as PID 1 of a container the launcher reaps every orphan") {
  if (std::system("unshare -Urpf --mount-proc true >/dev/null 2>&1") != 0) {
    WARN("unshare cannot create a user and PID namespace here: not tested");
    return;
  }
  TempDir dir;
  const std::string pidfile = dir.path("orphan");
  // The worker orphans a short sleep; PID 1 (the launcher) inherits it and must reap it.
  const std::string job = "sh -c 'sleep 0.1 & echo $! > " + pidfile + "'; p=$(cat " + pidfile +
                          ");"
                          "for i in $(seq 1000); do [ -e /proc/$p ] || { echo reaped; exit 0; }; sleep 0.01; done;"
                          "echo zombie";
  Launcher launcher({"-q", "sh", "-c", job}, {}, {}, {"unshare", "-Urpf", "--mount-proc"});
  CHECK(launcher.wait() == 0);
  CHECK(launcher.out() == "reaped\n");
}

namespace {

// A pseudo-terminal: the test holds its master side; `path` opens the terminal side.
struct PseudoTerminal {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  std::string path;
  PseudoTerminal() {
    REQUIRE(master >= 0);
    REQUIRE(::grantpt(master) == 0);
    REQUIRE(::unlockpt(master) == 0);
    path = ::ptsname(master);
  }
  ~PseudoTerminal() { ::close(master); }
  PseudoTerminal(const PseudoTerminal&) = delete;
  PseudoTerminal& operator=(const PseudoTerminal&) = delete;
};

}  // namespace

TEST_CASE("launch cli: rank 0 reads the launcher's terminal, the other ranks read nothing") {
  // A pseudo-terminal whose foreground group is the launcher's, as in an interactive shell.
  const PseudoTerminal pty;
  const int master = pty.master;
  const std::string& terminal = pty.path;
  Launcher launcher({"--num_processes", "2", "sh", "-c", "read line; echo \"got [$line]\""}, {}, [&] {
    ::setsid();
    const int slave = ::open(terminal.c_str(), O_RDWR);
    ::ioctl(slave, TIOCSCTTY, 0);
    ::dup2(slave, 0);
  });
  const std::string typed = "typed words\n";
  REQUIRE(::write(master, typed.data(), typed.size()) == static_cast<ssize_t>(typed.size()));
  CHECK(launcher.wait() == 0);
  CHECK(rank_lines(launcher.out(), 0) == std::vector<std::string>{"got [typed words]"});
  CHECK(rank_lines(launcher.out(), 1) == std::vector<std::string>{"got []"});
}

namespace {

struct TerminalRun {
  int exit_code;
  std::string shown;  // every byte the terminal received
};

// The launcher run with `args`, its stdout and stderr on one pseudo-terminal, until it exits.
TerminalRun run_on_terminal(const std::vector<std::string>& args) {
  const PseudoTerminal pty;
  const int master = pty.master;
  const std::string& terminal = pty.path;
  Launcher launcher(args, {}, [&] {
    const int slave = ::open(terminal.c_str(), O_RDWR | O_NOCTTY);
    ::dup2(slave, 1);
    ::dup2(slave, 2);
  });
  std::string shown;
  auto read_shown = [&] {
    char buffer[4096];
    pollfd ready{master, POLLIN, 0};
    while (::poll(&ready, 1, 0) == 1) {
      const ssize_t n = ::read(master, buffer, sizeof buffer);
      if (n <= 0) break;
      shown.append(buffer, static_cast<std::size_t>(n));
    }
  };
  // The terminal must be read while the launcher runs: a full one would block its writes.
  std::optional<int> code;
  wait_until([&] {
    read_shown();
    code = launcher.try_wait();
    return code.has_value();
  }, "the launcher exits");
  read_shown();
  return {*code, shown};
}

}  // namespace

TEST_CASE("launch cli: on a terminal the progress bars of two ranks keep one line each, prefix kept") {
  // Both ranks redraw a bar on stderr at once and print lines on stdout meanwhile, returning to
  // the line's start first (as tqdm.write does).
  const auto run = run_on_terminal({"--num_processes", "2", "sh", "-c",
                                    "for p in 10 20 30 40; do printf '\\r %s%%' $p >&2; sleep 0.15; printf '\\r' >&2; "
                                    "echo step$p; done; printf '\\r100%%\\n' >&2; echo after"});
  CHECK(run.exit_code == 0);
  INFO(run.shown);
  const auto rows = accel::test::terminal_screen(run.shown);
  // 4 steps, the finished bar and "after" per rank: no redraw left a line of its own.
  CHECK(std::count_if(rows.begin(), rows.end(), [](const std::string& row) { return row.rfind("[rank", 0) == 0; }) == 12);
  for (const std::string rank : {"[rank0]: ", "[rank1]: "}) {
    CHECK(std::count(rows.begin(), rows.end(), rank + "100%") == 1);
    CHECK(std::count(rows.begin(), rows.end(), rank + "step40") == 1);
    // One terminal for stdout and stderr: the worker's order of the two is kept.
    CHECK(std::find(rows.begin(), rows.end(), rank + "after") > std::find(rows.begin(), rows.end(), rank + "100%"));
    CHECK(std::find(rows.begin(), rows.end(), rank + "step40") < std::find(rows.begin(), rows.end(), rank + "100%"));
  }
}

TEST_CASE("launch cli: on one terminal a failed rank's report gives its last lines of output, in order") {
  const auto run = run_on_terminal({"--num_processes", "1", "sh", "-c", "echo first; echo second >&2; echo third; exit 3"});
  CHECK(run.exit_code == 3);
  INFO(run.shown);
  CHECK(run.shown.find("last lines of its output:\r\n    first\r\n    second\r\n    third\r\n") != std::string::npos);
}

TEST_CASE("launch cli: piped stdin goes to rank 0 whole and ends with end of input") {
  TempDir dir;
  const std::string input = dir.path("input");
  std::ofstream(input) << "first\nsecond\n";
  Launcher launcher({"--num_processes", "2", "sh", "-c", "cat; echo end"}, {},
                    [&] { ::dup2(::open(input.c_str(), O_RDONLY), 0); });
  CHECK(launcher.wait() == 0);
  CHECK(rank_lines(launcher.out(), 0) == std::vector<std::string>{"first", "second", "end"});
  CHECK(rank_lines(launcher.out(), 1) == std::vector<std::string>{"end"});
}

TEST_CASE("launch cli: a stop request delivered twice at once keeps the grace period") {
  TempDir dir;
  Launcher launcher({"--num_processes", "2", SLEEP_FOREVER_EXE, "--trap", "--linger", "300", dir.root()});
  const auto pids = wait_for_pids(dir, 2);
  // As `timeout` does: the launcher, then its group (here: the launcher again).
  ::kill(launcher.pid(), SIGTERM);
  ::kill(launcher.pid(), SIGTERM);
  CHECK(launcher.wait() == 143);
  for (int rank = 0; rank < 2; ++rank) CHECK(rank_lines(launcher.out(), rank) == std::vector<std::string>{"got TERM"});
  require_all_gone(pids);
}

TEST_CASE("launch cli: a stop request repeated after a second kills at once") {
  TempDir dir;
  Launcher launcher({"--num_processes", "2", "--grace_period", "600", SLEEP_FOREVER_EXE, "--ignore", dir.root()});
  const auto pids = wait_for_pids(dir, 2);
  ::kill(launcher.pid(), SIGINT);
  std::this_thread::sleep_for(1500ms);
  CHECK(alive(pids[0]));  // the first request waits for the grace period
  ::kill(launcher.pid(), SIGINT);
  CHECK(launcher.wait() == 130);
  require_all_gone(pids);
}

TEST_CASE("launch cli: SIGUSR1, SIGUSR2 and SIGALRM are forwarded, not fatal to the launcher") {
  for (const auto& [number, name] : std::vector<std::pair<int, std::string>>{
           {SIGUSR1, "USR1"}, {SIGUSR2, "USR2"}, {SIGALRM, "ALRM"}}) {
    TempDir dir;
    Launcher launcher({"--num_processes", "2", SLEEP_FOREVER_EXE, "--trap", dir.root()});
    wait_for_pids(dir, 2);
    ::kill(launcher.pid(), number);
    INFO(name);
    CHECK(launcher.wait() == 0);  // the workers exit 0 after the signal
    for (int rank = 0; rank < 2; ++rank) CHECK(rank_lines(launcher.out(), rank) == std::vector<std::string>{"got " + name});
  }
}

TEST_CASE("launch cli: Ctrl-Z stops the workers with the launcher, fg continues them") {
  TempDir dir;
  // Also from an orphaned process group (a launcher started by a daemon or a CI runner), where
  // the kernel discards SIGTSTP's default stop.
  const bool orphaned = GENERATE(false, true);
  INFO("launcher in an orphaned process group: " << orphaned);
  Launcher launcher({"--num_processes", "2", SLEEP_FOREVER_EXE, dir.root()}, {},
                    [orphaned] { if (orphaned) ::setsid(); });
  const auto pids = wait_for_pids(dir, 2);
  ::kill(launcher.pid(), SIGTSTP);
  for (pid_t pid : pids) wait_until([&] { return process_state(pid) == 'T'; }, "a worker is stopped");
  wait_until([&] { return process_state(launcher.pid()) == 'T'; }, "the launcher is stopped");
  ::kill(launcher.pid(), SIGCONT);
  for (pid_t pid : pids) wait_until([&] { return process_state(pid) != 'T'; }, "a worker runs again");
  ::kill(launcher.pid(), SIGTERM);
  CHECK(launcher.wait() == 143);
  require_all_gone(pids);
}

TEST_CASE("launch cli: a launcher started with SIGINT ignored (cmd & in a script) still forwards it") {
  TempDir dir;
  // The workers do not trap it: they die of it only if it is not ignored in them either.
  Launcher launcher({"--num_processes", "2", "--grace_period", "600", SLEEP_FOREVER_EXE, dir.root()}, {},
                    [] { ::signal(SIGINT, SIG_IGN); });
  const auto pids = wait_for_pids(dir, 2);
  ::kill(launcher.pid(), SIGINT);
  CHECK(launcher.wait() == 130);
  require_all_gone(pids);
}

TEST_CASE("launch cli: a line longer than 64 KiB passes whole to the console and the log") {
  TempDir dir;
  const std::string line(83000, 'x');
  const std::string job = "head -c 83000 /dev/zero | tr '\\000' x; echo";
  const auto quiet = launch({"-q", "--log_dir", dir.path("logs"), "sh", "-c", job});
  CHECK(quiet.code == 0);
  CHECK(quiet.out == line + "\n");
  std::string log;
  if (DIR* runs = ::opendir((dir.path("logs")).c_str())) {
    while (const dirent* entry = ::readdir(runs)) {
      if (entry->d_name[0] != '.') log = slurp(dir.path("logs/" + std::string(entry->d_name) + "/attempt_0/0/stdout.log"));
    }
    ::closedir(runs);
  }
  CHECK(log == line + "\n");
  const auto prefixed = launch({"--num_processes", "2", "sh", "-c", job});
  CHECK(rank_lines(prefixed.out, 0) == std::vector<std::string>{line});
  CHECK(rank_lines(prefixed.out, 1) == std::vector<std::string>{line});
}

TEST_CASE("launch cli: a prompt without newline reaches the console while the worker waits") {
  // One worker: unprefixed, as under accelerate's simple launcher.
  Launcher launcher({"sh", "-c", "printf 'Name? '; exec sleep 30"});
  wait_until([&] { return launcher.out() == "Name? "; }, "the prompt is shown", 5000ms);
  ::kill(launcher.pid(), SIGTERM);
  CHECK(launcher.wait() == 143);
  CHECK(launcher.out() == "Name? \n");
}

TEST_CASE("launch cli: a Python job's prints reach the console while it runs, PYTHONUNBUFFERED unset") {
  if (std::system("python3 -c '' 2>/dev/null") != 0) {
    WARN("python3 is not installed: not tested");
    return;
  }
  TempDir dir;
  const std::string go = dir.path("go");
  // Prints once a second until the test has seen its output, then ends: without
  // PYTHONUNBUFFERED, CPython would hold its prints in the pipe's buffer until exit.
  std::ofstream(dir.path("job.py")) << "import os, sys, time\n"
                                       "while not os.path.exists(sys.argv[1]):\n"
                                       "    print('tick')\n"
                                       "    time.sleep(1)\n";
  Launcher launcher({"-q", dir.path("job.py"), go}, {}, [] { ::unsetenv("PYTHONUNBUFFERED"); });
  const bool live = accel::test::wait_until([&] { return launcher.out().rfind("tick\n", 0) == 0; }, 10000ms);
  std::ofstream(go) << "";
  CHECK(launcher.wait() == 0);
  CHECK(live);
}

TEST_CASE("launch cli: the guardian has a name of its own") {
  TempDir dir;
  Launcher launcher({SLEEP_FOREVER_EXE, dir.root()});
  const auto pids = wait_for_pids(dir, 1);
  const auto fields = stat_fields(pids[0]);
  REQUIRE(fields.size() > 2);
  CHECK(slurp("/proc/" + fields[2] + "/comm") == "accel-guardian\n");
  CHECK(slurp("/proc/" + std::to_string(launcher.pid()) + "/comm") == "accel-launch\n");
  ::kill(launcher.pid(), SIGTERM);
  CHECK(launcher.wait() == 143);
}

TEST_CASE("launch cli: scratch directories of launchers killed with SIGKILL are removed, live ones kept") {
  TempDir tmp;
  const auto make_old_directory = [&](const std::string& name) {
    const std::string path = tmp.path(name);
    ::mkdir(path.c_str(), 0700);
    std::ofstream(path + "/error-0-0.json") << "{}";
    const timespec old[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
    ::utimensat(AT_FDCWD, path.c_str(), old, 0);
    return path;
  };
  const std::string stale = make_old_directory("accel-launch-Stale1");
  const std::string locked = make_old_directory("accel-launch-Alive1");
  const int lock = ::open(locked.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(::flock(lock, LOCK_EX) == 0);  // as a running launcher holds its own
  const std::string young = tmp.path("accel-launch-Young1");
  ::mkdir(young.c_str(), 0700);
  const std::string unrelated = make_old_directory("other-Stale1");

  const auto result = launch({"-q", "sh", "-c", "echo $TORCHELASTIC_ERROR_FILE"}, {{"TMPDIR", tmp.root()}});
  CHECK(result.code == 0);
  CHECK(::access(stale.c_str(), F_OK) != 0);
  CHECK(::access(locked.c_str(), F_OK) == 0);
  CHECK(::access(young.c_str(), F_OK) == 0);
  CHECK(::access(unrelated.c_str(), F_OK) == 0);
  CHECK(result.out.rfind(tmp.path("accel-launch-"), 0) == 0);  // its own went there, and is gone
  CHECK(::access(result.out.substr(0, result.out.rfind('/')).c_str(), F_OK) != 0);
  ::close(lock);
}

TEST_CASE("launch cli: descriptors the launcher inherited do not reach the workers") {
  const int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC: the launcher inherits it
  REQUIRE(leaked > 2);
  const auto result =
      launch({"-q", "sh", "-c", "[ -e /proc/$$/fd/" + std::to_string(leaked) + " ] && echo leaked || echo closed"});
  ::close(leaked);
  CHECK(result.code == 0);
  CHECK(result.out == "closed\n");
}

TEST_CASE("launch cli: bad numbers and a closed stderr") {
  TempDir dir;
  const std::string marker = dir.path("started");
  const std::vector<std::string> job{"sh", "-c", "touch " + marker};
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--num_processes", "1000000000"}, R"(--num_processes 1000000000: this launcher can run at most \d+ workers here: .+)"},
      {{"--num_processes", "100000"}, R"(--num_processes 100000: this launcher can run at most \d+ workers here: .+)"},
      {{"--num_processes", "200000", "--num_machines", "2", "--machine_rank", "0", "--main_process_ip", "127.0.0.1"},
       R"(--num_processes 200000: 100000 workers per machine; this launcher can run at most \d+ workers here: .+)"},
      {{"--num_machines", "100000", "--machine_rank", "0", "--main_process_ip", "127.0.0.1", "--num_processes", "99999"},
       R"(--num_processes 99999 is the total over all machines: with --num_machines 100000 it leaves machines without a worker; pass at least 100000)"},
      {{"--main_process_ip", ""}, R"(--main_process_ip '': expected the address of machine 0 without a port: a host name, an IPv4 address .+)"},
      {{"--log_dir", "/proc/no-such-dir/logs", "--num_processes", "1", "--num_cpu_threads_per_process", "1",
        "--main_process_port", "0"},
       R"(--log_dir /proc/no-such-dir/logs is unusable: /proc/no-such-dir: cannot create the directory: .+)"},
  };
  for (const auto& [flags, pattern] : cases) {
    std::vector<std::string> args = flags;
    args.insert(args.end(), job.begin(), job.end());
    const auto result = launch(args);
    INFO(pattern << "\n" << result.err);
    CHECK(result.code == 2);
    CHECK(std::regex_match(result.err, std::regex("accel-launch: error: " + pattern + "\n")));
    CHECK(::access(marker.c_str(), F_OK) != 0);
  }
  Launcher closed_stderr({"--num_processes", "2", "sh", "-c", "echo out; echo err >&2"}, {}, [] { ::close(2); });
  CHECK(closed_stderr.wait() == 0);
  CHECK(lines_of(closed_stderr.out()).size() == 2);
}

TEST_CASE("launch cli: every failed rank is listed, first failure first, in a bounded summary") {
  TempDir dir;
  // Rank 1 fails first; ranks 0 and 2 fail too, once they see the SIGTERM that follows (so the
  // order is certain), with an exit status of their own: that is a failure, not a stop.
  const std::string script = wait_for_ranks(dir, {0, 1, 2}) +
                             " if [ $RANK = 1 ]; then head -c 1000000 /dev/zero | tr '\\000' y >&2; echo >&2; exit 3; fi;"
                             " while :; do sleep 0.01; done";
  const std::string ready = "trap 'echo late$RANK >&2; exit $((RANK + 4))' TERM; echo > " + dir.root() + "/$RANK.pids; ";
  Launcher launcher({"--num_processes", "3", "sh", "-c", ready + script});
  CHECK(launcher.wait() == 3);
  const std::string err = launcher.err();
  const auto summary = err.substr(err.find("accel-launch: job failed: "));
  INFO(summary.substr(0, 3000));
  CHECK(std::regex_search(summary, std::regex(R"(^accel-launch: job failed: rank 1 \(local rank 1 on \S+, pid \d+\) exited with status 3\n)")));
  CHECK(std::regex_search(summary, std::regex(R"(\n  also failed: rank 0 \(local rank 0 on \S+, pid \d+\) exited with status 4; last stderr line: late0\n)")));
  CHECK(std::regex_search(summary, std::regex(R"(\n  also failed: rank 2 \(local rank 2 on \S+, pid \d+\) exited with status 6; last stderr line: late2\n)")));
  CHECK(summary.find("stopped the") == std::string::npos);  // every other rank failed on its own
  CHECK(summary.size() < 2000);
  CHECK(summary.find("... (999500 more bytes)") != std::string::npos);
}

TEST_CASE("launch cli: a script whose #! interpreter is missing is named as such") {
  TempDir dir;
  const std::string script = dir.path("job.sh");
  std::ofstream(script) << "#!/nonexistent/sh\necho hi\n";
  ::chmod(script.c_str(), 0755);
  const auto result = launch({script});
  CHECK(result.code == 126);
  CHECK(result.err.find("could not be started: its interpreter '/nonexistent/sh' (named on the #! line of " + script +
                        ") does not exist") != std::string::npos);
}

TEST_CASE("launch cli: --help shows JOB in its usage line") {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"}, {"launch", "--help"}}) {
    const auto result = launch(args);
    CHECK(result.code == 0);
    INFO(result.out.substr(0, 300));
    CHECK(std::regex_search(result.out, std::regex(R"((^|\n)Usage: \S*accel-launch( launch)? \[OPTIONS\] JOB \[JOB ARGS\.\.\.\]\n)")));
  }
}

TEST_CASE("launch cli: --quiet drops notes on guessed values, never a warning") {
  const auto quiet = launch({"-q", "--multi_gpu", "--num_processes", "2", "sh", "-c", "true"}, {{"ACCEL_FAKE_GPUS", "0"}});
  CHECK(quiet.code == 0);
  CHECK(quiet.err ==
        "accel-launch: warning: distributed_type MULTI_GPU asks for GPU workers but this machine has no GPU; running CPU "
        "workers instead (as accelerate does)\n");
}

// ---- Several machines acting as one job (control_plane.h), each machine a launcher on loopback.
namespace {

// The launchers of one job: machine 0 at `address`, a free port, `machines` machines.
struct Job {
  std::string address;
  int machines;
  JobPorts ports = reserve_job_ports();
  std::string port = std::to_string(ports.store.port());

  std::vector<std::string> args(int rank, std::vector<std::string> extra, const std::vector<std::string>& job) const {
    std::vector<std::string> out{"--num_machines", std::to_string(machines), "--machine_rank", std::to_string(rank),
                                 "--main_process_ip", address, "--main_process_port", port, "--num_processes",
                                 std::to_string(2 * machines)};  // the total: 2 per machine
    out.insert(out.end(), extra.begin(), extra.end());
    out.insert(out.end(), job.begin(), job.end());
    return out;
  }
};

// Waits (by event, not by time) until the launcher's stderr shows `text`.
void wait_for_stderr(const Launcher& launcher, const std::string& text) {
  if (!accel::test::wait_until([&] { return launcher.err().find(text) != std::string::npos; }, 20s)) {
    FAIL("never saw '" << text << "' on stderr:\n" << launcher.err());
  }
}

}  // namespace

TEST_CASE("launch multi: a failure on one of two machines restarts both together, with one restart count") {
  // Rank 3 (machine 1) fails on attempt 0 once every rank has said which attempt it runs; the
  // other ranks wait to be stopped.
  TempDir dir;
  const std::string flaky =
      "echo attempt $TORCHELASTIC_RESTART_COUNT; [ $TORCHELASTIC_RESTART_COUNT -ge 1 ] && exit 0; touch " + dir.root() +
      "/$RANK.pids; [ $RANK = 3 ] && { " + wait_for_ranks(dir, {0, 1, 2, 3}) + " exit 3; }; exec sleep 30";
  const Job job{"127.0.0.2", 2};
  Launcher first(job.args(0, {"--max_restarts", "2"}, {"sh", "-c", flaky}));
  Launcher second(job.args(1, {"--max_restarts", "2"}, {"sh", "-c", flaky}));
  CHECK(first.wait() == 0);
  CHECK(second.wait() == 0);
  for (int rank : {0, 1}) CHECK(rank_lines(first.out(), rank) == std::vector<std::string>{"attempt 0", "attempt 1"});
  for (int rank : {2, 3}) CHECK(rank_lines(second.out(), rank) == std::vector<std::string>{"attempt 0", "attempt 1"});
  for (const auto& err : {first.err(), second.err()}) {
    CHECK(std::regex_search(err, std::regex(R"(accel-launch: restarting the workers of every machine \(restart 1 of 2\) after: machine 1 \(\S+\): rank 3 \(local rank 1 on \S+, pid \d+\) exited with status 3\n)")));
    CHECK(err.find("restart 2 of 2") == std::string::npos);
  }
}

TEST_CASE("launch multi: without restarts a remote failure stops all three machines, its summary printed on machine 0") {
  const std::string failing = "[ $RANK = 5 ] && { echo boom >&2; exit 3; }; exec sleep 30";
  const Job job{"127.0.0.3", 3};
  Launcher first(job.args(0, {}, {"sh", "-c", failing}));
  Launcher second(job.args(1, {}, {"sh", "-c", failing}));
  Launcher third(job.args(2, {}, {"sh", "-c", failing}));
  // Well before the workers' 30 s sleep: the failure is propagated, not waited out.
  CHECK(first.wait(15000ms) == 3);
  CHECK(second.wait(15000ms) == 3);
  CHECK(third.wait(15000ms) == 3);
  CHECK(std::regex_search(first.err(), std::regex(R"(accel-launch: job failed: machine 2 \(\S+\): rank 5 \(local rank 1 on \S+, pid \d+\) exited with status 3\n  last lines on its stderr:\n    boom\n)")));
  CHECK(first.err().find("accel-launch: exit code 3") != std::string::npos);
}

TEST_CASE("launch multi: a killed machine stops the others, and a replacement restarts the job together") {
  TempDir dir;
  const Job job{"127.0.0.4", 2};
  SECTION("no restart left: the job ends, naming the lost machine") {
    Launcher first(job.args(0, {}, {SLEEP_FOREVER_EXE, dir.root()}));
    Launcher second(job.args(1, {}, {SLEEP_FOREVER_EXE, dir.root()}));
    const auto pids = wait_for_pids(dir, 4);
    ::kill(second.pid(), SIGKILL);
    CHECK(second.wait() == 128 + SIGKILL);
    CHECK(first.wait(15000ms) == 1);
    CHECK(std::regex_search(first.err(), std::regex(R"(accel-launch: job failed: machine 1 \(\S+\) was lost: its launcher ended)")));
    require_all_gone(pids);
  }
  SECTION("a restart left: machine 0 waits for a new launcher of machine 1, then both run attempt 1") {
    const std::string job_text = "echo attempt $TORCHELASTIC_RESTART_COUNT; [ $TORCHELASTIC_RESTART_COUNT -ge 1 ] && exit 0;"
                                 "exec " SLEEP_FOREVER_EXE " " + dir.root();
    Launcher first(job.args(0, {"--max_restarts", "1"}, {"sh", "-c", job_text}));
    std::optional<Launcher> second(std::in_place, job.args(1, {"--max_restarts", "1"}, {"sh", "-c", job_text}));
    wait_for_pids(dir, 4);
    ::kill(second->pid(), SIGKILL);
    CHECK(second->wait() == 128 + SIGKILL);
    wait_for_stderr(first, "machine 1 (");
    Launcher replacement(job.args(1, {"--max_restarts", "1"}, {"sh", "-c", job_text}));
    CHECK(first.wait() == 0);
    CHECK(replacement.wait() == 0);
    CHECK(rank_lines(first.out(), 0) == std::vector<std::string>{"attempt 0", "attempt 1"});
    CHECK(rank_lines(replacement.out(), 2) == std::vector<std::string>{"attempt 1"});
  }
}

TEST_CASE("launch multi: a late machine is waited for, progress lines naming it") {
  const Job job{"127.0.0.5", 2};
  Launcher first(job.args(0, {"--join_timeout", "120"}, {PRINT_ENV_EXE, "GROUP_RANK"}));
  wait_for_stderr(first, "accel-launch: waiting for machine(s) 1 of 2 to join at 127.0.0.5:");
  Launcher second(job.args(1, {"--join_timeout", "120"}, {PRINT_ENV_EXE, "GROUP_RANK"}));
  CHECK(first.wait() == 0);
  CHECK(second.wait() == 0);
  CHECK(rank_lines(second.out(), 3) == std::vector<std::string>{"GROUP_RANK=1"});
}

TEST_CASE("launch multi: machines that never come end the job after --join_timeout, named") {
  const Job job{"127.0.0.6", 3};
  Launcher first(job.args(0, {"--join_timeout", "2"}, {"sleep", "30"}));
  Launcher second(job.args(1, {"--join_timeout", "2"}, {"sleep", "30"}));
  CHECK(first.wait() == 1);
  CHECK(second.wait() == 1);
  CHECK(first.err().find("accel-launch: job failed: machine(s) 2 of 3 did not join at 127.0.0.6:") != std::string::npos);
  CHECK(first.out().empty());  // no worker ever started

  const Job alone{"127.0.0.6", 2};
  const auto orphan = launch(alone.args(1, {"--join_timeout", "1"}, {"sleep", "30"}));
  CHECK(orphan.code == 1);
  CHECK(orphan.err.find("machine 0 did not answer at 127.0.0.6:") != std::string::npos);
}

TEST_CASE("launch multi: a machine that goes silent is noticed by heartbeats") {
  TempDir dir;
  const Job job{"127.0.0.7", 2};
  Launcher first(job.args(0, {}, {SLEEP_FOREVER_EXE, dir.root()}));
  Launcher second(job.args(1, {}, {SLEEP_FOREVER_EXE, dir.root()}));
  wait_for_pids(dir, 4);
  ::kill(second.pid(), SIGSTOP);
  CHECK(first.wait(20000ms) == 1);
  CHECK(first.err().find("machine 1 (") != std::string::npos);
  CHECK(first.err().find("was lost: no heartbeat for 5 s") != std::string::npos);
  ::kill(second.pid(), SIGCONT);
  CHECK(second.wait() == 1);
}

TEST_CASE("launch multi: a launcher that disagrees with machine 0 is refused, naming the difference") {
  const Job job{"127.0.0.8", 2};
  Launcher first(job.args(0, {"--join_timeout", "3"}, {"sleep", "30"}));
  auto args = job.args(1, {}, {"sleep", "30"});
  args[9] = "6";  // --num_processes: 3 per machine
  const auto refused = launch(args);
  CHECK(refused.code == 2);
  CHECK(refused.err.find("machine 0 refused this launcher: it runs 3 worker(s) per machine but machine 0 runs 2") !=
        std::string::npos);
  CHECK(first.wait() == 1);
}

TEST_CASE("launch multi: an srun step fills in the layout, announced in one line") {
  // A job id whose derived ports are both held here while the launchers run.
  const auto [job_number, ports] = [] {
    long long id = 100000 + accel::launch::PortReservation::any_free().port();
    for (int attempt = 0; attempt < 100; ++attempt, ++id) {
      if (auto held = reserve_job_ports_at(accel::launch::slurm_job_port(id))) return std::pair{id, std::move(*held)};
    }
    throw std::runtime_error("no job id with two free derived ports in 100 tries");
  }();
  const std::string job_id = std::to_string(job_number);
  auto slurm = [&](int node) {
    return std::map<std::string, std::string>{
        {"SLURM_JOB_ID", job_id}, {"SLURM_STEP_ID", "0"}, {"SLURM_NODEID", std::to_string(node)},
        {"SLURM_STEP_NUM_NODES", "2"}, {"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_STEP_NODELIST", "127.0.0.[9-10]"}};
  };
  Launcher first({PRINT_ENV_EXE, "RANK", "MASTER_ADDR", "WORLD_SIZE"}, slurm(0));
  Launcher second({PRINT_ENV_EXE, "RANK", "MASTER_ADDR", "WORLD_SIZE"}, slurm(1));
  CHECK(first.wait() == 0);
  CHECK(second.wait() == 0);
  CHECK(rank_lines(second.out(), 1) == std::vector<std::string>{"RANK=1", "MASTER_ADDR=127.0.0.9", "WORLD_SIZE=2"});
  CHECK(std::regex_search(first.err(), std::regex("accel-launch: from SLURM job " + job_id +
                                                  R"(: --num_machines 2 \(SLURM_STEP_NUM_NODES\), --machine_rank 0 \(SLURM_NODEID\), )"
                                                  R"(--main_process_ip 127.0.0.9 \(first of SLURM_STEP_NODELIST\), --main_process_port \d+ \(from SLURM_JOB_ID\); pass these flags to choose otherwise\n)")));

  auto per_task = slurm(0);
  per_task["SLURM_STEP_NUM_TASKS"] = "8";
  const auto refused = launch({PRINT_ENV_EXE}, per_task);
  CHECK(refused.code == 2);
  CHECK(refused.err.find("srun --nodes=2 --ntasks-per-node=1 accel-launch --num_processes 8 ...") != std::string::npos);
}

namespace {

// mpirun starting two launchers on this host as if on two machines: the local size it reports
// would say they share one (and be refused), so it is hidden from them. As root, mpirun needs
// its consent variables. No MASTER_ADDR or MASTER_PORT of the test's own environment leaks in.
std::vector<std::string> mpirun_two_machines() {
  return {"/usr/bin/mpirun", "-np", "2", "--oversubscribe", "env", "-u", "OMPI_COMM_WORLD_LOCAL_SIZE"};
}
const std::map<std::string, std::string> kMpirunAsRoot = {{"OMPI_ALLOW_RUN_AS_ROOT", "1"},
                                                         {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"}};
void without_rendezvous_variables() {
  ::unsetenv("MASTER_ADDR");
  ::unsetenv("MASTER_PORT");
}

bool have_open_mpi_with_pmix() {
  return ::access("/usr/bin/mpirun", X_OK) == 0 && std::system("ldconfig -p | grep -q 'libpmix.so.2 '") == 0;
}

}  // namespace

TEST_CASE("launch multi: under mpirun with no MASTER_ADDR, machine 0's address comes from MPI rank 0 through PMIx") {
  if (!have_open_mpi_with_pmix()) {
    WARN("Open MPI's mpirun or libpmix.so.2 is not installed (Debian openmpi-bin, libpmix2): not tested");
    return;
  }
  const auto ports = reserve_job_ports();
  const std::string port = std::to_string(ports.store.port());
  Launcher job({"--main_process_port", port, "--num_processes", "4", "sh", "-c",
                PRINT_ENV_EXE " RANK MASTER_ADDR && exec " RENDEZVOUS_EXE},
               kMpirunAsRoot, without_rendezvous_variables, mpirun_two_machines());
  const int code = job.wait(120000ms);
  INFO(job.err());
  REQUIRE(code == 0);
  const std::regex announced(R"(accel-launch: --main_process_ip (\S+) from MPI rank 0 \(PMIx\); pass --main_process_ip or mpirun -x MASTER_ADDR=\.\.\. to choose otherwise\n)");
  const std::string err = job.err();
  std::vector<std::string> addresses;
  for (auto it = std::sregex_iterator(err.begin(), err.end(), announced); it != std::sregex_iterator(); ++it) {
    addresses.push_back((*it)[1]);
  }
  REQUIRE(addresses.size() == 2);  // one line from each launcher
  CHECK(addresses[0] == addresses[1]);
  const std::string out = job.out();
  for (int rank = 0; rank < 4; ++rank) {
    CHECK(rank_lines(out, rank).size() >= 2);
    const auto lines = rank_lines(out, rank);
    CHECK(std::find(lines.begin(), lines.end(), "RANK=" + std::to_string(rank)) != lines.end());
    CHECK(std::find(lines.begin(), lines.end(), "MASTER_ADDR=" + addresses[0]) != lines.end());
  }
  CHECK(rank_lines(out, 0).back() == "rank 0 met 3 peers");

  // A dry run exchanges too (it binds nothing) and shows the address it would give the workers.
  Launcher dry({"--dry_run", "--main_process_port", port, "--num_processes", "2", "true"}, kMpirunAsRoot,
               without_rendezvous_variables, mpirun_two_machines());
  REQUIRE(dry.wait(120000ms) == 0);
  for (const char* rank : {"RANK=0 ", "RANK=1 "}) {
    CHECK(dry.out().find(rank + std::string("LOCAL_RANK=0 WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 GROUP_RANK=") +
                         rank[5] + " GROUP_WORLD_SIZE=2 ROLE_NAME=default ROLE_RANK=" + rank[5] +
                         " ROLE_WORLD_SIZE=2 MASTER_ADDR=" + addresses[0] + " MASTER_PORT=" + port + " ") !=
          std::string::npos);
  }
}

TEST_CASE("launch multi: the MPI runtime is asked only when nothing names machine 0, its failures say what is missing") {
  const std::string fallback = "; or give every launcher machine 0's address: mpirun -x MASTER_ADDR=<address of the first host> ...";
  // Each launcher stops before binding anything: no port is needed.
  const auto neither = launch({"true"},
                              {{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "1"}});
  CHECK(neither.code == 2);
  CHECK(neither.err.find("accel-launch: error: cannot learn machine 0's address from mpirun: it gave this launcher "
                         "neither a PMIx server (PMIX_NAMESPACE) nor a PMI-1 descriptor (PMI_FD)" + fallback + "\n") !=
        std::string::npos);
  // Whatever names machine 0 is taken first: the runtime is not asked (its library would fail).
  const std::map<std::string, std::string> mpi_rank_1 = {{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "1"},
                                                         {"PMIX_NAMESPACE", "1616838657"},
                                                         {"ACCEL_PMIX_LIBRARY", "libaccel-absent-pmix.so.2"}};
  auto exported = mpi_rank_1;
  exported["MASTER_ADDR"] = "10.1.2.3";
  for (const auto& [env, args] : {std::pair{exported, std::vector<std::string>{"--dry_run", "true"}},
                                  std::pair{mpi_rank_1, std::vector<std::string>{"--dry_run", "--main_process_ip", "10.1.2.3", "true"}}}) {
    const auto named = launch(args, env);
    CHECK(named.code == 0);
    CHECK(named.out.find(" MASTER_ADDR=10.1.2.3 ") != std::string::npos);
    CHECK(named.err.find("MPI rank 0") == std::string::npos);
  }

  if (!have_open_mpi_with_pmix()) {
    WARN("Open MPI's mpirun or libpmix.so.2 is not installed (Debian openmpi-bin, libpmix2): the real mpirun case is not tested");
    return;
  }
  // A launcher that never reaches the exchange: the others give up after --join_timeout.
  const std::string late = "if [ $OMPI_COMM_WORLD_RANK = 1 ]; then exec sleep 30; fi; exec \"$0\" \"$@\"";
  Launcher alone({"--join_timeout", "1", PRINT_ENV_EXE, "RANK"},
                 kMpirunAsRoot, without_rendezvous_variables,
                 {"/usr/bin/mpirun", "-np", "2", "--oversubscribe", "env", "-u", "OMPI_COMM_WORLD_LOCAL_SIZE", "sh", "-c", late});
  CHECK(alone.wait(120000ms) != 0);
  CHECK(alone.out().find("RANK=") == std::string::npos);
  CHECK(alone.err().find("accel-launch: error: cannot learn machine 0's address from mpirun through PMIx: PMIx gave no "
                         "answer within 1 s (--join_timeout): a launcher of this mpirun job never reached the exchange" +
                         fallback + "\n") != std::string::npos);

  auto env = kMpirunAsRoot;
  env["ACCEL_PMIX_LIBRARY"] = "libaccel-absent-pmix.so.2";
  Launcher job({PRINT_ENV_EXE, "RANK"}, env,
               without_rendezvous_variables, mpirun_two_machines());
  CHECK(job.wait(120000ms) != 0);
  CHECK(job.out().find("RANK=") == std::string::npos);  // no worker started
  CHECK(std::regex_search(job.err(), std::regex(R"(accel-launch: error: cannot learn machine 0's address from mpirun through PMIx: cannot load the PMIx library libaccel-absent-pmix\.so\.2 \([^\n]*\): install Open MPI's PMIx library \(Debian: libpmix2\) or name it with ACCEL_PMIX_LIBRARY; or give every launcher machine 0's address: mpirun -x MASTER_ADDR=<address of the first host> \.\.\.\n)")));
}

TEST_CASE("launch multi: a bad --join_timeout, a port with no next port, a taken control port are refused") {
  const Job job{"127.0.0.1", 2};
  const auto zero = launch(job.args(1, {"--join_timeout", "0"}, {"true"}));
  CHECK(zero.code == 2);
  CHECK(zero.err == "accel-launch: error: --join_timeout 0: expected seconds > 0\n");
  auto last_port = job.args(1, {}, {"true"});
  last_port[7] = "65535";  // --main_process_port
  const auto refused = launch(last_port);
  CHECK(refused.code == 2);
  CHECK(refused.err.find("--main_process_port 65535: several machines also need the next port") != std::string::npos);

  // Something else listens on the control port: machine 0 says so before starting any worker.
  // (SO_REUSEADDR: the job's own reservation holds the port too, bound but not listening.)
  const auto busy = [&] {
    const accel::test::LoopbackListener taken(static_cast<std::uint16_t>(std::stoi(job.port) + 1), /*reuse_address=*/true);
    return launch(job.args(0, {}, {PRINT_ENV_EXE, "RANK"}));
  }();
  CHECK(busy.code == 1);
  CHECK(busy.out.empty());
  CHECK(busy.err.find("cannot host the launchers' control plane on 127.0.0.1:" + std::to_string(std::stoi(job.port) + 1)) !=
        std::string::npos);
}

TEST_CASE("launch multi: Ctrl-C on one machine ends the job on every machine, with restarts left unused") {
  TempDir dir;
  const Job job{"127.0.0.11", 2};
  Launcher first(job.args(0, {"--max_restarts", "3"}, {SLEEP_FOREVER_EXE, dir.root()}));
  Launcher second(job.args(1, {"--max_restarts", "3"}, {SLEEP_FOREVER_EXE, dir.root()}));
  const auto pids = wait_for_pids(dir, 4);
  ::kill(second.pid(), SIGINT);
  CHECK(second.wait() == 130);
  CHECK(first.wait() == 130);
  CHECK(std::regex_search(first.err(), std::regex(R"(accel-launch: job failed: machine 1 \(\S+\): its launcher was interrupted by SIGINT\n)")));
  CHECK(first.err().find("restarting") == std::string::npos);
  require_all_gone(pids);
}

// ---- torchrun's and accelerate's spellings a user brings (issue 24, item 4).

TEST_CASE("launch cli: --nproc_per_node auto, gpu and cpu count the workers as torchrun does") {
  cpu_set_t allowed;
  REQUIRE(::sched_getaffinity(0, sizeof allowed, &allowed) == 0);
  const std::string cpus = std::to_string(CPU_COUNT(&allowed));
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> cases = {
      // value, fake GPUs, LOCAL_WORLD_SIZE, ACCEL_USE_CPU
      {"auto", "2", "2", "false"}, {"gpu", "2", "2", "false"}, {"auto", "0", cpus, "true"}, {"cpu", "2", cpus, "true"}};
  for (const auto& [value, gpus, workers, cpu] : cases) {
    const auto dry = launch({"--dry_run", "--nproc_per_node", value, "sh"}, {{"ACCEL_FAKE_GPUS", gpus}});
    INFO(value << " with " << gpus << " GPUs: " << dry.err);
    REQUIRE(dry.code == 0);
    const auto lines = lines_of(dry.out);
    CHECK(lines.size() == std::stoul(workers) + 1);
    CHECK(lines[0].find(" LOCAL_WORLD_SIZE=" + workers + " ") != std::string::npos);
    CHECK(lines[0].find(" ACCEL_USE_CPU=" + cpu + " ") != std::string::npos);
  }
  const auto no_gpu = launch({"--nproc_per_node", "gpu", "sh"}, {{"ACCEL_FAKE_GPUS", "0"}});
  CHECK(no_gpu.code == 2);
  CHECK(no_gpu.err == "accel-launch: error: --nproc_per_node gpu: this machine has no GPU; pass --nproc_per_node cpu or a number\n");
  const auto both = launch({"--nproc_per_node", "auto", "--num_processes", "2", "sh"});
  CHECK(both.code == 2);
  CHECK(both.err == "accel-launch: error: --nproc_per_node auto contradicts --num_processes 2; pass one of them\n");
}

TEST_CASE("launch cli: --nnodes N:N is N machines, a real elastic range is refused saying why") {
  const auto fixed = launch({"--dry_run", "--nnodes", "2:2", "--node_rank", "1", "--master_addr", "10.0.0.1",
                             "--nproc_per_node", "1", "sh"});
  INFO(fixed.err);
  CHECK(fixed.code == 0);
  CHECK(fixed.out.rfind("RANK=1 LOCAL_RANK=0 WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 GROUP_RANK=1 GROUP_WORLD_SIZE=2 ", 0) == 0);
  const auto elastic = launch({"--nnodes", "1:2", "sh"});
  CHECK(elastic.code == 2);
  CHECK(elastic.err ==
        "accel-launch: error: --nnodes 1:2: an elastic range of machines is not supported: accel-launch's rendezvous is "
        "static, so machines cannot join or leave a running job; pass a fixed count such as --nnodes 2\n");
}

TEST_CASE("launch cli: --rdzv_endpoint without a port takes torchrun's 29400") {
  for (const auto& [endpoint, addr, port] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"node7", "node7", "29400"}, {"node7:29511", "node7", "29511"}, {"[fd00::7]", "fd00::7", "29400"}}) {
    const auto dry = launch({"--dry_run", "--nnodes", "2", "--node_rank", "1", "--rdzv_endpoint", endpoint, "sh"});
    INFO(endpoint << ": " << dry.err);
    CHECK(dry.code == 0);
    std::smatch found;
    REQUIRE(std::regex_search(dry.out, found, std::regex(" MASTER_ADDR=(\\S+) MASTER_PORT=(\\d+) ")));
    CHECK(found[1].str().find(addr) != std::string::npos);  // an IPv6 address may keep its brackets, quoted
    CHECK(found[2].str() == port);
  }
  const auto bad = launch({"--rdzv_endpoint", "a:b:c", "sh"});
  CHECK(bad.code == 2);
  CHECK(bad.err == "accel-launch: error: --rdzv_endpoint 'a:b:c': expected HOST or HOST:PORT ([ADDRESS]:PORT for IPv6)\n");
}

TEST_CASE("launch cli: -t without --log_dir writes to a temporary directory and says where, and -r keeps streams off the console") {
  TempDir dir;
  const auto tee = launch({"-t", "1", "--num_processes", "2", "sh", "-c", "echo out$RANK"}, {{"TMPDIR", dir.root()}});
  INFO(tee.err);
  CHECK(tee.code == 0);
  std::smatch named;
  REQUIRE(std::regex_search(tee.err, named, std::regex("accel-launch: per-rank logs in (" + dir.root() + "/accel-launch-logs-\\S+)\n")));
  CHECK(slurp(named[1].str() + "/attempt_0/1/stdout.log") == "out1\n");
  CHECK(rank_lines(tee.out, 1) == std::vector<std::string>{"out1"});

  const std::string job = "echo out$RANK; echo err$RANK >&2";
  const auto stdout_only = launch({"-r", "1", "--log_dir", dir.path("logs"), "--num_processes", "2", "sh", "-c", job});
  CHECK(stdout_only.code == 0);
  CHECK(stdout_only.out.empty());
  CHECK(stdout_only.err.find("[rank1]: err1\n") != std::string::npos);
  const auto both = launch({"--redirects", "3", "-q", "sh", "-c", job}, {{"TMPDIR", dir.root()}});
  CHECK(both.code == 0);
  CHECK(both.out.empty());
  CHECK(both.err.find("err0") == std::string::npos);
  const auto bad = launch({"-r", "4", "sh"});
  CHECK(bad.code == 2);
  CHECK(bad.err == "accel-launch: error: --redirects '4': expected 0 (none), 1 (stdout), 2 (stderr) or 3 (both)\n");
}

TEST_CASE("launch cli: near misses of flags and commands get a suggestion, never a parser's raw message") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--config", "x.yaml", "sh"}, "unknown flag --config; did you mean --config_file?"},
      {{"confg"}, "JOB confg: not found on PATH (give a path such as ./confg); did you mean the command `accel-launch config`?"},
      {{"config", "defualt"},
       "unknown command 'config defualt'; did you mean 'config default'? (accel-launch config takes default or update, or "
       "no command to answer questions)"},
      {{"test", "--num_processes", "2"},
       "--num_processes is a launch option; `accel-launch test` takes --config_file only: set num_processes in the config "
       "file (accel-launch config), or launch a job with `accel-launch --num_processes ... JOB`"},
      {{"env", "--config-fil", "x"},
       "unknown flag --config-fil; did you mean --config_file? (`accel-launch env` takes --config_file, --python)"},
      {{"env", "--pyton", "x"}, "unknown flag --pyton; did you mean --python? (`accel-launch env` takes --config_file, --python)"},
      {{"config", "default", "--mixed_precision"}, "--mixed_precision needs a value: MODE"},
      {{"config", "default", "--force=yes"}, "--force takes no value; pass --force alone"},
      {{"--num_processes"}, "--num_processes needs a value: N"},
      {{"--cpu=yes", "sh"}, "--cpu takes no value; pass --cpu alone"},
  };
  for (const auto& [args, message] : cases) {
    const auto result = launch(args);
    INFO(message);
    CHECK(result.code == 2);
    CHECK(result.err == "accel-launch: error: " + message + "\n");
  }
}

TEST_CASE("launch cli: accel-launch env --python PATH reports that Python, and says when it is not one") {
  const auto missing = launch({"env", "--python", "/no/such/python"});
  CHECK(missing.code == 0);
  CHECK(missing.out.find("- Python: --python /no/such/python: no such executable file;") != std::string::npos);
  TempDir dir;
  const std::string python = dir.path("python");
  std::ofstream(python) << "#!/bin/sh\necho python 3.11.2; echo torch -; echo accelerate -\n";
  ::chmod(python.c_str(), 0755);
  const auto chosen = launch({"env", "--python=" + python});
  CHECK(chosen.code == 0);
  CHECK(chosen.out.find("- Python (runs Python JOBs): " + python + ", Python 3.11.2 (--python)\n") != std::string::npos);
}

TEST_CASE("launch cli: --help groups the options and folds accelerate's settings for the job into one section") {
  const auto help = launch({"--help"});
  CHECK(help.code == 0);
  for (const char* section : {"\nProcesses, machines and rendezvous:\n", "\ntorchrun's spellings:\n",
                              "\naccelerate's settings passed to the job:\n"}) {
    CHECK(help.out.find(section) != std::string::npos);
  }
  CHECK(help.out.find("docs/config.md") != std::string::npos);
  CHECK(help.out.find("--fsdp_offload_params") == std::string::npos);  // folded, not listed
  const auto sub = launch({"config", "default", "--help"});
  CHECK(sub.code == 0);
  CHECK(sub.out.rfind("Usage: accel-launch config default [OPTIONS]\n", 0) == 0);
}
