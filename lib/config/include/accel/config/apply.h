#pragma once
// Seam between config files and the launcher.
#include <map>
#include <ostream>
#include <string>

#include "accel/config/config.h"
#include "accel/core/env_contract.h"
#include "accel/core/hardware.h"
#include "accel/launch/request.h"
#include "accel/launch/resolve.h"

namespace accel::config {

// Finds the config file in effect (request.config_file, else $ACCEL_CONFIG_FILE, else the
// default locations), loads and checks it, and fills the request fields the command line
// left empty. Says on `notes` which file it used. Throws accel::UsageError naming the file,
// line:column, key and value on any bad input. A no-op when no file exists and none was named.
void apply_config_file(launch::LaunchRequest& request, std::ostream& notes);
void apply_config_file(launch::LaunchRequest& request, std::ostream& notes, const env::Lookup& lookup);

// From a request to what will run: the config file in effect (found through
// request.environment) fills the request, then launch::resolve() guesses and checks the rest.
// Notes and warnings go to `notes`.
launch::LaunchSpec resolve_with_config(launch::LaunchRequest request, const hardware::Machine& machine, std::ostream& notes);

// What a launch came to.
struct Launched {
  launch::LaunchSpec spec;  // what ran (or, for a dry run, would run)
  int exit_code = 0;        // launch::RunResult::exit_code; 0 for a dry run
};

// The one launch flow, `accel-launch JOB` and `accel-launch test` alike: probes this machine
// through request.environment, resolve_with_config() (notes and warnings on `err`), then a dry
// run prints dry_run_report() on `out` and starts nothing, and anything else runs under
// launch::run() with its failure summary on `err`. It lives here rather than in lib/launch
// because its first step is the config file. Throws what resolve_with_config() and
// launch::run() throw, before any worker started.
Launched launch_with_config(const launch::LaunchRequest& request, std::ostream& out, std::ostream& err);

// Fills only the fields of `request` that are empty (command line > file). The file's
// distributed_type becomes the request's unless the command line chose a mode (--cpu,
// --multi_gpu, --use_fsdp, ...); MULTI_CPU or use_cpu: true ask for CPU workers. The sections
// (fsdp_config, deepspeed_config, fp8_config, dynamo_config, megatron_lm_config,
// parallelism_config, mpirun_config) become job_settings under accelerate's argument names.
// `origins` (LoadedConfig::origins) says where each value was read; the request keeps it for the
// fields the file filled, so resolve()'s errors name file:line.
void fill_request(launch::LaunchRequest& request, const Config& config,
                  const std::map<std::string, std::string>& origins = {});

}  // namespace accel::config
