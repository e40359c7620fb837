#include "process.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "accel/core/error.h"

namespace accel::launch {

Pipe make_pipe() {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  return Pipe{Fd(ends[0]), Fd(ends[1])};
}

ProcessGroup::ProcessGroup() {
  Pipe lifeline = make_pipe();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot start the worker group: fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    for (int forwarded : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::signal(forwarded, SIG_IGN);
    ::close(lifeline.write.get());
    char byte;
    while (::read(lifeline.read.get(), &byte, 1) < 0 && errno == EINTR) {
    }
    ::kill(0, SIGKILL);
    ::_exit(0);
  }
  ::setpgid(pid, pid);  // also done by the child; whichever runs first wins the race with spawn()
  guardian_ = pid;
  lifeline_ = std::move(lifeline.write);
}

ProcessGroup::~ProcessGroup() {
  kill_all();
  lifeline_.reset();
  int status;
  while (::waitpid(guardian_, &status, 0) < 0 && errno == EINTR) {
  }
}

void ProcessGroup::signal(int signal_number) const { ::killpg(guardian_, signal_number); }

void ProcessGroup::kill_all() {
  if (killed_) return;
  killed_ = true;
  ::killpg(guardian_, SIGKILL);
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

  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot start a worker: fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the launcher died before prctl took effect
    ::setpgid(0, options.process_group);
    ::dup2(options.stdout_fd, STDOUT_FILENO);
    ::dup2(options.stderr_fd, STDERR_FILENO);
    ::signal(SIGPIPE, SIG_DFL);  // the launcher ignores it; an ignored disposition survives exec
    // The launcher's handlers would write into its signal pipe until exec; ignored signals
    // (nohup's SIGHUP) stay ignored, as exec would keep them.
    for (int forwarded : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
      struct sigaction current {};
      ::sigaction(forwarded, nullptr, &current);
      if (current.sa_handler != SIG_IGN) ::signal(forwarded, SIG_DFL);
    }
    ::execve(options.executable.c_str(), argv.data(), envp.data());
    const int error = errno;
    (void)!::write(status.write.get(), &error, sizeof error);
    ::_exit(127);
  }
  ::setpgid(pid, options.process_group);
  // A pidfd rather than SIGCHLD: no signal is lost to another thread of the launcher.
  Fd exit_watch(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!exit_watch) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw Error(std::string("cannot watch a worker: pidfd_open: ") + std::strerror(error) + " (Linux 5.3 or newer is needed)");
  }
  return Spawned{pid, std::move(exit_watch), std::move(status.read)};
}

int exec_error(Spawned& spawned) {
  int error = 0;
  ssize_t n;
  while ((n = ::read(spawned.exec_status.get(), &error, sizeof error)) < 0 && errno == EINTR) {
  }
  spawned.exec_status.reset();
  return n == static_cast<ssize_t>(sizeof error) ? error : 0;
}

}  // namespace accel::launch
