#pragma once
// Starting worker processes so that none outlives the launcher (private to lib/launch).
#include <sys/types.h>

#include <csignal>
#include <string>
#include <vector>

#include "fd.h"

namespace accel::launch {

// Signals the launcher catches and passes on to its workers. The first four ask the job to
// stop (SIGKILL follows after the grace period); the others only pass through: batch systems
// send SIGUSR1/SIGUSR2 as a pre-emption warning, SIGTSTP/SIGCONT are Ctrl-Z and fg.
inline constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
inline constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
                                            SIGUSR2, SIGALRM, SIGTSTP, SIGCONT};

// What the guardian calls itself (comm), so `killall accel-launch` does not take it for a launcher.
inline constexpr char kGuardianName[] = "accel-guardian";

// The real spawner (process_spawner() in spawner.h) puts each attempt's workers in a process
// group that dies with the launcher. Its leader is a small forked "guardian" that blocks reading
// a pipe only the launcher can write to; when the launcher exits or is killed (even by SIGKILL,
// which no handler sees) the read returns and the guardian SIGKILLs the whole group: workers and
// whatever they started without leaving the group. (Processes that left it are the launcher's
// business: it signals workers by pid too and adopts orphans.) The guardian ignores every
// forwarded signal and holds no descriptor but its pipe.
//
// Each worker is fork + exec'd: it joins the group, asks for SIGKILL when the launcher dies
// (PR_SET_PDEATHSIG), runs on its CPUs if it was given some, gets stdin/stdout/stderr from the
// given descriptors, no other descriptor (inherited ones are closed at exec), the given
// environment, and the default disposition of every forwarded signal except a SIGHUP the
// launcher inherited as ignored (nohup). Spawning does not wait for exec, so starting N workers
// costs N forks, not N round trips.

// Makes this process a child subreaper for its lifetime (orphans of its descendants are
// reparented to it rather than to init) and restores the previous setting on destruction.
class SubreaperScope {
 public:
  SubreaperScope();
  ~SubreaperScope();
  SubreaperScope(const SubreaperScope&) = delete;
  SubreaperScope& operator=(const SubreaperScope&) = delete;

 private:
  int previous_ = 0;
};

// How many workers this launcher can supervise, and what limits it, e.g.
// "each worker holds 6 descriptors in the launcher and the open-file limit (ulimit -n) is 1024".
struct WorkerCapacity {
  long max_workers = 0;
  std::string reason;
};
WorkerCapacity worker_capacity();

}  // namespace accel::launch
