#include "accel/config/apply.h"

#include "accel/config/locations.h"

namespace accel::config {
namespace {

template <typename T, typename U>
void fill(std::optional<T>& field, const std::optional<U>& value) {
  if (!field && value) field = static_cast<T>(*value);
}

}  // namespace

void fill_request(launch::LaunchRequest& request, const Config& config) {
  const std::string mode = config.distributed_type.value_or("");
  // --gpu_ids on the command line asks for GPU workers: a CPU file must not turn that into a
  // contradiction with a --cpu the user never typed.
  if (request.gpu_ids) {
    fill(request.use_cpu, std::optional<bool>(false));
  } else if (mode == "MULTI_CPU" || config.use_cpu.value_or(false)) {
    fill(request.use_cpu, std::optional<bool>(true));
  } else if (mode == "MULTI_GPU") {
    fill(request.use_cpu, std::optional<bool>(false));
  }
  fill(request.num_processes, config.num_processes);
  if (mode == "NO") fill(request.num_processes, std::optional<int>(1));
  fill(request.num_machines, config.num_machines);
  fill(request.machine_rank, config.machine_rank);
  fill(request.main_process_ip, config.main_process_ip);
  fill(request.main_process_port, config.main_process_port);
  // accelerate's questionnaire writes gpu_ids: all for CPU configs too; it means nothing there.
  if (!request.use_cpu.value_or(false)) fill(request.gpu_ids, config.gpu_ids);
  fill(request.mixed_precision, config.mixed_precision);
  fill(request.debug, config.debug);
  fill(request.num_cpu_threads_per_process, config.num_cpu_threads_per_process);
  fill(request.log_dir, config.log_dir);
  fill(request.tee, config.tee);
  fill(request.max_restarts, config.max_restarts);
  fill(request.grace_period_s, config.grace_period);
  fill(request.role, config.role);
  fill(request.local_ranks_filter, config.local_ranks_filter);
}

void apply_config_file(launch::LaunchRequest& request, std::ostream& notes, const env::Lookup& lookup) {
  const auto located = find_config_file(request.config_file, lookup);
  if (!located) return;
  notes << "accel-launch: using config file " << located->path << " (from " << describe(located->source) << ")\n";
  const LoadedConfig loaded = load_config(located->path);
  for (const auto& note : loaded.notes) notes << "accel-launch: " << note << "\n";
  fill_request(request, loaded.config);
  request.config_file = located->path;
}

void apply_config_file(launch::LaunchRequest& request, std::ostream& notes) {
  apply_config_file(request, notes, env::process_environment());
}

}  // namespace accel::config
