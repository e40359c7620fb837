#pragma once
// Seam between config files and the launcher.
#include <ostream>

#include "accel/config/config.h"
#include "accel/core/env_contract.h"
#include "accel/launch/request.h"

namespace accel::config {

// Finds the config file in effect (request.config_file, else $ACCEL_CONFIG_FILE, else the
// default locations), loads and checks it, and fills the request fields the command line
// left empty. Says on `notes` which file it used. Throws accel::UsageError naming the file,
// line:column, key and value on any bad input. A no-op when no file exists and none was named.
void apply_config_file(launch::LaunchRequest& request, std::ostream& notes);
void apply_config_file(launch::LaunchRequest& request, std::ostream& notes, const env::Lookup& lookup);

// Fills only the fields of `request` that are empty (command line > file). distributed_type
// becomes the device choice: MULTI_CPU -> use_cpu, MULTI_GPU -> GPUs, NO -> one process;
// use_cpu: false without MULTI_GPU means "a GPU if there is one" (as in accelerate), so it
// leaves the device to be guessed from the machine.
void fill_request(launch::LaunchRequest& request, const Config& config);

}  // namespace accel::config
