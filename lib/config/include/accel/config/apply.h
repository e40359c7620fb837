#pragma once
// Seam between config files and the launcher.
#include <ostream>

#include "accel/launch/request.h"

namespace accel::config {

// Finds the config file in effect (request.config_file, else $ACCEL_CONFIG_FILE, else the
// default locations), loads and checks it, and fills the request fields the command line
// left empty. Says on `notes` which file it used. Throws accel::UsageError naming the file,
// line:column, key and value on any bad input. A no-op when no file exists and none was named.
void apply_config_file(launch::LaunchRequest& request, std::ostream& notes);

}  // namespace accel::config
