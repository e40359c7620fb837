#pragma once
// Seam between config files and the launcher.
#include <map>
#include <ostream>
#include <string>

#include "accel/config/config.h"
#include "accel/core/env_contract.h"
#include "accel/launch/request.h"

namespace accel::config {

// Finds the config file in effect (request.config_file, else $ACCEL_CONFIG_FILE, else the
// default locations), loads and checks it, and fills the request fields the command line
// left empty. Says on `notes` which file it used. Throws accel::UsageError naming the file,
// line:column, key and value on any bad input. A no-op when no file exists and none was named.
// The two-argument form reads the environment through request.environment.
void apply_config_file(launch::LaunchRequest& request, std::ostream& notes);
void apply_config_file(launch::LaunchRequest& request, std::ostream& notes, const env::Lookup& lookup);

// The two-argument form as the filler launch::launch_with_config() takes.
inline constexpr void (*kApplyConfigFile)(launch::LaunchRequest&, std::ostream&) = apply_config_file;

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
