#pragma once
// The machine layout that a cluster engine (SLURM, a Kubernetes PyTorchJob, MPI) already states
// in the launcher's environment, read as the lowest-precedence guess: command line > config
// file > cluster environment > defaults.
#include <optional>
#include <string>
#include <vector>

#include "accel/core/env_contract.h"
#include "accel/launch/request.h"

namespace accel::launch {

// One guessed value and the variable(s) it came from, for the announcement.
template <typename T>
struct FromEnvironment {
  T value;
  std::string source;  // "SLURM_NODEID"
};

struct ClusterLayout {
  std::string engine;  // "SLURM job 1234", "Kubernetes PyTorchJob", "OpenMPI", ...
  std::optional<FromEnvironment<int>> num_machines;
  std::optional<FromEnvironment<int>> machine_rank;
  std::optional<FromEnvironment<std::string>> main_process_ip;
  std::optional<FromEnvironment<int>> main_process_port;
  std::optional<FromEnvironment<int>> num_processes;  // per machine (PET_NPROC_PER_NODE)
  std::optional<FromEnvironment<int>> gpus_per_machine;  // SLURM_GPUS_ON_NODE: one worker each
  // Started by mpirun: when nothing names machine 0, the launchers can ask the MPI runtime
  // (mpi_exchange.h).
  bool started_by_mpirun = false;
};

// The port a SLURM job uses when none is given: derived from the job id so that two jobs
// sharing nodes differ. Even, in 20000..31998, below Linux's ephemeral range; the odd port above
// it is the launchers' control port (see control_plane.h).
int slurm_job_port(long long job_id);

// The layout the environment describes, or nothing when no engine is recognised. Engines are
// tried in order: SLURM (inside an srun step), PyTorchJob's PET_* variables, plain
// MASTER_ADDR/WORLD_SIZE/RANK (a launcher per pod; ignored inside a worker, which also has
// LOCAL_RANK), then MPI. Throws accel::UsageError naming the variable for malformed values, and
// for a launcher started once per task instead of once per machine, giving the right command.
std::optional<ClusterLayout> detect_cluster(const env::Lookup& lookup);

// Fills the fields of `request` that neither the command line nor a config file set, and
// returns the one-line announcement of what it filled (empty when nothing).
std::string apply_cluster_layout(const ClusterLayout& layout, LaunchRequest& request);

}  // namespace accel::launch
