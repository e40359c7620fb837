#pragma once
// The environment contract between a launcher and its workers, defined once.
// accel-launch writes these variables (lib/launch); the runtime reads them (lib/runtime),
// and also understands the variables of other launchers (torchrun, OpenMPI, MPICH/Intel MPI,
// MVAPICH, SLURM) so one worker binary runs unchanged under any of them.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace accel::env {

// torchrun-compatible variables, so torch-ecosystem jobs run unchanged under accel-launch.
inline constexpr const char* kRank = "RANK";
inline constexpr const char* kLocalRank = "LOCAL_RANK";
inline constexpr const char* kWorldSize = "WORLD_SIZE";
inline constexpr const char* kLocalWorldSize = "LOCAL_WORLD_SIZE";
inline constexpr const char* kGroupRank = "GROUP_RANK";
inline constexpr const char* kGroupWorldSize = "GROUP_WORLD_SIZE";
inline constexpr const char* kRoleName = "ROLE_NAME";
inline constexpr const char* kRoleRank = "ROLE_RANK";
inline constexpr const char* kRoleWorldSize = "ROLE_WORLD_SIZE";
inline constexpr const char* kMasterAddr = "MASTER_ADDR";
inline constexpr const char* kMasterPort = "MASTER_PORT";
inline constexpr const char* kRunId = "TORCHELASTIC_RUN_ID";
inline constexpr const char* kRestartCount = "TORCHELASTIC_RESTART_COUNT";
inline constexpr const char* kMaxRestarts = "TORCHELASTIC_MAX_RESTARTS";
inline constexpr const char* kErrorFile = "TORCHELASTIC_ERROR_FILE";
inline constexpr const char* kUseAgentStore = "TORCHELASTIC_USE_AGENT_STORE";  // launcher hosts the store
inline constexpr const char* kOmpNumThreads = "OMP_NUM_THREADS";
inline constexpr const char* kCudaVisibleDevices = "CUDA_VISIBLE_DEVICES";

// accel-launch's own variables, read by the runtime.
inline constexpr const char* kLauncher = "ACCEL_LAUNCHER";            // "accel-launch"
inline constexpr const char* kUseCpu = "ACCEL_USE_CPU";               // "true" / "false"
inline constexpr const char* kMixedPrecision = "ACCEL_MIXED_PRECISION";  // no | fp16 | bf16
inline constexpr const char* kDebug = "ACCEL_DEBUG";                  // "true" / "false"
inline constexpr const char* kTimeoutSeconds = "ACCEL_TIMEOUT_S";     // collective/rendezvous timeout
inline constexpr const char* kTrace = "ACCEL_TRACE";                  // pipeline trace directory
inline constexpr const char* kGpt2VocabDir = "ACCEL_GPT2_VOCAB_DIR";  // the GPT-2 vocabulary's directory
inline constexpr const char* kFakeGpus = "ACCEL_FAKE_GPUS";           // tests only: pretend N GPUs exist

// accelerate's launcher's spellings of the same settings; the runtime reads ours first, then these.
inline constexpr const char* kAccelerateUseCpu = "ACCELERATE_USE_CPU";
inline constexpr const char* kAccelerateMixedPrecision = "ACCELERATE_MIXED_PRECISION";
inline constexpr const char* kAccelerateDebugMode = "ACCELERATE_DEBUG_MODE";

// One launcher's names for where a process sits in the job; an empty name: not provided.
struct LauncherVariables {
  const char* launcher;
  const char* rank;
  const char* world_size;
  const char* local_rank;
  const char* local_world_size;
  const char* node_rank;
  bool mpi;  // an mpirun flavour: cluster_env.cpp reads these to place launchers mpirun started
};

// In the order detect_world() tries them: RANK first (accel-launch, torchrun, Kubeflow), then
// MPI flavours, then SLURM, because mpirun inside a SLURM allocation sets both and its own
// variables are the precise ones.
inline constexpr LauncherVariables kLauncherVariables[] = {
    {"torchrun", kRank, kWorldSize, kLocalRank, kLocalWorldSize, kGroupRank, false},
    {"OpenMPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", "",
     true},
    {"MPICH", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "", true},
    {"MVAPICH", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_SIZE", "", true},
    {"SLURM", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "SLURM_NODEID", false},
};

inline constexpr int kDefaultMasterPort = 29500;
inline constexpr const char* kDefaultMasterAddr = "127.0.0.1";

// Reads one environment variable; tests pass a fake.
using Lookup = std::function<std::optional<std::string>(const std::string& name)>;
Lookup process_environment();

// Where this process sits in the job, whichever launcher started it.
struct WorldInfo {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_world_size = 1;
  int node_rank = 0;
  int num_nodes = 1;
  std::string master_addr;  // empty when not distributed
  int master_port = kDefaultMasterPort;
  bool launcher_hosts_store = false;  // TORCHELASTIC_USE_AGENT_STORE: rank 0 must not host it
  int restart_count = 0;              // TORCHELASTIC_RESTART_COUNT
  // accel-launch | torchrun | OpenMPI | MPICH | MVAPICH | SLURM | none: a label for reports, kept as
  // text because under torchrun's variables it is whatever a launcher wrote into ACCEL_LAUNCHER.
  std::string launcher = "none";

  bool distributed() const { return world_size > 1; }
};

// Throws accel::UsageError naming the variable when a value is malformed or inconsistent
// (e.g. RANK >= WORLD_SIZE), or when a multi-node run has no MASTER_ADDR.
WorldInfo detect_world(const Lookup& lookup = process_environment());

// A boolean variable: true/false, 1/0, yes/no, on/off (any case); unset or empty gives fallback.
// Throws accel::UsageError naming the variable for anything else.
bool read_flag(const Lookup& lookup, const std::string& name, bool fallback);

// ACCEL_TIMEOUT_S as a duration (seconds, fractions allowed, > 0); unset gives fallback.
// Throws accel::UsageError naming the variable and value when it is not a positive number.
std::chrono::milliseconds read_timeout(const Lookup& lookup, std::chrono::milliseconds fallback);

// Expands a SLURM host list in SLURM's full syntax: "gpu-a[07-08,10],cpu-b3" gives gpu-a07,
// gpu-a08, gpu-a10, cpu-b3 (zero padding kept; several bracket groups in one name multiply).
// Throws accel::UsageError naming `variable` and the value when the list is malformed.
std::vector<std::string> expand_slurm_hostlist(const std::string& variable, const std::string& hostlist);

// The first host of SLURM_JOB_NODELIST (see expand_slurm_hostlist).
std::string first_slurm_host(const std::string& nodelist);

}  // namespace accel::env
