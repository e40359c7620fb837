#pragma once
// Runs a resolved launch: spawns the workers, relays their output and supervises them.
#include <sys/types.h>

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "accel/launch/resolve.h"
#include "accel/launch/spawner.h"

namespace accel::launch {

// How one worker of the last attempt on this machine ended.
struct RankOutcome {
  enum class Ending {
    kSucceeded,  // exited with status 0 on its own
    kFailed,     // a failure: listed in RunResult::failed
    kStopped,    // still running when the launcher stopped the group (whatever it then exited with)
  };
  int rank = 0;
  int local_rank = 0;
  std::string host;
  pid_t pid = -1;
  int restart_count = 0;  // the attempt it ran in: 0 for the first
  Ending ending = Ending::kSucceeded;
  std::optional<int> exit_status;  // it exited with this status
  std::optional<int> signal;       // it was killed by this signal
  std::string what;                // "exited with status 3", "killed by signal 9 (SIGKILL)", "could not be started: ..."
  int exit_code = 0;               // as a shell reports it: the status, 128+N for signal N, 126/127 when not started
  std::vector<std::string> stderr_tail;      // failed ranks only: the last lines on its stderr
  bool tail_has_stdout = false;  // stdout and stderr were one stream (one terminal): the tail holds both
  std::optional<std::string> error_message;  // failed ranks only: the message of its error file
};

// What a run came to; summary() words it.
struct RunResult {
  int exit_code = 0;  // the launcher's: 0, the failing worker's code, or 128+N when interrupted by signal N
  int restarts = 0;   // restarts of the group before the last attempt
  std::vector<RankOutcome> ranks;  // this machine's workers in the last attempt, by local rank
  std::vector<int> failed;         // local ranks whose ending is kFailed, the root cause first
  std::optional<int> interrupted_by;  // a stop signal the launcher received
  // Several machines: interrupted while waiting for an attempt, so no worker ran then.
  bool interrupted_between_attempts = false;
  // Several machines: machine 0 ended the job; its account of the failure (empty on success).
  std::optional<std::string> job_ended;

  int stopped() const;  // ranks whose ending is kStopped
};

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
//   the group is restarted up to spec.max_restarts times, with one line on stderr each time.
// Returns the outcome; print summary(result) on stderr. Throws accel::Error when setting up fails
// before any worker started (accel::UsageError for an unusable --log_dir).
RunResult run(const LaunchSpec& spec);
// The same with workers started by `spawner` (tests script one).
RunResult run(const LaunchSpec& spec, Spawner& spawner);

// The failure summary: one bounded paragraph listing every rank that failed, first failure first,
// then "accel-launch: exit code N". Empty for a run that succeeded.
std::string summary(const RunResult& result);

// What a launch came to.
struct Launched {
  LaunchSpec spec;    // what ran (or, for a dry run, would run)
  int exit_code = 0;  // RunResult::exit_code; 0 for a dry run
};

// Fills the request fields the command line left empty from the config file in effect and says
// on `notes` which file it read: config::apply_config_file. The launch flow takes it as a
// parameter because config files are lib/config's, which depends on this library.
using ConfigFiller = std::function<void(LaunchRequest& request, std::ostream& notes)>;

// The one launch flow, `accel-launch JOB` and `accel-launch test` alike: probes this machine
// through request.environment, fills the request from the config file, resolve() (notes and
// warnings on `err`), then a dry run prints dry_run_report() on `out` and starts nothing, and
// anything else runs under run() with its failure summary on `err`. Throws what the filler,
// resolve() and run() throw, before any worker started.
Launched launch_with_config(const LaunchRequest& request, const ConfigFiller& fill_from_config, std::ostream& out,
                            std::ostream& err);

}  // namespace accel::launch
