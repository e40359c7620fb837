#include "process_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace accel::testing {

std::vector<ProcessResult> run_commands(const std::vector<std::string>& commands, std::chrono::seconds deadline) {
  std::vector<ProcessResult> results(commands.size());
  std::vector<pid_t> pids;
  std::vector<std::string> logs;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    char path[] = "/tmp/accel-runtime-test-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    logs.emplace_back(path);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);  // its own group, so the deadline kills everything it started
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl("/bin/sh", "sh", "-c", commands[i].c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fd);
    ::setpgid(pid, pid);
    pids.push_back(pid);
  }
  const auto end = std::chrono::steady_clock::now() + deadline;
  std::size_t running = pids.size();
  while (running > 0) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (pids[i] == 0) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) != pids[i]) continue;
      results[i].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      ::kill(-pids[i], SIGKILL);  // anything the shell left behind
      pids[i] = 0;
      --running;
    }
    if (running > 0 && std::chrono::steady_clock::now() > end) {
      for (std::size_t i = 0; i < pids.size(); ++i) {
        if (pids[i] == 0) continue;
        ::kill(-pids[i], SIGKILL);
        ::waitpid(pids[i], nullptr, 0);
        results[i].timed_out = true;
        pids[i] = 0;
      }
      running = 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (std::size_t i = 0; i < logs.size(); ++i) {
    std::ifstream in(logs[i]);
    std::ostringstream text;
    text << in.rdbuf();
    results[i].output = text.str();
    std::remove(logs[i].c_str());
  }
  return results;
}

ProcessResult run_command(const std::string& command, std::chrono::seconds deadline) {
  return run_commands({command}, deadline).front();
}

std::string rank_env(int rank, int world_size, int port) {
  return "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world_size) +
         " LOCAL_RANK=" + std::to_string(rank) + " LOCAL_WORLD_SIZE=" + std::to_string(world_size) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port);
}

}  // namespace accel::testing
