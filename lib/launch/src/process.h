#pragma once
// Starting worker processes so that none outlives the launcher (private to lib/launch).
#include <sys/types.h>

#include <string>
#include <vector>

#include "fd.h"

namespace accel::launch {

// A process group that dies with the launcher. Its leader is a small forked "guardian" that
// blocks reading a pipe only the launcher can write to; when the launcher exits or is killed
// (even by SIGKILL, which no handler sees) the read returns and the guardian SIGKILLs the
// whole group: workers and whatever they started, unless they left the group themselves.
// The guardian ignores the signals that the launcher forwards to the group.
class ProcessGroup {
 public:
  // Forks the guardian. Call with the forwarded signals blocked (the guardian keeps that mask).
  // Throws accel::Error when fork fails.
  ProcessGroup();
  // SIGKILLs everything left in the group and reaps the guardian.
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  pid_t id() const { return guardian_; }
  // killpg(); the guardian itself survives anything but SIGKILL.
  void signal(int signal_number) const;
  // SIGKILL the group now (idempotent); the destructor then only reaps.
  void kill_all();

 private:
  pid_t guardian_ = -1;
  Fd lifeline_;  // write end; closing it (or dying) tells the guardian to kill the group
  bool killed_ = false;
};

struct SpawnOptions {
  std::string executable;
  std::vector<std::string> argv;
  std::vector<std::string> environment;  // "NAME=value", the complete environment
  pid_t process_group = 0;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

struct Spawned {
  pid_t pid = -1;
  Fd exit_watch;   // a pidfd: poll() reports it readable once the process exited
  Fd exec_status;  // EOF once exec succeeded; an errno value when it failed
};

// fork + exec. The child joins `process_group`, asks for SIGKILL when the launcher dies
// (PR_SET_PDEATHSIG), gets its stdout/stderr from the given descriptors and the given
// environment; the launcher's signal handlers are reset to the default. Does not wait for exec: read exec_status with exec_error() later, so spawning N
// workers costs N forks, not N round trips. Throws accel::Error when fork fails.
Spawned spawn(const SpawnOptions& options);

// Blocks until the child exec'd or failed to; returns 0 or the errno of the failed execve.
int exec_error(Spawned& spawned);

}  // namespace accel::launch
