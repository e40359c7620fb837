// config default / config update / config (questionnaire) / test.
#include <unistd.h>

#include <iostream>

#include "accel/config/apply.h"
#include "accel/config/commands.h"
#include "accel/config/locations.h"
#include "accel/config/questionnaire.h"
#include "accel/config/store.h"
#include "accel/core/distributed_type.h"
#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/precision.h"
#include "accel/core/text.h"
#include "accel/launch/supervisor.h"

namespace accel::config {
namespace {

void check_mixed_precision(const std::string& value) {
  const auto precision = parse_mixed_precision(value);
  if (!precision || *precision == MixedPrecision::kFp8) {
    throw UsageError("--mixed_precision '" + value + "': accepted: " + accepted_mixed_precisions(false));
  }
}

std::string summary(const Config& config) {
  const int processes = config.num_processes.value_or(1);
  return std::to_string(processes) + (config.use_cpu.value_or(false) ? " CPU" : " GPU") + " process" +
         (processes == 1 ? "" : "es") + ", distributed_type " + config.distributed_type.value_or("?") + ", mixed_precision " +
         config.mixed_precision.value_or("no");
}

void report_written(const Written& written, std::ostream& out) {
  out << "accel-launch: config written to " << written.path << "\n";
  if (written.backup) out << "accel-launch: the previous file is kept as " << *written.backup << "\n";
}

}  // namespace

Config default_config(const hardware::Machine& machine, const std::string& mixed_precision) {
  check_mixed_precision(mixed_precision);
  const int gpus = static_cast<int>(machine.gpus.size());
  Config config;
  config.compute_environment = "LOCAL_MACHINE";
  config.debug = false;
  config.mixed_precision = mixed_precision;
  config.num_machines = 1;
  config.machine_rank = 0;
  config.distributed_type = to_string(gpus > 1 ? DistributedType::kMultiGpu : DistributedType::kNo);
  config.num_processes = std::max(gpus, 1);
  config.use_cpu = gpus == 0;
  if (gpus > 1) config.gpu_ids = "all";
  return config;
}

int run_default(const DefaultOptions& options, std::ostream& out) {
  check_mixed_precision(options.mixed_precision);
  const Located target = writable_config_file(options.config_file, env::process_environment());
  // accelerate says so and succeeds: a script that runs `config default` every time keeps working.
  if (!options.force && ::access(target.path.c_str(), F_OK) == 0) {
    out << "accel-launch: " << target.path << " already exists and was left unchanged; pass --force to replace it (a backup is kept)\n";
    return 0;
  }
  const hardware::Machine machine = hardware::probe();
  const Config config = default_config(machine, options.mixed_precision);
  const Written written =
      write_atomically(target.path, to_text(config, format_for_path(target.path), Keys::Accelerate), options.force);
  out << "accel-launch: " << (machine.gpus.empty() ? std::string("no GPU found") : std::to_string(machine.gpus.size()) + " GPU(s) found")
      << ": " << summary(config) << "\n";
  report_written(written, out);
  return 0;
}

int run_update(const UpdateOptions& options, std::ostream& out) {
  const auto located = find_config_file(options.config_file, env::process_environment());
  if (!located) {
    throw UsageError("no config file to update: there is none at the default locations; pass --config_file");
  }
  const std::string text = read_file(located->path);
  const Format format = format_for_path(located->path);
  const LoadedConfig loaded = parse_config(text, format, located->path);
  for (const auto& note : loaded.notes) out << "accel-launch: " << note << "\n";
  const std::string updated = to_text(loaded.config, format, Keys::Accelerate);
  if (updated == text) {
    out << "accel-launch: " << located->path << " is up to date; nothing was written\n";
    return 0;
  }
  // accel-launch's own keys move to their own file first, so that nothing is lost if the
  // second write fails, and the config file is left with keys accelerate reads.
  if (const auto own_keys = own_settings_in(loaded.config); !own_keys.empty()) {
    const std::string own_path = own_settings_path(located->path);
    Config own = loaded.config;
    if (::access(own_path.c_str(), F_OK) == 0) own = load_config(located->path).config;
    report_written(write_atomically(own_path, to_text(own, format_for_path(own_path), Keys::Own), true), out);
    out << "accel-launch: accel-launch's own settings (" << text::join(own_keys, ", ")
        << ") moved there: accelerate refuses keys it does not know\n";
  }
  report_written(write_atomically(located->path, updated, true), out);
  out << "accel-launch: comments of the previous file are only in the backup\n";
  return 0;
}

int run_questionnaire(const QuestionnaireOptions& options) {
  if (!::isatty(STDIN_FILENO)) {
    throw UsageError(
        "`accel-launch config` asks its questions on a terminal, and stdin is not one. Use `accel-launch config default` "
        "for a config guessed from this machine, or copy one of the examples in configs/");
  }
  const Located target = writable_config_file(options.config_file, env::process_environment());
  Asker asker(std::cin, std::cout);
  std::cout << "accel-launch config: answers go to " << target.path << " (press Enter to take the [default])\n";
  const bool exists = ::access(target.path.c_str(), F_OK) == 0;
  if (exists && !asker.ask_yes_no(target.path + " exists. Replace it (the old file is kept as a backup)?", false)) {
    std::cout << "accel-launch: " << target.path << " was left unchanged\n";
    return 0;
  }
  const Config config = ask_config(asker, hardware::probe());
  report_written(write_atomically(target.path, to_text(config, format_for_path(target.path), Keys::Accelerate), exists),
                 std::cout);
  return 0;
}

int run_test(const TestOptions& options, std::ostream& out) {
  const std::string job = options.job.empty() ? files::executable_directory() + "/accel-test-job" : options.job;
  if (::access(job.c_str(), X_OK) != 0) {
    throw Error("the built-in test job " + job + " is missing or not executable; build the accel-test-job target "
                "(it belongs next to accel-launch)");
  }
  launch::LaunchRequest request;
  request.config_file = options.config_file;
  request.job = {job};
  const launch::Launched launched = launch::launch_with_config(request, kApplyConfigFile, out, std::cerr);
  const launch::LaunchSpec& spec = launched.spec;
  if (launched.exit_code == 0) {
    out << "accel-launch test: success: " << spec.num_processes << " process" << (spec.num_processes == 1 ? "" : "es")
        << " on this machine passed (world size " << spec.world_size() << ")\n";
  } else {
    out << "accel-launch test: FAILED with exit code " << launched.exit_code << " (the failure summary is above)\n";
  }
  return launched.exit_code;
}

}  // namespace accel::config
