#pragma once
// What the user asked for, before defaults are guessed. Every field left empty was given
// neither on the command line nor in a config file; the config library fills fields from a
// file only where the command line left them empty (command line > file > guessed default),
// then accel::launch::resolve() guesses the rest, validates, and announces what it guessed.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "accel/core/distributed_type.h"
#include "accel/core/env_contract.h"
#include "accel/launch/accelerate_env.h"

namespace accel::launch {

// The settings a config file may hold as well as the command line, one member per row of the
// option table (options.h) with a file key, named by that key. config::Config is a
// LaunchSettings too, so filling a request from a file is one loop over the table.
struct LaunchSettings {
  // accelerate's keys.
  std::optional<std::string> mixed_precision;  // no | fp16 | bf16 | fp8
  std::optional<bool> use_cpu;
  std::optional<bool> debug;
  std::optional<int> num_processes;  // in total over all machines, as in accelerate
  std::optional<int> num_machines;
  std::optional<int> machine_rank;
  std::optional<std::string> gpu_ids;  // "all" or "0,1,3"; see names_gpus()
  std::optional<std::string> main_process_ip;
  std::optional<int> main_process_port;  // 0: a free port
  std::optional<std::string> rdzv_backend;
  std::optional<bool> same_network;
  std::optional<std::string> main_training_function;
  std::optional<bool> enable_cpu_affinity;
  std::optional<bool> downcast_bf16;
  // accel-launch's own keys.
  std::optional<int> num_cpu_threads_per_process;
  std::optional<std::string> log_dir;
  std::optional<bool> tee;
  std::optional<int> max_restarts;
  std::optional<double> grace_period;  // seconds between SIGTERM and SIGKILL
  std::optional<std::string> role;
  std::optional<std::string> local_ranks_filter;  // "0,2"

  bool operator==(const LaunchSettings& other) const = default;
};

struct LaunchRequest : LaunchSettings {
  // accelerate's DistributedType: from the config file, or --multi_gpu, --use_fsdp,
  // --use_deepspeed, --use_megatron_lm, --tpu.
  std::optional<DistributedType> distributed_type;
  // Settings only the job uses (dynamo, FSDP, DeepSpeed, Megatron-LM, fp8, CPU affinity):
  // they reach it as accelerate's variables. Flags fill them first, then the config file.
  accelerate::JobSettings job_settings;
  // torchrun's --nproc_per_node auto | cpu | gpu: workers per machine counted from the machine.
  std::optional<std::string> nproc_per_node;

  // Supervision and output.
  std::optional<double> join_timeout;
  std::optional<int> redirects;  // torchrun's -r: 1 stdout, 2 stderr, 3 both to the log files only
  std::optional<bool> quiet;

  // The job.
  std::optional<bool> no_python;
  std::optional<bool> python_module;  // -m: JOB is a Python module, run as python3 -m JOB
  std::vector<std::string> job;  // executable followed by its arguments

  // mpirun_config's hostfile (or --mpirun_hostfile): CPU jobs start through mpirun, as in accelerate.
  std::optional<std::string> mpirun_hostfile;

  // Resolve and print what would run, start nothing (--dry_run).
  bool dry_run = false;

  std::optional<std::string> config_file;  // the file that filled fields, if any

  // The launcher's environment, where PATH, OMP_NUM_THREADS, TMPDIR and a cluster's variables
  // (SLURM, MPI, PyTorchJob) are read; tests pass a fake.
  env::Lookup environment = env::process_environment();

  // Where each value came from, by its accelerate key, for messages: "my.yaml:7: num_processes"
  // for a value a config file filled; a value without an entry came from the command line.
  std::map<std::string, std::string> origins;
  // gpu_ids restricts the workers to some GPUs: "all" (accelerate's questionnaire writes it, for CPU
  // configs too) restricts nothing, wherever it was written.
  bool names_gpus() const { return gpu_ids && *gpu_ids != "all"; }

  // "my.yaml:7: num_processes", or "--num_processes" for the command line.
  std::string origin(const std::string& key) const {
    const auto it = origins.find(key);
    return it == origins.end() ? "--" + key : it->second;
  }
};

}  // namespace accel::launch
