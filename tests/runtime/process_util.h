#pragma once
// Runs shell commands as separate processes for the multi-process tests: concurrently, output
// captured, each killed with its process group at a deadline so that a hang fails the test
// instead of stalling ctest, and no process outlives the test.
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace accel::testing {

struct ProcessResult {
  int exit_code = -1;     // 128 + N when killed by signal N
  bool timed_out = false;
  std::string output;     // stdout and stderr interleaved
};

std::vector<ProcessResult> run_commands(const std::vector<std::string>& commands, std::chrono::seconds deadline);
ProcessResult run_command(const std::string& command, std::chrono::seconds deadline);

// "RANK=r WORLD_SIZE=n LOCAL_RANK=r LOCAL_WORLD_SIZE=n MASTER_ADDR=127.0.0.1 MASTER_PORT=port".
std::string rank_env(int rank, int world_size, int port);

}  // namespace accel::testing
