#pragma once
// Runs a resolved launch: spawns the workers, relays their output and supervises them.
#include "accel/launch/resolve.h"

namespace accel::launch {

// Starts spec.num_processes workers in one process group of their own and blocks until the job
// ends. docs/launcher.md ("Guarantees") says what happens on each fault; in short:
// - Workers die with the launcher (even on SIGKILL of the launcher). Signals reach them through
//   the group and by pid, so one that left the group is stopped too. While it runs, the calling
//   process is a child subreaper: orphans the workers leave are adopted, reaped when they exit,
//   and killed when the job ends. So call run() from a process with no other children to wait for.
// - SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded and stop the job (SIGKILL after the grace
//   period, or at once on a second request more than a second after the first); SIGUSR1,
//   SIGUSR2, SIGALRM, SIGTSTP and SIGCONT are forwarded only (SIGTSTP also stops the launcher).
// - Rank 0 reads the launcher's stdin through a relay, the other ranks /dev/null.
// - The first failing worker stops the group (SIGTERM, then SIGKILL after the grace period);
//   the group is restarted up to spec.max_restarts times. Prints one bounded failure summary on
//   stderr listing every rank that failed, first failure first.
// Returns the launcher's exit code: 0, the failing worker's exit status, 128+N when it was
// killed by signal N, or 128+N when the launcher itself was interrupted by signal N.
// Throws accel::Error when setting up fails before any worker started (accel::UsageError for an
// unusable --log_dir).
int run(const LaunchSpec& spec);

}  // namespace accel::launch
