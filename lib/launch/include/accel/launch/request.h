#pragma once
// What the user asked for, before defaults are guessed. Every field left empty was given
// neither on the command line nor in a config file; the config library fills fields from a
// file only where the command line left them empty (command line > file > guessed default),
// then accel::launch::resolve() guesses the rest, validates, and announces what it guessed.
#include <optional>
#include <string>
#include <vector>

namespace accel::launch {

struct LaunchRequest {
  // Resources and rendezvous.
  std::optional<int> num_processes;       // per machine
  std::optional<int> num_machines;
  std::optional<int> machine_rank;
  std::optional<std::string> main_process_ip;
  std::optional<int> main_process_port;
  std::optional<bool> use_cpu;
  std::optional<std::string> gpu_ids;     // "all" or "0,1,3"
  std::optional<int> num_cpu_threads_per_process;
  std::optional<std::string> mixed_precision;  // no | fp16 | bf16
  std::optional<bool> debug;

  // Supervision and output.
  std::optional<int> max_restarts;
  std::optional<double> grace_period_s;
  std::optional<bool> tee;
  std::optional<std::string> log_dir;
  std::optional<bool> quiet;
  std::optional<std::string> role;
  std::optional<std::string> local_ranks_filter;  // "0,2"

  // The job.
  std::optional<bool> no_python;
  std::optional<bool> python_module;  // -m: JOB is a Python module, run as python3 -m JOB
  std::vector<std::string> job;  // executable followed by its arguments

  // Where a value came from, for messages: "--num_processes" or "my.yaml: num_processes".
  std::optional<std::string> config_file;  // the file that filled fields, if any
};

}  // namespace accel::launch
