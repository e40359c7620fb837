// Interim: config files arrive with the config issue; until then only the command line counts.
#include "accel/config/apply.h"

#include "accel/core/error.h"

namespace accel::config {

void apply_config_file(launch::LaunchRequest& request, std::ostream&) {
  if (request.config_file) {
    throw UsageError("--config_file " + *request.config_file + ": config files are not supported by this build yet");
  }
}

}  // namespace accel::config
