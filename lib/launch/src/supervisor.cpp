#include "accel/launch/supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>

#include "accel/core/error.h"
#include "error_file.h"
#include "line_relay.h"
#include "process.h"
#include "status.h"

extern char** environ;

namespace accel::launch {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kTailLines = 10;
constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

// The write end of SignalPipe's pipe, for the handler (one SignalPipe exists at a time).
int g_signal_pipe = -1;

extern "C" void queue_signal(int number) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(number);
  (void)!::write(g_signal_pipe, &byte, 1);
  errno = saved;
}

// For the duration of run(): the forwarded signals are caught by a handler that writes their
// number into a pipe the supervision loop polls (the self-pipe trick). A handler, not a blocked
// mask with signalfd: libraries loaded earlier (NVML in the hardware probe) may have started
// threads, and a process-directed signal goes to any thread that does not block it.
// A signal the launcher inherited as ignored (nohup's SIGHUP) stays ignored and is not forwarded.
// SIGCHLD is set to its default so children are not reaped behind our back; SIGPIPE is ignored so
// a closed console does not kill the launcher.
class SignalPipe {
 public:
  SignalPipe() {
    Pipe pipe = make_pipe();
    ::fcntl(pipe.write.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(pipe.read.get(), F_SETFL, O_NONBLOCK);
    read_ = std::move(pipe.read);
    write_ = std::move(pipe.write);
    g_signal_pipe = write_.get();
    struct sigaction handler {};
    handler.sa_handler = queue_signal;
    handler.sa_flags = SA_RESTART;
    sigemptyset(&handler.sa_mask);
    for (int number : kForwardedSignals) {
      struct sigaction current {};
      ::sigaction(number, nullptr, &current);
      if (current.sa_handler == SIG_IGN) continue;
      ::sigaction(number, &handler, &current);
      saved_.emplace_back(number, current);
    }
    set(SIGCHLD, SIG_DFL);
    set(SIGPIPE, SIG_IGN);
  }
  ~SignalPipe() {
    for (const auto& [number, previous] : saved_) ::sigaction(number, &previous, nullptr);
    g_signal_pipe = -1;
  }
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  int fd() const { return read_.get(); }

  std::vector<int> take() {
    std::vector<int> numbers;
    unsigned char bytes[64];
    ssize_t n;
    while ((n = ::read(read_.get(), bytes, sizeof bytes)) > 0) numbers.insert(numbers.end(), bytes, bytes + n);
    return numbers;
  }

 private:
  void set(int number, void (*disposition)(int)) {
    struct sigaction action {}, previous{};
    action.sa_handler = disposition;
    ::sigaction(number, &action, &previous);
    saved_.emplace_back(number, previous);
  }

  Fd read_, write_;
  std::vector<std::pair<int, struct sigaction>> saved_;
};

void make_directories(const std::string& path) {
  std::string prefix;
  for (std::size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      prefix = path.substr(0, i);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
        throw FileError(prefix, "cannot create the directory", errno);
      }
    }
  }
}

// The run's files: a private temporary directory for the workers' error files (removed at the
// end) and, with --log_dir, a fresh directory per run for the logs (never reusing an old one).
class RunFiles {
 public:
  explicit RunFiles(const LaunchSpec& spec) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/accel-launch-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw FileError(pattern, "cannot create a temporary directory", errno);
    scratch_ = pattern;
    if (spec.log_dir.empty()) return;
    make_directories(spec.log_dir);
    for (int suffix = 0; log_root_.empty(); ++suffix) {
      const std::string candidate =
          spec.log_dir + "/" + spec.run_id + (suffix ? "." + std::to_string(suffix) : std::string());
      if (::mkdir(candidate.c_str(), 0755) == 0) {
        log_root_ = candidate;
      } else if (errno != EEXIST) {
        throw FileError(candidate, "cannot create the log directory", errno);
      }
    }
  }
  ~RunFiles() {
    if (DIR* dir = ::opendir(scratch_.c_str())) {
      while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') ::unlink((scratch_ + "/" + entry->d_name).c_str());
      }
      ::closedir(dir);
    }
    ::rmdir(scratch_.c_str());
  }
  RunFiles(const RunFiles&) = delete;
  RunFiles& operator=(const RunFiles&) = delete;

  std::string error_file(int attempt, int local_rank) const {
    return scratch_ + "/error-" + std::to_string(attempt) + "-" + std::to_string(local_rank) + ".json";
  }
  const std::string& log_root() const { return log_root_; }

  // Opens <log_root>/attempt_<n>/<local_rank>/<name>.log (torchrun's layout); an empty Fd without --log_dir.
  Fd open_log(int attempt, int local_rank, const char* name) const {
    if (log_root_.empty()) return Fd();
    const std::string dir = log_root_ + "/attempt_" + std::to_string(attempt) + "/" + std::to_string(local_rank);
    make_directories(dir);
    const std::string path = dir + "/" + name + ".log";
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) throw FileError(path, "cannot create the log file", errno);
    return fd;
  }

 private:
  std::string scratch_;
  std::string log_root_;
};

std::vector<std::string> worker_env_strings(const LaunchSpec& spec, const WorkerSlot& slot) {
  const auto added = worker_environment(spec, slot);
  std::vector<std::string> out;
  for (char** var = environ; *var; ++var) {
    const std::string entry = *var;
    const std::string name = entry.substr(0, entry.find('='));
    const bool overridden =
        std::any_of(added.begin(), added.end(), [&](const auto& pair) { return pair.first == name; });
    if (!overridden) out.push_back(entry);
  }
  for (const auto& [name, value] : added) out.push_back(name + "=" + value);
  return out;
}

struct Worker {
  int local_rank = 0;
  pid_t pid = -1;
  std::optional<int> wait_status;
  int start_errno = 0;      // why exec failed, 0 when it did not
  std::string error_file;
  Fd out_log, err_log;
  Fd exit_watch;          // readable once the worker exited; reset when reaped
  Fd out_pipe, err_pipe;  // read ends; reset at end of stream
  std::unique_ptr<LineRelay> out, err;
};

struct Failure {
  int local_rank = 0;
  pid_t pid = -1;
  std::string what;  // "exited with status 3"
  int exit_code = 1;
  std::deque<std::string> stderr_tail;
  std::optional<std::string> error_message;
};

struct Outcome {
  std::optional<Failure> failure;
  std::optional<int> interrupted_by;
  int stopped = 0;  // workers still running when the group was stopped

  int exit_code() const {
    if (failure) return failure->exit_code;
    return interrupted_by ? 128 + *interrupted_by : 0;
  }
};

// One attempt: the whole local group started, supervised and stopped.
class Attempt {
 public:
  Attempt(const LaunchSpec& spec, int restart_count, const RunFiles& files, SignalPipe& signals)
      : spec_(spec), signals_(signals) {
    workers_.resize(spec.num_processes);
    std::vector<Spawned> started;
    // The group exists before any worker, so a failure part-way through still kills the ones
    // already started (the group's destructor).
    for (int local_rank = 0; local_rank < spec.num_processes; ++local_rank) {
      Worker& worker = workers_[local_rank];
      worker.local_rank = local_rank;
      worker.error_file = files.error_file(restart_count, local_rank);
      worker.out_log = files.open_log(restart_count, local_rank, "stdout");
      worker.err_log = files.open_log(restart_count, local_rank, "stderr");
      Pipe out = make_pipe(), err = make_pipe();
      const bool shown = spec.shows_on_console(local_rank);
      const std::string prefix = spec.quiet ? "" : "[rank" + std::to_string(spec.global_rank(local_rank)) + "]: ";
      worker.out = std::make_unique<LineRelay>(
          RelayTargets{shown ? STDOUT_FILENO : -1, worker.out_log.get(), prefix, 0});
      worker.err = std::make_unique<LineRelay>(
          RelayTargets{shown ? STDERR_FILENO : -1, worker.err_log.get(), prefix, kTailLines});

      SpawnOptions options;
      options.executable = spec.executable;
      options.argv = spec.argv;
      options.environment = worker_env_strings(spec, {local_rank, restart_count, worker.error_file});
      options.process_group = group_.id();
      options.stdout_fd = out.write.get();
      options.stderr_fd = err.write.get();
      started.push_back(spawn(options));
      worker.pid = started.back().pid;
      worker.exit_watch = std::move(started.back().exit_watch);
      worker.out_pipe = std::move(out.read);
      worker.err_pipe = std::move(err.read);
    }
    for (int local_rank = 0; local_rank < spec.num_processes; ++local_rank) {
      workers_[local_rank].start_errno = exec_error(started[local_rank]);
    }
  }

  Outcome supervise() {
    while (true) {
      const bool all_exited = std::all_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.wait_status; });
      // A finished group's leftovers (grandchildren holding an output pipe) would keep the
      // streams open forever: the job is over, so they go.
      if (all_exited) group_.kill_all();
      // fds[0]: signals; then per worker its exit watch and its two streams.
      std::vector<pollfd> fds{{signals_.fd(), POLLIN, 0}};
      struct Source {
        Worker* worker;
        enum { kExit, kStdout, kStderr } what;
      };
      std::vector<Source> sources;
      for (Worker& worker : workers_) {
        if (worker.exit_watch) {
          fds.push_back({worker.exit_watch.get(), POLLIN, 0});
          sources.push_back({&worker, Source::kExit});
        }
        if (worker.out_pipe) {
          fds.push_back({worker.out_pipe.get(), POLLIN, 0});
          sources.push_back({&worker, Source::kStdout});
        }
        if (worker.err_pipe) {
          fds.push_back({worker.err_pipe.get(), POLLIN, 0});
          sources.push_back({&worker, Source::kStderr});
        }
      }
      if (all_exited && sources.empty()) break;

      if (::poll(fds.data(), fds.size(), poll_timeout_ms()) < 0 && errno != EINTR) {
        throw Error(std::string("poll failed while supervising the workers: ") + std::strerror(errno));
      }
      if (deadline_ && Clock::now() >= *deadline_) {
        group_.kill_all();
        deadline_.reset();
      }
      if (fds[0].revents) {
        for (int number : signals_.take()) on_signal(number);
      }
      for (std::size_t i = 0; i < sources.size(); ++i) {
        if (!fds[i + 1].revents) continue;
        if (sources[i].what == Source::kExit) {
          reap(*sources[i].worker);
        } else {
          relay(*sources[i].worker, sources[i].what == Source::kStderr);
        }
      }
    }
    if (outcome_.failure) {
      const Worker& root = workers_[outcome_.failure->local_rank];
      outcome_.failure->stderr_tail = root.err->tail();
      outcome_.failure->error_message = read_error_file(root.error_file);
    }
    return outcome_;
  }

 private:
  int poll_timeout_ms() const {
    if (!deadline_) return -1;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now()).count();
    return static_cast<int>(std::max<long long>(0, left + 1));
  }

  void stop(int signal_number) {
    stopping_ = true;
    outcome_.stopped = static_cast<int>(
        std::count_if(workers_.begin(), workers_.end(), [](const Worker& w) { return !w.wait_status; }));
    group_.signal(signal_number);
    deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(spec_.grace_period_s));
  }

  void reap(Worker& worker) {
    int status = 0;
    pid_t reaped;
    while ((reaped = ::waitpid(worker.pid, &status, WNOHANG)) < 0 && errno == EINTR) {
    }
    if (reaped == 0) return;  // not yet: the watch fires again
    worker.exit_watch.reset();
    if (reaped < 0) status = W_EXITCODE(127, 0);  // cannot happen while SIGCHLD has its default
    worker.wait_status = status;
    const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (failed && !stopping_) {
      Failure failure;
      failure.local_rank = worker.local_rank;
      failure.pid = worker.pid;
      if (worker.start_errno == 0) {
        failure.what = describe_wait_status(status);
        failure.exit_code = exit_code_of(status);
      } else {
        // The shell's convention: 127 when the file is missing, 126 when it cannot be run.
        failure.what = std::string("could not be started: ") + std::strerror(worker.start_errno);
        failure.exit_code = worker.start_errno == ENOENT ? 127 : 126;
      }
      outcome_.failure = failure;
      stop(SIGTERM);
    }
  }

  void on_signal(int number) {
    if (stopping_) {
      group_.kill_all();  // a second Ctrl-C (or one during a failure's teardown) does not wait
    } else {
      stop(number);
    }
    if (!outcome_.interrupted_by) outcome_.interrupted_by = number;
  }

  void relay(Worker& worker, bool is_stderr) {
    Fd& pipe = is_stderr ? worker.err_pipe : worker.out_pipe;
    LineRelay& relay = is_stderr ? *worker.err : *worker.out;
    char buffer[64 * 1024];
    const ssize_t n = ::read(pipe.get(), buffer, sizeof buffer);
    if (n > 0) {
      relay.feed(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      relay.finish();
      pipe.reset();
    }
  }

  const LaunchSpec& spec_;
  SignalPipe& signals_;
  ProcessGroup group_;
  std::vector<Worker> workers_;
  bool stopping_ = false;
  std::optional<Clock::time_point> deadline_;
  Outcome outcome_;
};

std::string describe_root_cause(const LaunchSpec& spec, const Failure& failure) {
  return "rank " + std::to_string(spec.global_rank(failure.local_rank)) + " (local rank " +
         std::to_string(failure.local_rank) + " on " + spec.host + ", pid " + std::to_string(failure.pid) + ") " +
         failure.what;
}

void print_summary(const LaunchSpec& spec, const Outcome& outcome) {
  std::string text;
  if (outcome.failure) {
    const Failure& failure = *outcome.failure;
    text += "accel-launch: job failed: " + describe_root_cause(spec, failure) + "\n";
    if (failure.error_message) text += "  error file: " + *failure.error_message + "\n";
    if (!failure.stderr_tail.empty()) {
      text += "  last lines on its stderr:\n";
      for (const auto& line : failure.stderr_tail) text += "    " + line + "\n";
    }
    if (outcome.stopped > 0) text += "  stopped the " + std::to_string(outcome.stopped) + " worker(s) still running\n";
  }
  if (outcome.interrupted_by) {
    text += "accel-launch: interrupted by " + signal_name(*outcome.interrupted_by) + "; forwarded it to the workers\n";
  }
  text += "accel-launch: exit code " + std::to_string(outcome.exit_code()) + "\n";
  write_fully(STDERR_FILENO, text);
}

}  // namespace

int run(const LaunchSpec& spec) {
  RunFiles files(spec);
  if (!files.log_root().empty()) write_fully(STDERR_FILENO, "accel-launch: per-rank logs in " + files.log_root() + "\n");
  SignalPipe signals;
  for (int restart_count = 0;; ++restart_count) {
    Outcome outcome = Attempt(spec, restart_count, files, signals).supervise();
    if (!outcome.failure && !outcome.interrupted_by) return 0;
    if (outcome.failure && !outcome.interrupted_by && restart_count < spec.max_restarts) {
      write_fully(STDERR_FILENO, "accel-launch: " + describe_root_cause(spec, *outcome.failure) +
                                     "; restarting the group (restart " + std::to_string(restart_count + 1) + " of " +
                                     std::to_string(spec.max_restarts) + ")\n");
      continue;
    }
    print_summary(spec, outcome);
    return outcome.exit_code();
  }
}

}  // namespace accel::launch
