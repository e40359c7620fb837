#pragma once
// Runs a resolved launch: spawns the workers, relays their output and supervises them.
#include "accel/launch/resolve.h"

namespace accel::launch {

// Starts spec.num_processes workers in one process group of their own and blocks until the job
// ends. Workers die with the launcher (even on SIGKILL of the launcher); SIGINT, SIGTERM, SIGHUP
// and SIGQUIT are forwarded to them, then SIGKILL follows after the grace period. The first
// failing worker stops the group (SIGTERM, then SIGKILL after the grace period); the group is
// restarted up to spec.max_restarts times. Prints one failure summary on stderr.
// Returns the launcher's exit code: 0, the failing worker's exit status, 128+N when it was
// killed by signal N, or 128+N when the launcher itself was interrupted by signal N.
// Throws accel::Error when setting up fails before any worker started (e.g. --log_dir unusable).
int run(const LaunchSpec& spec);

}  // namespace accel::launch
