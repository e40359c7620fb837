#include "process.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "accel/core/error.h"

namespace accel::launch {
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

}  // namespace

Pipe make_pipe() {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  return Pipe{Fd(ends[0]), Fd(ends[1])};
}

ProcessGroup::ProcessGroup() {
  Pipe lifeline = make_pipe();
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
  guardian_ = pid;
  lifeline_ = std::move(lifeline.write);
}

ProcessGroup::~ProcessGroup() { end(); }

void ProcessGroup::end() {
  signal(SIGKILL);
  ended_ = true;
  if (guardian_reaped_) return;
  while (::waitpid(guardian_, nullptr, 0) < 0 && errno == EINTR) {
  }
  guardian_reaped_ = true;
}

void ProcessGroup::signal(int signal_number) const {
  if (!ended_) ::killpg(guardian_, signal_number);
}

Spawned spawn(const SpawnOptions& options) {
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& var : options.environment) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);
  Pipe status = make_pipe();
  const pid_t parent = ::getpid();

  const SignalsBlocked blocked;
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot start a worker: fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the launcher died before prctl took effect
    ::setpgid(0, options.process_group);
    ::dup2(options.stdin_fd, STDIN_FILENO);
    ::dup2(options.stdout_fd, STDOUT_FILENO);
    ::dup2(options.stderr_fd, STDERR_FILENO);
    close_inherited_descriptors_at_exec();
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
    ::execve(options.executable.c_str(), argv.data(), envp.data());
    const int error = errno;
    (void)!::write(status.write.get(), &error, sizeof error);
    ::_exit(127);
  }
  ::setpgid(pid, options.process_group);
  return Spawned{pid, std::move(status.read)};
}

int exec_error(Spawned& spawned) {
  int error = 0;
  ssize_t n;
  while ((n = ::read(spawned.exec_status.get(), &error, sizeof error)) < 0 && errno == EINTR) {
  }
  spawned.exec_status.reset();
  return n == static_cast<ssize_t>(sizeof error) ? error : 0;
}

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
