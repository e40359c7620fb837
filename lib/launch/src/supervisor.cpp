#include "accel/launch/supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
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
#include <utility>

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "control_plane.h"
#include "error_file.h"
#include "line_relay.h"
#include "process.h"
#include "status.h"
#include "stdin_relay.h"

extern char** environ;

namespace accel::launch {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr std::size_t kTailLines = 10;
// A stop request repeated this long after the first is a deliberate "stop now" (a second
// Ctrl-C); sooner, it is the same request delivered twice (`timeout` signals the launcher and
// its group, a hang-up comes from the kernel and from the shell) and changes nothing.
constexpr auto kDeliberateRepeat = 1s;
// After the last worker exited and everything it left was killed, streams still open (held by
// a process outside the launcher's descendants) are read this long, then abandoned.
constexpr auto kDrainAfterLastExit = 1s;
// The failure summary lists at most this many further failed ranks, each message cut to
// kMaxMessage bytes, so one summary stays a few screens long at most.
constexpr std::size_t kMaxListedFailures = 8;
constexpr std::size_t kMaxMessage = 500;
// A scratch directory of a launcher that no longer holds its lock is removed once it is this
// old (a younger one may belong to a launcher between mkdtemp and flock).
constexpr auto kStaleScratchAge = 60s;
constexpr char kScratchPrefix[] = "accel-launch-";

// The write end of SignalPipe's pipe, for the handler (one SignalPipe exists at a time).
int g_signal_pipe = -1;

extern "C" void queue_signal(int number) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(number);
  (void)!::write(g_signal_pipe, &byte, 1);
  errno = saved;
}

// For the duration of run(): the forwarded signals and SIGCHLD are caught by a handler that
// writes their number into a pipe the supervision loop polls (the self-pipe trick). A handler,
// not a blocked mask with signalfd: libraries loaded earlier (NVML in the hardware probe) may
// have started threads, and a process-directed signal goes to any thread that does not block it.
// A SIGHUP the launcher inherited as ignored (nohup) stays ignored and is not forwarded; other
// ignored signals (SIGINT and SIGQUIT of `cmd &` in a script) are caught all the same.
// SIGPIPE is ignored so a closed console does not kill the launcher.
class SignalPipe {
 public:
  SignalPipe() {
    g_signal_pipe = pipe_.write.get();
    for (int number : kForwardedSignals) {
      struct sigaction current {};
      ::sigaction(number, nullptr, &current);
      if (number == SIGHUP && current.sa_handler == SIG_IGN) continue;
      set(number, queue_signal);
    }
    set(SIGCHLD, queue_signal);
    set(SIGPIPE, SIG_IGN);
  }
  ~SignalPipe() {
    for (const auto& [number, previous] : saved_) ::sigaction(number, &previous, nullptr);
    g_signal_pipe = -1;
  }
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  int fd() const { return pipe_.read.get(); }

  std::vector<int> take() {
    std::vector<int> numbers;
    unsigned char bytes[64];
    ssize_t n;
    while ((n = ::read(pipe_.read.get(), bytes, sizeof bytes)) > 0) numbers.insert(numbers.end(), bytes, bytes + n);
    return numbers;
  }

  // Ctrl-Z: stops the launcher once the workers have been told; returns once it is continued.
  // SIGSTOP, not SIGTSTP's default action: the kernel discards SIGTSTP for a process in an
  // orphaned process group (a launcher started by a daemon, a CI runner or setsid), and the
  // launcher would then keep running while its workers are stopped.
  void suspend_self() { ::raise(SIGSTOP); }

 private:
  void set(int number, void (*disposition)(int)) {
    struct sigaction action {}, previous{};
    action.sa_handler = disposition;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    ::sigaction(number, &action, &previous);
    saved_.emplace_back(number, previous);
  }

  Pipe pipe_ = make_pipe(O_NONBLOCK);
  std::vector<std::pair<int, struct sigaction>> saved_;
};

// Removes a directory holding only files (a scratch directory); best effort.
void remove_flat_directory(const std::string& path) {
  if (DIR* dir = ::opendir(path.c_str())) {
    while (const dirent* entry = ::readdir(dir)) {
      if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
        ::unlink((path + "/" + entry->d_name).c_str());
      }
    }
    ::closedir(dir);
  }
  ::rmdir(path.c_str());
}

// Scratch directories left by launchers killed with SIGKILL: ours (same user), old enough, and
// not locked (a running launcher holds a lock on its own for as long as it lives).
void remove_stale_scratch_directories(const std::string& tmp) {
  DIR* dir = ::opendir(tmp.c_str());
  if (!dir) return;
  const auto stale_before = std::chrono::system_clock::now() - kStaleScratchAge;
  while (const dirent* entry = ::readdir(dir)) {
    if (std::strncmp(entry->d_name, kScratchPrefix, sizeof kScratchPrefix - 1) != 0) continue;
    const std::string path = tmp + "/" + entry->d_name;
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != ::getuid()) continue;
    if (std::chrono::system_clock::from_time_t(info.st_mtime) > stale_before) continue;
    const Fd lock(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (lock && ::flock(lock.get(), LOCK_EX | LOCK_NB) == 0) remove_flat_directory(path);
  }
  ::closedir(dir);
}

// The run's files: a private temporary directory for the workers' error files (locked while
// the launcher lives, removed at the end) and, with --log_dir, a fresh directory per run for
// the logs (never reusing an old one).
class RunFiles {
 public:
  explicit RunFiles(const LaunchSpec& spec) {
    std::string tmp = spec.environment("TMPDIR").value_or("");
    if (tmp.empty()) tmp = "/tmp";
    remove_stale_scratch_directories(tmp);
    std::string pattern = tmp + "/" + kScratchPrefix + "XXXXXX";
    if (!::mkdtemp(pattern.data())) throw FileError(pattern, "cannot create a temporary directory", errno);
    scratch_ = pattern;
    scratch_lock_ = Fd(::open(scratch_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (scratch_lock_) ::flock(scratch_lock_.get(), LOCK_EX | LOCK_NB);
    if (spec.log_dir.empty()) return;
    try {
      files::make_directories(spec.log_dir);
      for (int suffix = 0; log_root_.empty(); ++suffix) {
        const std::string candidate =
            spec.log_dir + "/" + spec.run_id + (suffix ? "." + std::to_string(suffix) : std::string());
        if (::mkdir(candidate.c_str(), 0755) == 0) {
          log_root_ = candidate;
        } else if (errno != EEXIST) {
          throw FileError(candidate, "cannot create the log directory", errno);
        }
      }
    } catch (const FileError& error) {
      remove_flat_directory(scratch_);
      throw UsageError("--log_dir " + spec.log_dir + " is unusable: " + error.what());
    }
  }
  ~RunFiles() { remove_flat_directory(scratch_); }
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
    files::make_directories(dir);
    const std::string path = dir + "/" + name + ".log";
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) throw FileError(path, "cannot create the log file", errno);
    return fd;
  }

 private:
  std::string scratch_;
  Fd scratch_lock_;
  std::string log_root_;
};

// A worker inherits the launcher's whole environment, as under torchrun. That needs every
// variable, not one looked up by name, so this reads `environ` rather than spec.environment.
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

// Whether two descriptors are the same terminal (a shell's stdout and stderr).
bool same_terminal(int a, int b) {
  struct stat first {}, second {};
  return ::isatty(a) && ::isatty(b) && ::fstat(a, &first) == 0 && ::fstat(b, &second) == 0 &&
         first.st_rdev == second.st_rdev;
}

// What the attempts of one run share: the consoles, rank 0's stdin, /dev/null for the others.
struct RunStreams {
  RunStreams() {
    if (same_terminal(STDOUT_FILENO, STDERR_FILENO)) err.shares_screen_with = &out;
  }
  RunStreams(const RunStreams&) = delete;
  RunStreams& operator=(const RunStreams&) = delete;

  Console out{STDOUT_FILENO, ::isatty(STDOUT_FILENO) == 1};
  Console err{STDERR_FILENO, ::isatty(STDERR_FILENO) == 1};
  StdinRelay input{STDIN_FILENO};
  Fd null_input{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
};

struct Worker {
  RankOutcome outcome;
  bool exited = false;
  int start_errno = 0;  // why exec failed, 0 when it did not
  std::string error_file;
  Fd out_log, err_log;
  Fd out_pipe, err_pipe;  // read ends; reset at end of stream
  std::unique_ptr<LineRelay> out, err;
};

// What one attempt came to on this machine.
struct Outcome {
  std::vector<RankOutcome> ranks;
  std::vector<int> failed;  // local ranks, the root cause first
  std::optional<int> interrupted_by;
  std::optional<std::string> stopped_for;  // another machine's failure stopped the workers here
  std::optional<JobEvent> job_finished;    // the job ended (or was lost) while they ran

  const RankOutcome* root_cause() const { return failed.empty() ? nullptr : &ranks[failed.front()]; }
  int exit_code() const {
    if (!failed.empty()) return root_cause()->exit_code;
    return interrupted_by ? 128 + *interrupted_by : 0;
  }
};

RunResult result_of(Outcome outcome, int restarts) {
  RunResult result;
  result.exit_code = outcome.exit_code();
  result.restarts = restarts;
  result.ranks = std::move(outcome.ranks);
  result.failed = std::move(outcome.failed);
  result.interrupted_by = outcome.interrupted_by;
  return result;
}

bool is_stop_signal(int number) {
  return std::find(std::begin(kStopSignals), std::end(kStopSignals), number) != std::end(kStopSignals);
}

// A worker that died of the launcher's own stop (SIGTERM, SIGKILL, or a shell's 128+N for them)
// was stopped, not failed.
bool ended_by_stop(int status) {
  const int code = exit_code_of(status);
  return code == 128 + SIGTERM || code == 128 + SIGKILL;
}

std::string describe_rank(const RankOutcome& rank) {
  return "rank " + std::to_string(rank.rank) + " (local rank " + std::to_string(rank.local_rank) + " on " + rank.host +
         ", pid " + std::to_string(rank.pid) + ") " + rank.what;
}

// The root cause with its error file's message and its last stderr lines.
std::string describe_failure(const RankOutcome& root) {
  std::string text = describe_rank(root);
  if (root.error_message) text += "\n  error file: " + shortened(*root.error_message, kMaxMessage);
  if (!root.stderr_tail.empty()) {
    text += root.tail_has_stdout ? "\n  last lines of its output:" : "\n  last lines on its stderr:";
    for (const auto& line : root.stderr_tail) text += "\n    " + line;
  }
  return text;
}

// How a worker ended, in words and as an exit code, from its wait status (or its failed exec).
void record_ending(RankOutcome& rank, int status, int start_errno, const std::string& executable) {
  if (WIFSIGNALED(status)) rank.signal = WTERMSIG(status);
  else rank.exit_status = WEXITSTATUS(status);
  if (start_errno == 0) {
    rank.what = describe_wait_status(status);
    rank.exit_code = exit_code_of(status);
  } else {
    const StartFailure start = describe_start_error(executable, start_errno);
    rank.what = start.what;
    rank.exit_code = start.exit_code;
  }
}

// One attempt: the whole local group started, supervised and stopped.
class Attempt {
 public:
  // `link`: the other machines of the job; null on one machine.
  Attempt(const LaunchSpec& spec, int restart_count, const RunFiles& files, SignalPipe& signals, RunStreams& streams,
          Spawner& spawner, MachineLink* link)
      : spec_(spec), restart_count_(restart_count), signals_(signals), streams_(streams), link_(link),
        group_(spawner.start_group()) {
    // The group exists before any worker, so a failure part-way through still kills the ones
    // already started (the group's destructor).
    workers_.resize(spec.num_processes);
    for (int local_rank = 0; local_rank < spec.num_processes; ++local_rank) start(local_rank, files);
    for (Worker& worker : workers_) worker.start_errno = group_->start_error(worker.outcome.pid);
  }

  Outcome supervise() {
    std::optional<Clock::time_point> drain_deadline;
    while (true) {
      reap();
      const bool all_exited = std::all_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.exited; });
      if (all_exited && !drain_deadline) {
        // The job is over: what it left running (in the group or escaped from it) goes, so it
        // cannot hold the output streams, and the launcher, open.
        group_->end_leftovers();
        drain_deadline = Clock::now() + kDrainAfterLastExit;
      }
      const bool streams_open = std::any_of(workers_.begin(), workers_.end(),
                                            [](const Worker& w) { return w.out_pipe || w.err_pipe; });
      if (all_exited && (!streams_open || Clock::now() >= *drain_deadline)) break;
      wait_and_handle_events(drain_deadline);
    }
    return finish();
  }

 private:
  void start(int local_rank, const RunFiles& files) {
    Worker& worker = workers_[local_rank];
    worker.outcome.rank = spec_.global_rank(local_rank);
    worker.outcome.local_rank = local_rank;
    worker.outcome.host = spec_.host;
    worker.outcome.restart_count = restart_count_;
    worker.error_file = files.error_file(restart_count_, local_rank);
    worker.out_log = files.open_log(restart_count_, local_rank, "stdout");
    worker.err_log = files.open_log(restart_count_, local_rank, "stderr");
    const bool shown = spec_.shows_on_console(local_rank);
    const std::string prefix = spec_.quiet ? "" : "[rank" + std::to_string(worker.outcome.rank) + "]: ";
    // When stdout and stderr are one terminal and nothing keeps them apart (log files,
    // --redirects), a worker writes both into one pipe: the terminal then shows them in the order
    // the worker wrote them, as it would without the launcher.
    const bool one_stream = streams_.err.shares_screen_with && !worker.out_log && !worker.err_log && spec_.redirects == 0;
    Pipe out = make_pipe(), err = one_stream ? Pipe{} : make_pipe();
    const bool out_shown = shown && (spec_.redirects & 1) == 0, err_shown = shown && (spec_.redirects & 2) == 0;
    if (one_stream) {
      worker.out = std::make_unique<LineRelay>(RelayTargets{shown ? &streams_.err : nullptr, -1, prefix, kTailLines});
    } else {
      worker.out = std::make_unique<LineRelay>(RelayTargets{out_shown ? &streams_.out : nullptr, worker.out_log.get(), prefix, 0});
      worker.err = std::make_unique<LineRelay>(
          RelayTargets{err_shown ? &streams_.err : nullptr, worker.err_log.get(), prefix, kTailLines});
    }
    const Fd input = worker.outcome.rank == 0 ? streams_.input.attach() : Fd();

    WorkerSpec process;
    process.local_rank = local_rank;
    process.executable = spec_.executable;
    process.argv = spec_.argv;
    process.environment = worker_env_strings(spec_, {local_rank, restart_count_, worker.error_file});
    process.stdin_fd = input ? input.get() : streams_.null_input.get();
    process.stdout_fd = out.write.get();
    process.stderr_fd = one_stream ? out.write.get() : err.write.get();
    if (!spec_.cpu_affinity.empty()) process.cpus = spec_.cpu_affinity[static_cast<std::size_t>(local_rank)];
    worker.outcome.pid = group_->spawn(process);
    worker.out_pipe = std::move(out.read);
    worker.err_pipe = std::move(err.read);
  }

  // One poll() over the signals, rank 0's stdin, the other machines and the workers' streams,
  // and what each ready one asks for.
  void wait_and_handle_events(const std::optional<Clock::time_point>& drain_deadline) {
    // fds[0]: signals; then rank 0's stdin when there is something to do; then the streams.
    std::vector<pollfd> fds{{signals_.fd(), POLLIN, 0}};
    const auto input = streams_.input.wanted();
    if (input) fds.push_back(*input);
    // The job's events, on several machines.
    const std::size_t job_events = fds.size();
    if (link_) fds.push_back({link_->fd(), POLLIN, 0});
    const std::size_t first_stream = fds.size();
    std::vector<std::pair<Worker*, bool>> sources;  // (worker, is stderr)
    for (Worker& worker : workers_) {
      if (worker.out_pipe) {
        fds.push_back({worker.out_pipe.get(), POLLIN, 0});
        sources.emplace_back(&worker, false);
      }
      if (worker.err_pipe) {
        fds.push_back({worker.err_pipe.get(), POLLIN, 0});
        sources.emplace_back(&worker, true);
      }
    }
    if (::poll(fds.data(), fds.size(), poll_timeout_ms(drain_deadline)) < 0 && errno != EINTR) {
      throw Error(std::string("poll failed while supervising the workers: ") + std::strerror(errno));
    }
    const auto now = Clock::now();
    if (kill_deadline_ && now >= *kill_deadline_) {
      signal_workers(SIGKILL);
      kill_deadline_.reset();
    }
    if (fds[0].revents) {
      for (int number : signals_.take()) {
        if (number != SIGCHLD) on_signal(number);  // exits are reaped at the top of every round
      }
    }
    if (input && fds[1].revents) streams_.input.on_ready(fds[1].revents);
    if (link_ && fds[job_events].revents) {
      while (auto event = link_->next_event()) on_job_event(*event);
    }
    for (std::size_t i = 0; i < sources.size(); ++i) {
      if (fds[first_stream + i].revents) relay(*sources[i].first, sources[i].second);
    }
    for (Worker& worker : workers_) {
      worker.out->flush_due(now);
      if (worker.err) worker.err->flush_due(now);
    }
  }

  Outcome finish() {
    for (Worker& worker : workers_) {
      worker.out->finish();
      if (worker.err) worker.err->finish();
    }
    for (int local_rank : outcome_.failed) {
      Worker& worker = workers_[local_rank];
      const LineRelay& tailed = worker.err ? *worker.err : *worker.out;  // stderr, or both in one stream
      worker.outcome.stderr_tail.assign(tailed.tail().begin(), tailed.tail().end());
      worker.outcome.tail_has_stdout = !worker.err;
      worker.outcome.error_message = read_error_file(worker.error_file);
    }
    for (Worker& worker : workers_) outcome_.ranks.push_back(std::move(worker.outcome));
    return std::move(outcome_);
  }

  int poll_timeout_ms(const std::optional<Clock::time_point>& drain_deadline) const {
    std::optional<Clock::time_point> wake = kill_deadline_;
    const auto earliest = [&wake](const std::optional<Clock::time_point>& when) {
      if (when && (!wake || *when < *wake)) wake = when;
    };
    earliest(drain_deadline);
    for (const Worker& worker : workers_) {
      earliest(worker.out->partial_due());
      if (worker.err) earliest(worker.err->partial_due());
    }
    if (!wake) return -1;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*wake - Clock::now()).count();
    return static_cast<int>(std::max<long long>(0, left + 1));
  }

  // To the group and, for those that left it (setsid, setpgid), to each running worker by pid.
  void signal_workers(int number) const {
    std::vector<pid_t> running;
    for (const Worker& worker : workers_) {
      if (!worker.exited) running.push_back(worker.outcome.pid);
    }
    group_->signal(number, running);
  }

  void stop(int signal_number) {
    stopping_ = true;
    for (Worker& worker : workers_) {
      if (!worker.exited) worker.outcome.ending = RankOutcome::Ending::kStopped;
    }
    signal_workers(signal_number);
    kill_deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(spec_.grace_period_s));
  }

  void reap() {
    for (const WorkerExit& exit : group_->reap()) {
      for (Worker& worker : workers_) {
        if (worker.outcome.pid == exit.pid && !worker.exited) on_exit(worker, exit.wait_status);
      }
    }
  }

  void on_exit(Worker& worker, int status) {
    worker.exited = true;
    RankOutcome& rank = worker.outcome;
    record_ending(rank, status, worker.start_errno, spec_.executable);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    // After a failure stopped the group, ranks that failed on their own are listed as well.
    if (stopping_ && !(failure_stopped_group_ && !ended_by_stop(status))) return;
    rank.ending = RankOutcome::Ending::kFailed;  // listed, not counted as stopped
    outcome_.failed.push_back(rank.local_rank);
    if (stopping_) return;
    failure_stopped_group_ = true;
    if (link_) link_->report_failure(restart_count_, rank.exit_code, describe_rank(rank));
    stop(SIGTERM);
  }

  void on_signal(int number) {
    if (!is_stop_signal(number)) {
      signal_workers(number);
      if (number == SIGTSTP) signals_.suspend_self();
      return;
    }
    const auto now = Clock::now();
    if (!first_stop_request_) {
      first_stop_request_ = now;
      outcome_.interrupted_by = number;
      if (stopping_) signal_workers(number);  // a failure is already stopping the group
      else stop(number);
    } else if (now - *first_stop_request_ >= kDeliberateRepeat) {
      signal_workers(SIGKILL);
    }
  }

  // Another machine failed, or the job is over: this machine's workers stop too.
  void on_job_event(const JobEvent& event) {
    if (event.kind == JobEvent::kStart || (event.kind == JobEvent::kStop && event.attempt != restart_count_)) return;
    if (event.kind == JobEvent::kFinish) outcome_.job_finished = event;
    if (stopping_) return;
    outcome_.stopped_for = event.summary;
    stop(SIGTERM);
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
  int restart_count_;
  SignalPipe& signals_;
  RunStreams& streams_;
  MachineLink* link_;
  std::unique_ptr<WorkerGroup> group_;
  std::vector<Worker> workers_;
  bool stopping_ = false;
  bool failure_stopped_group_ = false;
  std::optional<Clock::time_point> first_stop_request_;
  std::optional<Clock::time_point> kill_deadline_;
  Outcome outcome_;
};

// The job's next word for this launcher, or the stop signal that interrupted the wait.
std::optional<JobEvent> wait_for_job(MachineLink& link, SignalPipe& signals, int& interrupted_by) {
  while (true) {
    if (auto event = link.next_event()) return event;
    pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {link.fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      throw Error(std::string("poll failed while waiting for the other machines: ") + std::strerror(errno));
    }
    for (int number : signals.take()) {
      if (is_stop_signal(number)) {
        interrupted_by = number;
        return std::nullopt;
      }
    }
  }
}

// The job ended by machine 0's decision.
RunResult job_ended(const JobEvent& end, int restarts) {
  RunResult result;
  result.exit_code = end.exit_code;
  result.restarts = restarts;
  result.job_ended = end.summary;
  return result;
}

// Several machines: machine 0 decides when attempts start, stop, restart and end, so that all
// machines act as one job (control_plane.h).
RunResult run_across_machines(const LaunchSpec& spec, const RunFiles& files, SignalPipe& signals, RunStreams& streams,
                              Spawner& spawner) {
  MachineLink link(spec);
  std::string last_failure;
  int last_attempt = 0;
  while (true) {
    int interrupted_by = 0;
    const auto event = wait_for_job(link, signals, interrupted_by);
    if (!event) {
      link.report_interrupted(last_attempt, 128 + interrupted_by,
                              "its launcher was interrupted by " + signal_name(interrupted_by));
      RunResult result;
      result.exit_code = 128 + interrupted_by;
      result.restarts = last_attempt;
      result.interrupted_by = interrupted_by;
      result.interrupted_between_attempts = true;
      return result;
    }
    if (event->kind == JobEvent::kFinish) return job_ended(*event, last_attempt);
    if (event->kind != JobEvent::kStart) continue;  // a stop for an attempt already over here
    last_attempt = event->attempt;
    if (event->attempt > 0) {
      write_fully(STDERR_FILENO, "accel-launch: restarting the workers of every machine (restart " +
                                     std::to_string(event->attempt) + " of " + std::to_string(spec.max_restarts) +
                                     ") after: " + last_failure.substr(0, last_failure.find('\n')) + "\n");
    }
    Outcome outcome = Attempt(spec, event->attempt, files, signals, streams, spawner, &link).supervise();
    if (outcome.interrupted_by) {
      link.report_interrupted(event->attempt, outcome.exit_code(),
                              "its launcher was interrupted by " + signal_name(*outcome.interrupted_by));
      return result_of(std::move(outcome), event->attempt);
    }
    if (outcome.job_finished) return job_ended(*outcome.job_finished, event->attempt);
    const RankOutcome* root = outcome.root_cause();
    const std::string failure = root ? describe_failure(*root) : "";
    last_failure = root ? "machine " + std::to_string(spec.machine_rank) + " (" + spec.host + "): " + failure
                        : outcome.stopped_for.value_or("");
    link.report_ended(event->attempt, !root && !outcome.stopped_for, failure);
  }
}

}  // namespace

int RunResult::stopped() const {
  return static_cast<int>(std::count_if(ranks.begin(), ranks.end(),
                                        [](const RankOutcome& rank) { return rank.ending == RankOutcome::Ending::kStopped; }));
}

RunResult run(const LaunchSpec& spec) { return run(spec, process_spawner()); }

RunResult run(const LaunchSpec& spec, Spawner& spawner) {
  RunFiles files(spec);
  if (!files.log_root().empty()) write_fully(STDERR_FILENO, "accel-launch: per-rank logs in " + files.log_root() + "\n");
  const SubreaperScope subreaper;
  SignalPipe signals;
  RunStreams streams;
  if (spec.num_machines > 1) return run_across_machines(spec, files, signals, streams, spawner);
  for (int restart_count = 0;; ++restart_count) {
    Outcome outcome = Attempt(spec, restart_count, files, signals, streams, spawner, nullptr).supervise();
    const RankOutcome* root = outcome.root_cause();
    if (root && !outcome.interrupted_by && restart_count < spec.max_restarts) {
      write_fully(STDERR_FILENO, "accel-launch: " + describe_rank(*root) + "; restarting the group (restart " +
                                     std::to_string(restart_count + 1) + " of " + std::to_string(spec.max_restarts) +
                                     ")\n");
      continue;
    }
    return result_of(std::move(outcome), restart_count);
  }
}

std::string summary(const RunResult& result) {
  const std::string exit_line = "accel-launch: exit code " + std::to_string(result.exit_code) + "\n";
  if (result.job_ended) return result.exit_code == 0 ? "" : "accel-launch: job failed: " + *result.job_ended + "\n" + exit_line;
  if (result.interrupted_between_attempts) {
    return "accel-launch: interrupted by " + signal_name(*result.interrupted_by) + " between attempts\n" + exit_line;
  }
  if (result.failed.empty() && !result.interrupted_by) return "";
  std::string text;
  if (!result.failed.empty()) {
    text += "accel-launch: job failed: " + describe_failure(result.ranks[result.failed.front()]) + "\n";
    const std::size_t others = result.failed.size() - 1;
    for (std::size_t i = 1; i <= std::min(others, kMaxListedFailures); ++i) {
      const RankOutcome& failure = result.ranks[result.failed[i]];
      text += "  also failed: " + describe_rank(failure);
      if (failure.error_message) text += "; error file: " + shortened(*failure.error_message, kMaxMessage);
      else if (!failure.stderr_tail.empty())
        text += (failure.tail_has_stdout ? "; last output line: " : "; last stderr line: ") + failure.stderr_tail.back();
      text += "\n";
    }
    if (others > kMaxListedFailures) {
      text += "  and " + std::to_string(others - kMaxListedFailures) + " more failed rank(s)\n";
    }
    if (result.stopped() > 0) text += "  stopped the " + std::to_string(result.stopped()) + " worker(s) still running\n";
  }
  if (result.interrupted_by) {
    text += "accel-launch: interrupted by " + signal_name(*result.interrupted_by) + "; forwarded it to the workers\n";
  }
  return text + exit_line;
}

Launched launch_with_config(const LaunchRequest& asked, const ConfigFiller& fill_from_config, std::ostream& out,
                            std::ostream& err) {
  LaunchRequest request = asked;
  const hardware::Machine machine = hardware::probe(request.environment);
  fill_from_config(request, err);
  Launched launched{resolve(request, machine, err)};
  if (request.dry_run) {
    out << dry_run_report(launched.spec) << std::flush;
    return launched;
  }
  const RunResult result = run(launched.spec);
  err << summary(result) << std::flush;
  launched.exit_code = result.exit_code;
  return launched;
}

}  // namespace accel::launch
