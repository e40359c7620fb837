#pragma once
// From what the user asked for (LaunchRequest) to what will run (LaunchSpec): guesses the
// values left unset from this machine, validates everything, and chooses the rendezvous port.
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "accel/core/hardware.h"
#include "accel/core/precision.h"
#include "accel/launch/port.h"
#include "accel/launch/request.h"

namespace accel::launch {

// Seconds a worker gets between SIGTERM and SIGKILL when the group is stopped. Long enough for
// a SIGTERM handler to flush and write its error file; short enough that Ctrl-C never looks
// like a hang (torchrun's 30 s does).
inline constexpr double kDefaultGracePeriodS = 10.0;

// Seconds the machines of a multi-machine job wait for each other to join (torchrun's
// rendezvous waits as long by default), also before each restart.
inline constexpr double kDefaultJoinTimeoutS = 600.0;

// Every value resolved. Copyable; the port reservation is shared by the copies.
struct LaunchSpec {
  // Topology: this launcher runs num_processes workers, ranks
  // machine_rank * num_processes .. + num_processes - 1 of a world of num_machines * num_processes.
  int num_processes = 1;
  int num_machines = 1;
  int machine_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0 only in a dry run: a free port is chosen at launch
  std::string run_id;  // identical on every machine of one job
  std::string host;    // this machine's name, for failure reports

  // The job starts through mpirun (mpirun_config): this launcher runs one process, mpirun, which
  // starts every rank on the hosts of its hostfile; the ranks learn their place from MPI's own
  // variables (the runtime reads them), so none of torchrun's rank variables are set.
  bool through_mpirun = false;

  // What the workers are told.
  bool use_cpu = true;
  MixedPrecision mixed_precision = MixedPrecision::kNo;
  bool debug = false;
  std::optional<int> omp_threads;  // OMP_NUM_THREADS; empty: leave the inherited value alone
  std::vector<int> gpu_ids;        // --gpu_ids as indices among the GPUs this launcher sees
  // What workers get as CUDA_VISIBLE_DEVICES (the same GPUs in the launcher's own naming, which
  // differs from gpu_ids when the launcher itself runs under CUDA_VISIBLE_DEVICES); empty: not set.
  std::vector<std::string> cuda_visible_devices;
  // --enable_cpu_affinity: per local rank, the CPUs its worker is bound to (those nearest its
  // GPU that this launcher may use); an empty entry, or no entries at all: not bound.
  std::vector<std::vector<int>> cpu_affinity;
  std::string role = "default";
  // accelerate's variables for the job (ACCELERATE_*, FSDP_*, KMP_*, ...), the same for every worker.
  std::vector<std::pair<std::string, std::string>> job_environment;

  // The job: the executable to exec (absolute or ./relative path, checked to exist) and the
  // full argv (argv[0] as the user wrote it, or the interpreter for *.py jobs).
  std::string executable;
  std::vector<std::string> argv;

  // Supervision.
  int max_restarts = 0;
  double grace_period_s = kDefaultGracePeriodS;
  double join_timeout_s = kDefaultJoinTimeoutS;  // several machines only

  // Output.
  bool quiet = false;                   // no "[rankN]: " prefixes (--quiet, or a job of one worker)
  std::string log_dir;                  // per-rank files under it; empty: none
  int redirects = 0;                    // torchrun's -r: 1 stdout, 2 stderr, 3 both reach the log files only
  std::vector<int> console_local_ranks; // local ranks whose output reaches the console; empty: all

  // The request's environment lookup (TMPDIR for the run's scratch files).
  env::Lookup environment = env::process_environment();

  // Holds a chosen free port so no other job's free-port choice can take it until we exit.
  std::shared_ptr<PortReservation> port_reservation;

  int world_size() const { return num_processes * num_machines; }
  int global_rank(int local_rank) const { return machine_rank * num_processes + local_rank; }
  bool shows_on_console(int local_rank) const;
};

// Guesses the unset fields of `request` from `machine`, validates all of them and returns the
// spec. Guessed values are announced on `notes` in one line (not with --quiet); values that came
// from the command line or a config file are never announced. Warnings (a GPU mode on a machine without GPUs,
// a busy port replaced by a free one) and the note that accelerate settings go to the job are
// one line each on `notes`. Throws accel::UsageError naming the flag and the accepted values
// on any bad input, before anything is started. Binds a socket to check or reserve the
// rendezvous port, except for a dry run (request.dry_run), which touches nothing.
LaunchSpec resolve(const LaunchRequest& request, const hardware::Machine& machine, std::ostream& notes);

// Where a worker sits in one attempt of the group.
struct WorkerSlot {
  int local_rank = 0;
  int restart_count = 0;
  std::string error_file;  // TORCHELASTIC_ERROR_FILE
};

// The variables accel-launch adds to (or overrides in) the inherited environment of one worker:
// torchrun's contract plus ACCEL_*, OMP_NUM_THREADS and CUDA_VISIBLE_DEVICES when they apply.
std::vector<std::pair<std::string, std::string>> worker_environment(const LaunchSpec& spec, const WorkerSlot& slot);

// What --dry_run prints: for each local worker one line of KEY=VALUE pairs (every variable the
// launcher sets for it, values shell-quoted where needed), then the command line.
std::string dry_run_report(const LaunchSpec& spec);

}  // namespace accel::launch
