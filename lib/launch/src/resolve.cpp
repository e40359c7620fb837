#include "accel/launch/resolve.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cerrno>
#include <sstream>

#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "accel/core/precision.h"
#include "accel/core/text.h"
#include "accel/launch/accelerate_env.h"
#include "accel/launch/options.h"
#include "cluster_env.h"
#include "mpi_exchange.h"
#include "process.h"

namespace accel::launch {
namespace {

int at_least(const std::optional<int>& value, const std::string& flag, int minimum, int fallback) {
  if (!value) return fallback;
  if (*value < minimum) {
    throw UsageError(flag + " " + std::to_string(*value) + ": expected an integer >= " +
                     std::to_string(minimum));
  }
  return *value;
}

bool is_directory(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool is_executable_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// execvp's search, done up front so a missing JOB is a usage error before anything starts.
std::optional<std::string> find_on_path(const std::string& name, const env::Lookup& environment) {
  for (const auto& dir : text::split(environment("PATH").value_or("/usr/local/bin:/usr/bin:/bin"), ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
  }
  return std::nullopt;
}

void resolve_job(const LaunchRequest& request, LaunchSpec& spec) {
  if (request.job.empty() || request.job.front().empty()) {
    throw UsageError("missing JOB: usage: accel-launch [options] JOB [JOB ARGS...]");
  }
  const std::string& job = request.job.front();
  if (request.python_module.value_or(false)) {
    if (request.no_python.value_or(false)) {
      throw UsageError("-m/--module runs JOB as a Python module under python3; it cannot be combined with --no_python");
    }
    const auto interpreter = find_on_path("python3", request.environment);
    if (!interpreter) throw UsageError("-m/--module " + job + ": python3 is not on PATH");
    spec.executable = *interpreter;
    spec.argv = {"python3", "-m"};
    spec.argv.insert(spec.argv.end(), request.job.begin(), request.job.end());
    return;
  }
  // accelerate runs every JOB under Python unless --no_python; executables keep running
  // directly, so a file that is not executable (a script without +x) is what goes to python3.
  const bool no_python = request.no_python.value_or(false);
  const bool named_py = job.size() > 3 && job.compare(job.size() - 3, 3, ".py") == 0;
  const bool python = !no_python && (named_py || (job.find('/') != std::string::npos && !is_executable_file(job) &&
                                                    ::access(job.c_str(), R_OK) == 0 && !is_directory(job)));
  if (python) {
    if (::access(job.c_str(), R_OK) != 0) {
      throw UsageError("JOB " + job + ": no such readable Python script");
    }
    const auto interpreter = find_on_path("python3", request.environment);
    if (!interpreter) {
      throw UsageError("JOB " + job + " is a Python script but python3 is not on PATH; install it or pass --no_python");
    }
    spec.executable = *interpreter;
    spec.argv = {"python3"};
    spec.argv.insert(spec.argv.end(), request.job.begin(), request.job.end());
    return;
  }
  if (job.find('/') != std::string::npos) {
    struct stat info {};
    if (::stat(job.c_str(), &info) != 0) throw UsageError("JOB " + job + ": no such file");
    if (!S_ISREG(info.st_mode)) throw UsageError("JOB " + job + ": not a regular file");
    if (::access(job.c_str(), X_OK) != 0) {
      throw UsageError("JOB " + job + ": not executable (chmod +x it, or drop --no_python to run it under python3)");
    }
    spec.executable = job;
  } else {
    const auto found = find_on_path(job, request.environment);
    if (!found) {
      const auto command = text::closest_match(job, command_words());
      throw UsageError("JOB " + job + ": not found on PATH (give a path such as ./" + job + ")" +
                       (command ? "; did you mean the command `accel-launch " + *command + "`?" : ""));
    }
    spec.executable = *found;
  }
  spec.argv = request.job;
}

std::vector<int> parse_index_list(const std::string& flag, const std::string& value) {
  std::vector<int> indices;
  for (const auto& part : text::split(value, ',')) {
    const auto index = text::parse_integer(part);
    if (!index || *index < 0 || *index > 1'000'000) {
      throw UsageError(flag + " '" + value + "': '" + part + "' is not an index; expected a comma-separated list such as 0,1");
    }
    if (std::find(indices.begin(), indices.end(), *index) != indices.end()) {
      throw UsageError(flag + " '" + value + "': " + part + " is listed twice");
    }
    indices.push_back(static_cast<int>(*index));
  }
  return indices;
}

// GPU ids named on the command line or in a file, checked against this machine.
std::vector<int> resolve_gpu_ids(const std::string& origin, const std::string& value, const hardware::Machine& machine) {
  const std::string count = std::to_string(machine.gpus.size());
  auto ids = parse_index_list(origin, value);
  for (int id : ids) {
    if (id >= static_cast<int>(machine.gpus.size())) {
      throw UsageError(origin + " " + value + ": GPU " + std::to_string(id) + " does not exist; this machine has " +
                       count + " GPU(s), numbered 0.." + std::to_string(machine.gpus.size() - 1));
    }
  }
  return ids;
}

// A word as a POSIX shell reads it back: unchanged when it holds only safe characters.
std::string shell_quote(const std::string& word) {
  const bool safe = !word.empty() && word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                            "0123456789_-.,:/=+@%") == std::string::npos;
  if (safe) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// accelerate's _get_mpirun_args: Open MPI spells the options --hostfile/--npernode and binds to
// sockets; MPICH, Intel MPI and MVAPICH spell them -f/-ppn.
std::vector<std::string> mpirun_prefix(const std::string& hostfile, int per_machine, int total,
                                       const env::Lookup& environment) {
  std::optional<std::string> mpirun = find_on_path("mpirun", environment);
  if (!mpirun) mpirun = find_on_path("mpiexec", environment);
  if (!mpirun) {
    throw UsageError("mpirun_hostfile " + hostfile +
                     " asks for an MPI launch but neither mpirun nor mpiexec is on PATH; install Open MPI, MPICH or "
                     "Intel MPI, or remove mpirun_config to let accel-launch start the workers itself");
  }
  std::string version;
  const std::string probe = "'" + *mpirun + "' --version 2>&1";
  if (FILE* pipe = ::popen(probe.c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe)) version += buffer;
    ::pclose(pipe);
  }
  const bool open_mpi = version.find("Open MPI") != std::string::npos || version.find("OpenRTE") != std::string::npos;
  std::vector<std::string> argv = {*mpirun};
  if (open_mpi) {
    argv.insert(argv.end(), {"--hostfile", hostfile, "--npernode", std::to_string(per_machine), "-n",
                             std::to_string(total), "--bind-to", "socket"});
  } else {
    argv.insert(argv.end(), {"-f", hostfile, "-ppn", std::to_string(per_machine), "-n", std::to_string(total)});
  }
  return argv;
}

// The lowest-precedence source of machine 0's address, used only by launchers that mpirun
// started when nothing else names machine 0. Every launcher of the mpirun job takes part (a dry
// run too: nothing is bound). Returns the announcement, empty when not asked.
std::string ask_mpi_for_machine_zero(const std::optional<ClusterLayout>& cluster, const LaunchSpec& spec,
                                     LaunchRequest& request) {
  if (spec.num_machines == 1 || request.main_process_ip || !cluster || !cluster->started_by_mpirun) return "";
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(spec.join_timeout_s * 1000));
  const auto found = exchange_main_address(request.environment, timeout);
  request.main_process_ip = found.address;
  return "accel-launch: --main_process_ip " + found.address + " from MPI rank 0 (" + found.service +
         "); pass --main_process_ip or mpirun -x MASTER_ADDR=... to choose otherwise\n";
}

std::string this_host() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string("localhost");
}

// What resolve() tells the user once everything is valid: guessed values in one line, then
// one line per warning or note.
struct Announcements {
  std::vector<std::string> guessed;
  std::vector<std::string> warnings;
};

void resolve_machines(const LaunchRequest& request, LaunchSpec& spec) {
  spec.num_machines = at_least(request.num_machines, request.origin("num_machines"), 1, 1);
  if (spec.num_machines > 1 && !request.machine_rank) {
    throw UsageError(request.origin("num_machines") + " " + std::to_string(spec.num_machines) +
                     " needs --machine_rank: give each machine its index 0.." + std::to_string(spec.num_machines - 1));
  }
  spec.machine_rank = at_least(request.machine_rank, request.origin("machine_rank"), 0, 0);
  if (spec.machine_rank >= spec.num_machines) {
    throw UsageError(request.origin("machine_rank") + " " + std::to_string(spec.machine_rank) + " must be smaller than " +
                     request.origin("num_machines") + " " +
                     std::to_string(spec.num_machines) + " (machines are numbered 0.." +
                     std::to_string(spec.num_machines - 1) + ")");
  }
}

// CPU or GPU workers, and which GPUs.
void resolve_devices(const LaunchRequest& request, const hardware::Machine& machine, DistributedType mode,
                     LaunchSpec& spec, Announcements& said) {
  // accelerate starts the workers of a GPU mode on a machine without GPUs too (each then finds
  // no device and runs on CPU); refusing would stop files accelerate runs.
  spec.use_cpu = request.use_cpu.value_or(false) || machine.gpus.empty();
  if (wants_accelerators(mode) && !request.use_cpu.value_or(false) && machine.gpus.empty()) {
    said.warnings.push_back("warning: distributed_type " + std::string(to_string(mode)) +
                            " asks for GPU workers but this machine has no GPU; running CPU workers instead (as accelerate does)");
  }
  if (request.names_gpus() && spec.use_cpu) {
    said.warnings.push_back("warning: gpu_ids " + *request.gpu_ids + " ignored: " +
                            (request.use_cpu.value_or(false) ? std::string("the workers run on CPU (--cpu or use_cpu)")
                                                             : std::string("this machine has no GPU, the workers run on CPU")));
  } else if (request.names_gpus()) {
    spec.gpu_ids = resolve_gpu_ids(request.origin("gpu_ids"), *request.gpu_ids, machine);
    for (int id : spec.gpu_ids) spec.cuda_visible_devices.push_back(machine.gpus[id].cuda_id);
  }
}

// num_processes counts the workers of all machines, as in accelerate; each machine runs its share.
void resolve_requested_process_count(const LaunchRequest& request, LaunchSpec& spec) {
  const int total = at_least(request.num_processes, request.origin("num_processes"), 1, 1);
  if (total < spec.num_machines) {
    throw UsageError(request.origin("num_processes") + " " + std::to_string(total) +
                     " is the total over all machines: with " + request.origin("num_machines") + " " +
                     std::to_string(spec.num_machines) + " it leaves machines without a worker; pass at least " +
                     std::to_string(spec.num_machines));
  }
  if (total % spec.num_machines != 0) {
    throw UsageError(request.origin("num_processes") + " " + std::to_string(total) +
                     " is the total over all machines and must divide evenly by " + request.origin("num_machines") + " " +
                     std::to_string(spec.num_machines) + "; pass a multiple of " + std::to_string(spec.num_machines));
  }
  spec.num_processes = total / spec.num_machines;
  if (!spec.gpu_ids.empty() && spec.gpu_ids.size() != static_cast<std::size_t>(spec.num_processes)) {
    throw UsageError(request.origin("gpu_ids") + " " + *request.gpu_ids + " names " + std::to_string(spec.gpu_ids.size()) +
                     " GPU(s) but each machine runs " + std::to_string(spec.num_processes) +
                     " process(es) (--num_processes " + std::to_string(total) + " in total); give one GPU per process");
  }
}

// torchrun's --nproc_per_node auto | cpu | gpu: one worker per GPU (gpu; auto when there are
// GPUs), else one per CPU (cpu; auto without GPUs), as torchrun counts them.
int torchrun_processes_per_machine(const std::string& kind, const hardware::Machine& machine, const LaunchSpec& spec) {
  if (kind == "gpu" && machine.gpus.empty()) {
    throw UsageError("--nproc_per_node gpu: this machine has no GPU; pass --nproc_per_node cpu or a number");
  }
  if (kind == "cpu" || spec.use_cpu) return std::max(1, machine.cpus);
  return static_cast<int>(spec.gpu_ids.empty() ? machine.gpus.size() : spec.gpu_ids.size());
}

// Workers per machine: asked for, one per named GPU, one per GPU, or one CPU worker; then
// checked against the GPUs there are and the workers this launcher can supervise.
void resolve_process_count(const LaunchRequest& request, const hardware::Machine& machine, LaunchSpec& spec,
                           Announcements& said) {
  if (request.nproc_per_node) {
    spec.num_processes = torchrun_processes_per_machine(*request.nproc_per_node, machine, spec);
  } else if (request.num_processes) {
    resolve_requested_process_count(request, spec);
  } else if (!spec.gpu_ids.empty()) {
    spec.num_processes = static_cast<int>(spec.gpu_ids.size());
  } else if (!spec.use_cpu) {
    spec.num_processes = static_cast<int>(machine.gpus.size());
    said.guessed.push_back("--num_processes " + std::to_string(spec.world_size()) + " (one per GPU)");
  } else {
    // One CPU worker: its intra-op threads already use every core, so more workers would only
    // multiply the model's memory and split the same cores. Users who want data-parallel CPU
    // workers ask for them with --num_processes.
    spec.num_processes = 1;
    said.guessed.push_back("--num_processes " + std::to_string(spec.world_size()) + " (no GPU in use: one CPU worker" +
                           (spec.num_machines > 1 ? " per machine)" : ")"));
  }

  // Each GPU worker takes cuda:LOCAL_RANK among the GPUs it sees; a worker without a GPU of its
  // own would crash deep inside the job, so refuse before starting any.
  const std::size_t visible_gpus = spec.gpu_ids.empty() ? machine.gpus.size() : spec.gpu_ids.size();
  if (!spec.use_cpu && static_cast<std::size_t>(spec.num_processes) > visible_gpus) {
    throw UsageError(request.origin("num_processes") + " " + std::to_string(spec.world_size()) + " needs " +
                     std::to_string(spec.num_processes) + " GPU(s) per machine but " + std::to_string(visible_gpus) +
                     " GPU(s) are available; pass --num_processes " + std::to_string(visible_gpus * spec.num_machines) +
                     " or less, or --cpu for CPU workers");
  }
  const WorkerCapacity capacity = worker_capacity();
  if (spec.num_processes > capacity.max_workers) {
    const std::string per_machine =
        spec.num_machines > 1 ? std::to_string(spec.num_processes) + " workers per machine; " : "";
    throw UsageError(request.origin("num_processes") + " " + std::to_string(spec.world_size()) + ": " + per_machine +
                     "this launcher can run at most " + std::to_string(capacity.max_workers) +
                     " workers here: " + capacity.reason);
  }
}

void resolve_threads(const LaunchRequest& request, const hardware::Machine& machine, LaunchSpec& spec,
                     Announcements& said) {
  if (request.num_cpu_threads_per_process) {
    spec.omp_threads = at_least(request.num_cpu_threads_per_process, request.origin("num_cpu_threads_per_process"), 1, 1);
  } else if (!request.environment(env::kOmpNumThreads)) {
    // Workers share the cores; without a limit each would start one thread per core and they
    // would fight over them.
    spec.omp_threads = std::max(1, machine.cpus / spec.num_processes);
    said.guessed.push_back("--num_cpu_threads_per_process " + std::to_string(*spec.omp_threads) + " (" +
                           std::to_string(machine.cpus) + " CPUs / " + std::to_string(spec.num_processes) + " workers)");
  }
}

// accelerate's settings for FSDP, DeepSpeed and Megatron-LM reach the job only when the
// workers are not explicitly CPU ones (accelerate's simple launcher drops them too).
DistributedType job_mode(const LaunchRequest& request, DistributedType mode) {
  return request.use_cpu.value_or(false) ? DistributedType::kNo : mode;
}

// What the workers are told besides their place: precision, debug, role and accelerate's variables.
void resolve_job_environment(const LaunchRequest& request, DistributedType mode, LaunchSpec& spec,
                             Announcements& said) {
  if (request.mixed_precision) {
    const auto precision = parse_mixed_precision(*request.mixed_precision);
    if (!precision) {
      throw UsageError(request.origin("mixed_precision") + " " + *request.mixed_precision + ": expected one of " +
                       accepted_mixed_precisions(true));
    }
    spec.mixed_precision = *precision;
  }
  spec.debug = request.debug.value_or(false);
  spec.role = request.role.value_or("default");
  if (spec.role.empty() || spec.role.find_first_of(" \t\n") != std::string::npos) {
    throw UsageError(request.origin("role") + " '" + spec.role + "': expected a non-empty name without spaces");
  }
  const DistributedType passed_mode = job_mode(request, mode);
  spec.job_environment = accelerate::job_environment(
      {passed_mode, spec.use_cpu, spec.mixed_precision, spec.debug, request.job_settings});
  std::vector<std::string> passed;
  if (passes_mode_settings(passed_mode)) passed.push_back(to_string(passed_mode));
  if (spec.mixed_precision == MixedPrecision::kFp8) passed.push_back(to_string(MixedPrecision::kFp8));
  for (const char* name : {"dynamo_backend", "enable_cpu_affinity"}) {
    if (request.job_settings.count(name)) passed.push_back(name);
  }
  if (!passed.empty()) {
    said.warnings.push_back("note: the " + text::join(passed, ", ") +
                            " settings are passed to the job as accelerate's variables; accel-launch itself only starts the workers");
  }
}

// Seconds from the request, checked: `origin` names where the value came from.
double seconds(double value, const std::string& origin, bool zero_allowed) {
  if (!std::isfinite(value) || value < 0 || (!zero_allowed && value == 0)) {
    std::ostringstream text;
    text << value;
    throw UsageError(origin + " " + text.str() + ": expected seconds " + (zero_allowed ? ">= 0" : "> 0"));
  }
  return value;
}

void resolve_supervision(const LaunchRequest& request, LaunchSpec& spec) {
  spec.max_restarts = at_least(request.max_restarts, request.origin("max_restarts"), 0, 0);
  if (request.grace_period) spec.grace_period_s = seconds(*request.grace_period, request.origin("grace_period"), true);
  if (request.join_timeout) spec.join_timeout_s = seconds(*request.join_timeout, request.origin("join_timeout"), false);
}

// torchrun's -t/-r without --log_dir: the log files go to a new temporary directory, named.
std::string temporary_log_dir(const LaunchRequest& request) {
  std::string path = request.environment("TMPDIR").value_or("/tmp") + "/accel-launch-logs-XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) {
    throw UsageError(request.origin(request.tee ? "tee" : "redirects") + " without --log_dir: cannot create a directory " +
                     "for the log files in " + path.substr(0, path.rfind('/')) + " (" + std::strerror(errno) + "); pass --log_dir DIR");
  }
  return path;  // run() names it ("per-rank logs in ...")
}

void resolve_output(const LaunchRequest& request, LaunchSpec& spec) {
  // One worker's output passes through unprefixed, as under accelerate's simple launcher.
  spec.quiet = request.quiet.value_or(false) || spec.world_size() == 1;
  spec.redirects = request.redirects.value_or(0);
  spec.log_dir = request.log_dir.value_or("");
  if ((request.tee.value_or(false) || spec.redirects != 0) && spec.log_dir.empty() && !request.dry_run) {
    spec.log_dir = temporary_log_dir(request);
  }
  if (!request.local_ranks_filter) return;
  spec.console_local_ranks = parse_index_list(request.origin("local_ranks_filter"), *request.local_ranks_filter);
  for (int local_rank : spec.console_local_ranks) {
    if (local_rank >= spec.num_processes) {
      throw UsageError(request.origin("local_ranks_filter") + " " + *request.local_ranks_filter + ": local rank " +
                       std::to_string(local_rank) + " does not exist with " + std::to_string(spec.num_processes) +
                       " process(es) per machine");
    }
  }
}

// A free port, held by the spec until the launcher exits; none in a dry run, which binds nothing.
void reserve_free_port(const LaunchRequest& request, LaunchSpec& spec) {
  if (request.dry_run) return;
  spec.port_reservation = std::make_shared<PortReservation>(PortReservation::any_free());
  spec.master_port = spec.port_reservation->port();
}

// One machine: a free port unless one was named; a named port that is busy gives way to a free
// one with a warning (accelerate does the same).
void resolve_local_rendezvous(const LaunchRequest& request, LaunchSpec& spec, Announcements& said) {
  const std::string port_flag = request.origin("main_process_port");
  spec.master_addr = request.main_process_ip.value_or(env::kDefaultMasterAddr);
  if (request.main_process_port.value_or(0) == 0) {
    reserve_free_port(request, spec);
    if (!request.main_process_port && !request.dry_run) {
      said.guessed.push_back(port_flag + " " + std::to_string(spec.master_port) + " (free)");
    }
    return;
  }
  spec.master_port = *request.main_process_port;
  if (request.dry_run) return;
  try {
    require_port_free(port_flag, spec.master_addr, spec.master_port);
  } catch (const UsageError& busy) {
    reserve_free_port(request, spec);
    said.warnings.push_back("warning: " + std::string(busy.what()) + "; using the free port " +
                            std::to_string(spec.master_port) + " instead (one machine)");
  }
}

// Several machines must agree, so the port is the named one or the well-known default, and
// only machine 0 (where rank 0 listens) can check it.
void resolve_shared_rendezvous(const LaunchRequest& request, LaunchSpec& spec, Announcements& said) {
  const std::string port_flag = request.origin("main_process_port");
  if (!request.main_process_ip) {
    throw UsageError(request.origin("num_machines") + " " + std::to_string(spec.num_machines) +
                     " needs --main_process_ip: the address of machine 0, where rank 0 listens");
  }
  spec.master_addr = *request.main_process_ip;
  if (request.main_process_port && *request.main_process_port == 0) {
    throw UsageError(port_flag + " 0 (a free port) only works on one machine: every machine must be given the same port");
  }
  spec.master_port = request.main_process_port.value_or(env::kDefaultMasterPort);
  if (spec.master_port == 65535) {
    throw UsageError(port_flag + " 65535: several machines also need the next port for the "
                     "launchers' control plane; choose a port below 65535");
  }
  if (!request.main_process_port) said.guessed.push_back(port_flag + " " + std::to_string(spec.master_port));
  if (spec.machine_rank == 0 && !request.dry_run) require_port_free(port_flag, spec.master_addr, spec.master_port);
}

void resolve_rendezvous(const LaunchRequest& request, LaunchSpec& spec, Announcements& said) {
  if (request.main_process_port && (*request.main_process_port < 0 || *request.main_process_port > 65535)) {
    throw UsageError(request.origin("main_process_port") + " " + std::to_string(*request.main_process_port) +
                     ": out of range; expected 1..65535 (or 0 for a free port on one machine)");
  }
  if (request.main_process_ip && request.main_process_ip->empty()) {
    throw UsageError(request.origin("main_process_ip") +
                     " '': expected the address of machine 0, such as 10.0.0.1 or a host name");
  }
  if (spec.num_machines == 1) resolve_local_rendezvous(request, spec, said);
  else resolve_shared_rendezvous(request, spec, said);
}

// mpirun starts every rank of every machine, so this launcher runs mpirun alone.
void route_through_mpirun(const std::string& hostfile, const env::Lookup& environment, LaunchSpec& spec) {
  struct stat info {};
  if (::stat(hostfile.c_str(), &info) != 0 || !S_ISREG(info.st_mode) || ::access(hostfile.c_str(), R_OK) != 0) {
    throw UsageError("mpirun_hostfile " + hostfile +
                     ": no such readable file; mpirun needs it to know the hosts (write one host per line, or remove "
                     "mpirun_config / --mpirun_hostfile to let accel-launch start the workers on this machine)");
  }
  std::vector<std::string> argv = mpirun_prefix(hostfile, spec.num_processes, spec.world_size(), environment);
  spec.executable = argv.front();
  argv.insert(argv.end(), spec.argv.begin(), spec.argv.end());
  spec.argv = std::move(argv);
  spec.through_mpirun = true;
  spec.num_processes = 1;
  spec.num_machines = 1;
  spec.machine_rank = 0;
  spec.console_local_ranks.clear();
}

// --enable_cpu_affinity, accelerate's NUMA binding: each GPU worker runs on the CPUs nearest its
// GPU (NVML's affinity mask), limited to those the launcher itself may use. accelerate binds
// inside its (Python) workers; accel-launch binds every GPU worker at spawn, so C++ jobs get the
// same placement. Announced in one line.
void resolve_cpu_affinity(const LaunchRequest& request, const hardware::Machine& machine, LaunchSpec& spec,
                          Announcements& said) {
  const auto affinity = request.job_settings.find("enable_cpu_affinity");
  if (affinity == request.job_settings.end() || accelerate::python_bool(affinity->second) != "True") return;
  if (spec.use_cpu) return;  // as in accelerate: CPU workers are not bound
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) CPU_ZERO(&allowed);
  spec.cpu_affinity.assign(static_cast<std::size_t>(spec.num_processes), {});
  std::vector<std::string> described;
  for (int local_rank = 0; local_rank < spec.num_processes; ++local_rank) {
    const int gpu = spec.gpu_ids.empty() ? local_rank : spec.gpu_ids[static_cast<std::size_t>(local_rank)];
    auto& cpus = spec.cpu_affinity[static_cast<std::size_t>(local_rank)];
    for (int cpu : machine.gpus[static_cast<std::size_t>(gpu)].local_cpus) {
      if (cpu < CPU_SETSIZE && CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
    }
    const std::string who = "rank " + std::to_string(spec.global_rank(local_rank));
    const std::string which_gpu = "GPU " + std::to_string(gpu);
    described.push_back(cpus.empty() ? who + " not bound (" + which_gpu + "'s local CPUs are unknown or not ours)"
                                     : who + " on CPUs " + hardware::format_cpu_list(cpus) + " (" + which_gpu + ")");
  }
  said.warnings.push_back("CPU affinity: " + text::join(described, ", "));
}

}  // namespace

bool LaunchSpec::shows_on_console(int local_rank) const {
  return console_local_ranks.empty() ||
         std::find(console_local_ranks.begin(), console_local_ranks.end(), local_rank) != console_local_ranks.end();
}

LaunchSpec resolve(const LaunchRequest& asked, const hardware::Machine& machine, std::ostream& notes) {
  LaunchRequest request = asked;
  std::string cluster_note;
  const auto cluster = detect_cluster(request.environment);
  if (cluster) cluster_note = apply_cluster_layout(*cluster, request);
  const DistributedType mode = request.distributed_type.value_or(DistributedType::kNo);
  if (mode == DistributedType::kXla || mode == DistributedType::kTpu) {
    throw UsageError("distributed_type " + std::string(to_string(mode)) +
                     " (TPU) is not run: accel-launch runs jobs on local machines only; launch TPU jobs with `accelerate launch`");
  }
  LaunchSpec spec;
  Announcements said;
  resolve_job(request, spec);
  resolve_machines(request, spec);
  resolve_devices(request, machine, mode, spec, said);
  resolve_process_count(request, machine, spec, said);
  resolve_cpu_affinity(request, machine, spec, said);
  resolve_threads(request, machine, spec, said);
  resolve_job_environment(request, mode, spec, said);
  resolve_supervision(request, spec);
  resolve_output(request, spec);
  cluster_note += ask_mpi_for_machine_zero(cluster, spec, request);
  resolve_rendezvous(request, spec, said);
  if (request.mpirun_hostfile && !wants_accelerators(job_mode(request, mode))) {
    route_through_mpirun(*request.mpirun_hostfile, request.environment, spec);
  }
  spec.run_id = "accel-" + spec.master_addr + "-" + std::to_string(spec.master_port);
  spec.host = this_host();
  spec.environment = request.environment;

  notes << cluster_note;
  for (const auto& warning : said.warnings) notes << "accel-launch: " << warning << "\n";
  if (!said.guessed.empty() && !request.quiet.value_or(false)) {
    notes << "accel-launch: using " << text::join(said.guessed, ", ") << "; pass these flags to choose otherwise\n";
  }
  return spec;
}

std::vector<std::pair<std::string, std::string>> worker_environment(const LaunchSpec& spec, const WorkerSlot& slot) {
  const auto str = [](int value) { return std::to_string(value); };
  const auto boolean = [](bool value) { return std::string(value ? "true" : "false"); };
  const int rank = spec.global_rank(slot.local_rank);
  if (spec.through_mpirun) {
    // mpirun hands these to every rank; the ranks' places come from MPI's variables.
    std::vector<std::pair<std::string, std::string>> vars = {
        {env::kMasterAddr, spec.master_addr}, {env::kMasterPort, str(spec.master_port)}, {env::kLauncher, "accel-launch"},
        {env::kUseCpu, boolean(spec.use_cpu)}, {env::kMixedPrecision, to_string(spec.mixed_precision)}, {env::kDebug, boolean(spec.debug)},
    };
    if (spec.omp_threads) vars.emplace_back(env::kOmpNumThreads, str(*spec.omp_threads));
    vars.insert(vars.end(), spec.job_environment.begin(), spec.job_environment.end());
    return vars;
  }
  std::vector<std::pair<std::string, std::string>> vars = {
      {env::kRank, str(rank)},
      {env::kLocalRank, str(slot.local_rank)},
      {env::kWorldSize, str(spec.world_size())},
      {env::kLocalWorldSize, str(spec.num_processes)},
      {env::kGroupRank, str(spec.machine_rank)},
      {env::kGroupWorldSize, str(spec.num_machines)},
      {env::kRoleName, spec.role},
      {env::kRoleRank, str(rank)},
      {env::kRoleWorldSize, str(spec.world_size())},
      {env::kMasterAddr, spec.master_addr},
      {env::kMasterPort, str(spec.master_port)},
      {env::kRunId, spec.run_id},
      {env::kRestartCount, str(slot.restart_count)},
      {env::kMaxRestarts, str(spec.max_restarts)},
      {env::kLauncher, "accel-launch"},
      {env::kUseCpu, boolean(spec.use_cpu)},
      {env::kMixedPrecision, to_string(spec.mixed_precision)},
      {env::kDebug, boolean(spec.debug)},
  };
  if (!slot.error_file.empty()) vars.emplace_back(env::kErrorFile, slot.error_file);
  if (spec.omp_threads) vars.emplace_back(env::kOmpNumThreads, str(*spec.omp_threads));
  if (!spec.cuda_visible_devices.empty()) {
    vars.emplace_back(env::kCudaVisibleDevices, text::join(spec.cuda_visible_devices, ","));
  }
  vars.insert(vars.end(), spec.job_environment.begin(), spec.job_environment.end());
  return vars;
}

std::string dry_run_report(const LaunchSpec& spec) {
  std::string report;
  for (int local_rank = 0; local_rank < spec.num_processes; ++local_rank) {
    std::vector<std::string> pairs;
    for (const auto& [name, value] : worker_environment(spec, {local_rank, 0, ""})) {
      pairs.push_back(name + "=" + shell_quote(value));
    }
    report += text::join(pairs, " ") + "\n";
  }
  std::vector<std::string> words;
  for (const auto& word : spec.argv) words.push_back(shell_quote(word));
  report += text::join(words, " ") + "\n";
  return report;
}

}  // namespace accel::launch
