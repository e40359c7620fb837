#include "process.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

#include "accel/core/error.h"
#include "accel/launch/spawner.h"

namespace accel::launch {

Pipe make_pipe(int flags) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC | flags) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  return Pipe{Fd(ends[0]), Fd(ends[1])};
}

namespace {

// Descriptors the launcher holds per worker at the peak of spawning: the read ends of its
// stdout and stderr pipes and of its exec-status pipe, two log files, rank 0's stdin pipe.
constexpr long kDescriptorsPerWorker = 6;
// Descriptors the launcher needs besides its workers' (standard streams, signal pipe, port,
// guardian lifeline, libraries such as NVML).
constexpr long kDescriptorsReserved = 64;

// Marks every descriptor from 3 up close-on-exec, so the job gets only 0-2 whatever the
// launcher inherited. Async-signal-safe (runs between fork and exec).
void close_inherited_descriptors_at_exec() {
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  // Kernels before 5.11: mark them one by one.
  struct rlimit limit {};
  const long last = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                        ? static_cast<long>(std::min<rlim_t>(limit.rlim_cur, 1 << 20))
                        : 1 << 16;
  for (int fd = 3; fd < last; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

// Blocks every signal in the calling thread for its lifetime. Around fork(): the child starts
// with the launcher's handlers, which write into the launcher's signal pipe, so a signal it got
// before resetting them (a stop sent to the new group at once, on a loaded machine) would reach
// the launcher as if sent to it. Blocked, it waits until the child has its own dispositions.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &previous_);
  }
  ~SignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

  // In the child, once its dispositions are set.
  void restore_in_child() const { ::sigprocmask(SIG_SETMASK, &previous_, nullptr); }

 private:
  sigset_t previous_;
};

// This process's children, from /proc (zombies included).
std::vector<pid_t> children_of_this_process() {
  // /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN, which many kernels lack.
  const pid_t self = ::getpid();
  std::vector<pid_t> children;
  DIR* proc = ::opendir("/proc");
  if (!proc) return children;
  while (const dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // "pid (comm) state ppid ...": comm may contain anything, so parse after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %ld", &state, &ppid) == 2 && ppid == self) {
      children.push_back(static_cast<pid_t>(pid));
    }
  }
  ::closedir(proc);
  return children;
}

// Forks the guardian (process.h) and returns its pid, which is also the group's id; the
// guardian SIGKILLs the group once `lifeline`'s write end closes. Throws accel::Error when fork fails.
pid_t start_guardian(Pipe& lifeline) {
  const SignalsBlocked blocked;
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot start the worker group: fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_NAME, kGuardianName);
    ::setpgid(0, 0);
    for (int forwarded : kForwardedSignals) ::signal(forwarded, SIG_IGN);
    ::signal(SIGCHLD, SIG_DFL);
    blocked.restore_in_child();
    // Holding nothing: not the launcher's console (a `$(accel-launch ...)` caller waits for
    // it to close), not its port, not the workers' pipes.
    const unsigned keep = static_cast<unsigned>(lifeline.read.get());
    if (keep > 0) ::close_range(0, keep - 1, 0);
    ::close_range(keep + 1, ~0U, 0);
    char byte;
    while (::read(static_cast<int>(keep), &byte, 1) < 0 && errno == EINTR) {
    }
    ::kill(0, SIGKILL);
    ::_exit(0);
  }
  ::setpgid(pid, pid);  // also done by the child; whichever runs first wins the race with spawn()
  return pid;
}

// In the child of fork(), before exec: only async-signal-safe calls.
[[noreturn]] void become_worker(const WorkerSpec& worker, pid_t group, pid_t launcher, char* const* argv,
                                char* const* envp, const cpu_set_t* cpus, int exec_status, const SignalsBlocked&) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != launcher) ::_exit(127);  // the launcher died before prctl took effect
  ::setpgid(0, group);
  ::dup2(worker.stdin_fd, STDIN_FILENO);
  ::dup2(worker.stdout_fd, STDOUT_FILENO);
  ::dup2(worker.stderr_fd, STDERR_FILENO);
  close_inherited_descriptors_at_exec();
  // resolve() only hands out CPUs the launcher may use, so this cannot fail for a valid spec.
  if (cpus != nullptr) ::sched_setaffinity(0, sizeof *cpus, cpus);
  // The launcher ignores SIGPIPE and catches the forwarded signals (its handlers would write
  // into its signal pipe until exec). A SIGINT ignored by `cmd &` in a script is reset too,
  // or the forwarded Ctrl-C would do nothing; nohup's ignored SIGHUP is kept.
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGCHLD, SIG_DFL);
  for (int forwarded : kForwardedSignals) {
    struct sigaction current {};
    ::sigaction(forwarded, nullptr, &current);
    if (forwarded != SIGHUP || current.sa_handler != SIG_IGN) ::signal(forwarded, SIG_DFL);
  }
  // Nothing blocked: a job must be able to receive the stop signals whatever the launcher
  // inherited.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(worker.executable.c_str(), argv, envp);
  const int error = errno;
  (void)!::write(exec_status, &error, sizeof error);
  ::_exit(127);
}

// One attempt's workers in a process group led by the guardian (process.h).
class ProcessWorkerGroup final : public WorkerGroup {
 public:
  ProcessWorkerGroup() {
    Pipe lifeline = make_pipe();
    guardian_ = start_guardian(lifeline);
    lifeline_ = std::move(lifeline.write);
  }
  ~ProcessWorkerGroup() override { end(); }
  ProcessWorkerGroup(const ProcessWorkerGroup&) = delete;
  ProcessWorkerGroup& operator=(const ProcessWorkerGroup&) = delete;

  pid_t spawn(const WorkerSpec& worker) override {
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<char*> argv;
    for (const auto& arg : worker.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& var : worker.environment) envp.push_back(const_cast<char*>(var.c_str()));
    envp.push_back(nullptr);
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    for (int cpu : worker.cpus) CPU_SET(cpu, &cpus);
    Pipe status = make_pipe();
    const pid_t launcher = ::getpid();
    const SignalsBlocked blocked;
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(std::string("cannot start a worker: fork: ") + std::strerror(errno));
    if (pid == 0) become_worker(worker, guardian_, launcher, argv.data(), envp.data(), worker.cpus.empty() ? nullptr : &cpus,
                                status.write.get(), blocked);
    ::setpgid(pid, guardian_);
    exec_status_.emplace(pid, std::move(status.read));
    return pid;
  }

  int start_error(pid_t pid) override {
    const auto found = exec_status_.find(pid);
    if (found == exec_status_.end()) return 0;
    int error = 0;
    ssize_t n;
    while ((n = ::read(found->second.get(), &error, sizeof error)) < 0 && errno == EINTR) {
    }
    exec_status_.erase(found);
    return n == static_cast<ssize_t>(sizeof error) ? error : 0;
  }

  // Exactly one delivery per worker: a second SIGINT landing in the job's own KeyboardInterrupt
  // handler (its checkpoint save) loses the user's work. A worker still in the group gets the
  // group's signal, which also reaches what it started; one that left the group (setsid,
  // setpgid) gets its own, by pid. A worker leaving the group between the two steps misses this
  // signal rather than getting it twice (a stop still ends with SIGKILL after the grace period).
  // The guardian ignores every forwarded signal, so the group's copy does nothing to it. A pid
  // is not reused before the launcher reaps it, so signalling `running` never reaches a stranger.
  void signal(int signal_number, const std::vector<pid_t>& running) override {
    for (pid_t pid : running) {
      if (::getpgid(pid) != guardian_) ::kill(pid, signal_number);
    }
    signal_group(signal_number);
  }

  std::vector<WorkerExit> reap() override {
    std::vector<WorkerExit> exits;
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0 || (pid < 0 && errno == EINTR)) {
      if (pid < 0) continue;
      if (pid == guardian_) guardian_reaped_ = true;
      else exits.push_back({pid, status});
    }
    return exits;
  }

  // SIGKILLs what is left in the group, then every other child (orphans the launcher adopted),
  // round after round, since killing one may orphan its own children. /proc is searched only
  // when some child is left besides the zombies: the common case costs two waitpid() calls.
  void end_leftovers() override {
    end();
    while (true) {
      pid_t pid;
      while ((pid = ::waitpid(-1, nullptr, WNOHANG)) > 0 || (pid < 0 && errno == EINTR)) {
      }
      if (pid < 0) return;  // ECHILD: no child left
      const auto children = children_of_this_process();
      if (children.empty()) return;  // no /proc to find them in: waiting could last forever
      for (pid_t child : children) ::kill(child, SIGKILL);
      // Wait for one to change state, then look again.
      while ((pid = ::waitpid(-1, nullptr, 0)) < 0 && errno == EINTR) {
      }
      if (pid < 0) return;
    }
  }

 private:
  // killpg(); the guardian itself survives anything but SIGKILL. Nothing after end(): the
  // group's id may then belong to a stranger.
  void signal_group(int signal_number) const {
    if (!ended_) ::killpg(guardian_, signal_number);
  }

  // SIGKILLs the whole group and reaps the guardian (idempotent).
  void end() {
    signal_group(SIGKILL);
    ended_ = true;
    if (guardian_reaped_) return;
    while (::waitpid(guardian_, nullptr, 0) < 0 && errno == EINTR) {
    }
    guardian_reaped_ = true;
  }

  pid_t guardian_ = -1;
  bool guardian_reaped_ = false;
  bool ended_ = false;
  Fd lifeline_;  // write end; closing it (or dying) tells the guardian to kill the group
  std::map<pid_t, Fd> exec_status_;  // per worker: EOF once exec succeeded, an errno when it failed
};

class ProcessSpawner final : public Spawner {
 public:
  std::unique_ptr<WorkerGroup> start_group() override { return std::make_unique<ProcessWorkerGroup>(); }
};

}  // namespace

Spawner& process_spawner() {
  static ProcessSpawner spawner;
  return spawner;
}


SubreaperScope::SubreaperScope() {
  ::prctl(PR_GET_CHILD_SUBREAPER, &previous_);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

SubreaperScope::~SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, previous_); }

WorkerCapacity worker_capacity() {
  WorkerCapacity capacity{LONG_MAX, ""};
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    const long soft = static_cast<long>(files.rlim_cur);
    capacity.max_workers = std::max(0L, (soft - kDescriptorsReserved) / kDescriptorsPerWorker);
    capacity.reason = "each worker holds " + std::to_string(kDescriptorsPerWorker) +
                      " descriptors in the launcher and the open-file limit (ulimit -n) is " + std::to_string(soft);
  }
  struct rlimit processes {};
  if (::getrlimit(RLIMIT_NPROC, &processes) == 0 && processes.rlim_cur != RLIM_INFINITY &&
      static_cast<long>(processes.rlim_cur) - 1 < capacity.max_workers) {
    capacity.max_workers = std::max(0L, static_cast<long>(processes.rlim_cur) - 1);
    capacity.reason = "the process limit (ulimit -u) is " + std::to_string(processes.rlim_cur);
  }
  return capacity;
}

}  // namespace accel::launch
