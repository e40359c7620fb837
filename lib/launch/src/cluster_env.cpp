#include "cluster_env.h"

#include <algorithm>
#include <initializer_list>
#include <type_traits>

#include "accel/core/error.h"
#include "accel/core/text.h"

namespace accel::launch {
namespace {

std::optional<long long> read_number(const env::Lookup& lookup, const std::string& name, long long minimum,
                                     long long maximum) {
  const auto raw = lookup(name);
  if (!raw || text::trim(*raw).empty()) return std::nullopt;
  const auto value = text::parse_integer(text::trim(*raw));
  if (!value || *value < minimum || *value > maximum) {
    throw UsageError("environment variable " + name + "='" + *raw + "' is not a valid value; expected an integer in " +
                     std::to_string(minimum) + ".." + std::to_string(maximum));
  }
  return value;
}

std::optional<FromEnvironment<int>> read_int(const env::Lookup& lookup, const std::string& name, int minimum,
                                             int maximum = 1'000'000) {
  const auto value = read_number(lookup, name, minimum, maximum);
  if (!value) return std::nullopt;
  return FromEnvironment<int>{static_cast<int>(*value), name};
}

// The first of `names` that is set.
std::optional<FromEnvironment<int>> first_int(const env::Lookup& lookup, std::initializer_list<const char*> names,
                                              int minimum) {
  for (const char* name : names) {
    if (auto value = read_int(lookup, name, minimum)) return value;
  }
  return std::nullopt;
}

std::optional<FromEnvironment<std::string>> read_text(const env::Lookup& lookup, const std::string& name) {
  const auto raw = lookup(name);
  if (!raw || text::trim(*raw).empty()) return std::nullopt;
  return FromEnvironment<std::string>{text::trim(*raw), name};
}

void require_rank_below_count(const ClusterLayout& layout) {
  if (layout.machine_rank && layout.num_machines && layout.machine_rank->value >= layout.num_machines->value) {
    throw UsageError("environment variable " + layout.machine_rank->source + "=" +
                     std::to_string(layout.machine_rank->value) + " must be smaller than " +
                     layout.num_machines->source + "=" + std::to_string(layout.num_machines->value));
  }
}

// A MASTER_ADDR/MASTER_PORT the user exported (sbatch scripts often do) wins over the derived one.
void take_exported_rendezvous(const env::Lookup& lookup, ClusterLayout& layout) {
  if (auto addr = read_text(lookup, env::kMasterAddr)) layout.main_process_ip = addr;
  if (auto port = read_int(lookup, env::kMasterPort, 1, 65535)) layout.main_process_port = port;
}

// mpirun -np NODES --map-by ppr:1:node: one launcher per machine, MPI rank = machine rank.
std::optional<ClusterLayout> detect_mpi(const env::Lookup& lookup) {
  for (const auto& dialect : env::kLauncherVariables) {
    if (!dialect.mpi) continue;
    auto size = read_int(lookup, dialect.world_size, 1);
    auto rank = read_int(lookup, dialect.rank, 0);
    if (!size || !rank) continue;
    if (auto local = read_int(lookup, dialect.local_world_size, 1); local && local->value > 1) {
      const int machines = std::max(1, size->value / local->value);
      throw UsageError("mpirun started " + std::to_string(local->value) + " accel-launch processes on this machine (" +
                       dialect.local_world_size + "=" + std::to_string(local->value) +
                       "); start one per machine, it starts the workers itself: mpirun -np " + std::to_string(machines) +
                       " --map-by ppr:1:node accel-launch --num_processes " + std::to_string(size->value) + " ...");
    }
    ClusterLayout layout;
    layout.engine = std::string(dialect.launcher) + " mpirun";
    layout.started_by_mpirun = true;
    layout.num_machines = size;
    layout.machine_rank = rank;
    // mpirun tells no rank where rank 0 runs: under SLURM the allocation's first node is it,
    // a MASTER_ADDR exported to every rank (mpirun -x MASTER_ADDR=...) wins, and otherwise the
    // launchers ask the MPI runtime itself (resolve.cpp, mpi_exchange.h).
    if (auto nodes = read_text(lookup, "SLURM_JOB_NODELIST")) {
      layout.main_process_ip = FromEnvironment<std::string>{env::first_slurm_host(nodes->value), "first of SLURM_JOB_NODELIST"};
    }
    take_exported_rendezvous(lookup, layout);
    require_rank_below_count(layout);
    return layout;
  }
  return std::nullopt;
}

// srun --ntasks-per-node=1 accel-launch ...: one launcher per node of the step.
std::optional<ClusterLayout> detect_slurm(const env::Lookup& lookup) {
  // Only inside an srun step: a batch script or an salloc shell runs on one node of the
  // allocation, and taking the allocation's size there would wait for machines never started.
  if (!lookup("SLURM_STEP_ID") || !lookup("SLURM_NODEID")) return std::nullopt;
  ClusterLayout layout;
  const auto job_id = read_number(lookup, "SLURM_JOB_ID", 0, 1'000'000'000'000LL);
  layout.engine = "SLURM" + (job_id ? " job " + std::to_string(*job_id) : std::string());
  layout.num_machines = first_int(lookup, {"SLURM_STEP_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_NUM_NODES"}, 1);
  layout.machine_rank = read_int(lookup, "SLURM_NODEID", 0);
  const auto tasks = first_int(lookup, {"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"}, 1);
  if (tasks && layout.num_machines && tasks->value > layout.num_machines->value) {
    const int nodes = layout.num_machines->value;
    throw UsageError("srun started accel-launch " + std::to_string(tasks->value) + " times on " +
                     std::to_string(nodes) + " node(s) (" + tasks->source + "=" + std::to_string(tasks->value) + ", " +
                     layout.num_machines->source + "=" + std::to_string(nodes) +
                     "); it must run once per node and starts the workers itself: srun --nodes=" + std::to_string(nodes) +
                     " --ntasks-per-node=1 accel-launch --num_processes " + std::to_string(tasks->value) + " ...");
  }
  for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
    if (auto nodes = read_text(lookup, name)) {
      layout.main_process_ip =
          FromEnvironment<std::string>{env::expand_slurm_hostlist(name, nodes->value).front(), "first of " + std::string(name)};
      break;
    }
  }
  if (job_id) layout.main_process_port = FromEnvironment<int>{slurm_job_port(*job_id), "from SLURM_JOB_ID"};
  if (auto gpus = read_int(lookup, "SLURM_GPUS_ON_NODE", 0); gpus && gpus->value > 0) layout.gpus_per_machine = gpus;
  take_exported_rendezvous(lookup, layout);
  require_rank_below_count(layout);
  return layout;
}

// torchrun's PET_* flag fallbacks, as the training operator's PyTorchJob sets them, completed by
// the plain MASTER_ADDR/MASTER_PORT/WORLD_SIZE/RANK it also sets (RANK is the pod's index there).
std::optional<ClusterLayout> detect_pytorchjob(const env::Lookup& lookup) {
  const auto nnodes = read_text(lookup, "PET_NNODES");
  const bool plain = lookup(env::kMasterAddr) && lookup(env::kWorldSize) && lookup(env::kRank) &&
                     !lookup(env::kLocalRank) && !lookup(env::kLauncher);
  if (!nnodes && !plain) return std::nullopt;
  ClusterLayout layout;
  if (nnodes) {
    layout.engine = "Kubernetes PyTorchJob";
    // Elastic ranges ("1:4") are torchrun's; a fixed "2" or "2:2" is a layout.
    const auto colon = nnodes->value.find(':');
    const std::string low = nnodes->value.substr(0, colon);
    const auto count = text::parse_integer(low);
    if (!count || *count < 1 || *count > 1'000'000 ||
        (colon != std::string::npos && nnodes->value.substr(colon + 1) != low)) {
      throw UsageError("environment variable PET_NNODES='" + nnodes->value +
                       "' is not a fixed machine count; expected N or N:N (elastic ranges are not supported)");
    }
    layout.num_machines = FromEnvironment<int>{static_cast<int>(*count), "PET_NNODES"};
    layout.machine_rank = first_int(lookup, {"PET_NODE_RANK", env::kRank}, 0);
    layout.main_process_ip = read_text(lookup, "PET_MASTER_ADDR");
    layout.main_process_port = read_int(lookup, "PET_MASTER_PORT", 1, 65535);
    // "auto", "gpu" and "cpu" leave the choice to the usual guess.
    if (auto nproc = read_text(lookup, "PET_NPROC_PER_NODE"); nproc && text::parse_integer(nproc->value)) {
      layout.num_processes = read_int(lookup, "PET_NPROC_PER_NODE", 1);
    }
  } else {
    layout.engine = "MASTER_ADDR/WORLD_SIZE/RANK (one launcher per machine, as a PyTorchJob pod)";
    layout.num_machines = read_int(lookup, env::kWorldSize, 1);
    layout.machine_rank = read_int(lookup, env::kRank, 0);
  }
  if (!layout.main_process_ip) layout.main_process_ip = read_text(lookup, env::kMasterAddr);
  if (!layout.main_process_port) layout.main_process_port = read_int(lookup, env::kMasterPort, 1, 65535);
  require_rank_below_count(layout);
  return layout;
}

}  // namespace

int slurm_job_port(long long job_id) { return 20000 + 2 * static_cast<int>(job_id % 6000); }

std::optional<ClusterLayout> detect_cluster(const env::Lookup& lookup) {
  // mpirun inside a SLURM allocation starts its daemons with srun, so MPI's variables, the
  // precise ones for this process, are read first.
  if (auto layout = detect_mpi(lookup)) return layout;
  if (auto layout = detect_slurm(lookup)) return layout;
  return detect_pytorchjob(lookup);
}

std::string apply_cluster_layout(const ClusterLayout& layout, LaunchRequest& request) {
  std::vector<std::string> filled;
  const auto fill = [&filled](auto& field, const auto& guess, const char* flag) {
    if (field || !guess) return;
    field = guess->value;
    std::string shown;
    if constexpr (std::is_same_v<std::decay_t<decltype(guess->value)>, std::string>) {
      shown = guess->value;
    } else {
      shown = std::to_string(guess->value);
    }
    filled.push_back(std::string(flag) + " " + shown + " (" + guess->source + ")");
  };
  // Count and rank only make sense together: a command line that names either keeps both.
  if (!request.num_machines && !request.machine_rank) {
    fill(request.num_machines, layout.num_machines, "--num_machines");
    fill(request.machine_rank, layout.machine_rank, "--machine_rank");
  }
  // One machine keeps the usual free local port rather than a cluster-wide rendezvous.
  if (request.num_machines.value_or(1) > 1) {
    fill(request.main_process_ip, layout.main_process_ip, "--main_process_ip");
    fill(request.main_process_port, layout.main_process_port, "--main_process_port");
  }
  // --num_processes is the total over all machines; the engines give a count per machine.
  const int machines = request.num_machines.value_or(1);
  const auto per_machine = [machines](const std::optional<FromEnvironment<int>>& count) {
    if (!count || machines == 1) return count;
    return std::optional<FromEnvironment<int>>({count->value * machines, count->source + " x " +
                                                std::to_string(machines) + " machines"});
  };
  fill(request.num_processes, per_machine(layout.num_processes), "--num_processes");
  if (!request.names_gpus() && request.use_cpu != true) {
    fill(request.num_processes, per_machine(layout.gpus_per_machine), "--num_processes");
  }
  if (filled.empty()) return "";
  return "accel-launch: from " + layout.engine + ": " + text::join(filled, ", ") +
         "; pass these flags to choose otherwise\n";
}

}  // namespace accel::launch
