#pragma once
// How the supervisor starts, signals and reaps the workers of one attempt. launch::run() uses the
// real one (process_spawner()); tests pass a scripted one to check supervision decisions (who
// failed first, what was stopped, when SIGKILL follows) without starting processes.
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace accel::launch {

// One worker to start. The descriptors belong to the caller, who closes them after spawn():
// a worker keeps its own copies.
struct WorkerSpec {
  int local_rank = 0;
  std::string executable;
  std::vector<std::string> argv;
  std::vector<std::string> environment;  // "NAME=value", the complete environment
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::vector<int> cpus;  // sched_setaffinity() to these before exec; empty: inherit the launcher's
};

// A worker that ended, as waitpid() reports it.
struct WorkerExit {
  pid_t pid = -1;
  int wait_status = 0;
};

// The processes of one attempt. Destroying it kills whatever is left of them.
class WorkerGroup {
 public:
  virtual ~WorkerGroup() = default;

  // Starts one worker and returns its pid without waiting for it to run its program.
  // Throws accel::Error when it cannot be started at all (fork failed).
  virtual pid_t spawn(const WorkerSpec& worker) = 0;
  // Blocks until worker `pid` runs its program: 0, or the errno of its failed exec (it then
  // exits with status 127).
  virtual int start_error(pid_t pid) = 0;
  // Delivers `signal_number` once to each of `running`, whether it is still in the group or
  // left it, and to whatever else is in the group.
  virtual void signal(int signal_number, const std::vector<pid_t>& running) = 0;
  // The workers that ended since the last call; never blocks. Also reaps anything else that
  // ended (orphans the launcher adopted), which is not reported.
  virtual std::vector<WorkerExit> reap() = 0;
  // The job is over: kills what it left running (in the group or escaped from it) and reaps it.
  virtual void end_leftovers() = 0;
};

class Spawner {
 public:
  virtual ~Spawner() = default;
  // A new, empty group for one attempt. Throws accel::Error when none can be made.
  virtual std::unique_ptr<WorkerGroup> start_group() = 0;
};

// fork + exec into a process group that dies with the launcher (process.h says how).
Spawner& process_spawner();

}  // namespace accel::launch
