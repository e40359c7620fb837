#include "control_plane.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "fd.h"

namespace accel::launch {
// Named, where an anonymous namespace would do: classes with external linkage below hold these
// types, which a unity build reports (-Wsubobject-linkage). The using-directive makes it read
// as the anonymous namespace would.
namespace control_plane_detail {

// Messages are single lines: words separated by spaces, the last one (a summary) percent-encoded
// so that it can hold spaces and newlines.
//   launcher -> coordinator: hello RANK MACHINES PROCESSES RUN_ID HOST | beat | failed ATTEMPT CODE SUMMARY |
//                            abort ATTEMPT CODE SUMMARY (interrupted: no restart) |
//                            ended ATTEMPT ok|failed SUMMARY
//   coordinator -> launcher: start ATTEMPT | stop ATTEMPT SUMMARY | finish CODE SUMMARY | beat
using Clock = std::chrono::steady_clock;
constexpr auto kPollStep = std::chrono::milliseconds(100);
constexpr auto kFirstProgress = std::chrono::seconds(2);
constexpr auto kProgressEvery = std::chrono::seconds(10);

std::string encode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c <= ' ' || c == '%' || c >= 0x7f) {
      char escaped[4];
      std::snprintf(escaped, sizeof escaped, "%%%02X", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out.empty() ? "%" : out;  // "%" alone: the empty text, so the word is never missing
}

std::optional<unsigned char> hex_byte(char high, char low) {
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (digit(high) < 0 || digit(low) < 0) return std::nullopt;
  return static_cast<unsigned char>(digit(high) * 16 + digit(low));
}

std::string decode(const std::string& word) {
  if (word == "%") return "";
  std::string out;
  for (std::size_t i = 0; i < word.size(); ++i) {
    const auto code = word[i] == '%' && i + 2 < word.size() ? hex_byte(word[i + 1], word[i + 2]) : std::nullopt;
    if (code) {
      out += static_cast<char>(*code);
      i += 2;
    } else {
      out += word[i];
    }
  }
  return out;
}

std::vector<std::string> words(const std::string& line) { return text::split(line, ' '); }

std::optional<int> number(const std::string& word);

struct Hello {
  int rank = 0;
  int machines = 0;
  int processes = 0;
  std::string run_id;
  std::string host;
};

std::optional<Hello> parse_hello(const std::string& line) {
  const auto w = words(line);
  if (w.size() != 6 || w[0] != "hello") return std::nullopt;
  const auto rank = number(w[1]), machines = number(w[2]), processes = number(w[3]);
  if (!rank || !machines || !processes) return std::nullopt;
  return Hello{*rank, *machines, *processes, w[4], decode(w[5])};
}

std::optional<int> number(const std::string& word) {
  const auto value = text::parse_integer(word);
  if (!value || *value < -1'000'000 || *value > 1'000'000'000) return std::nullopt;
  return static_cast<int>(*value);
}

// A TCP connection carrying lines. Reads never block (poll tells when); writes are small and
// blocking with MSG_NOSIGNAL, so a vanished peer is an error, never a SIGPIPE.
class Connection {
 public:
  explicit Connection(Fd fd) : fd_(std::move(fd)) {
    const int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  int fd() const { return fd_.get(); }
  bool open() const { return static_cast<bool>(fd_); }
  void close() { fd_.reset(); }

  bool send(const std::string& line) {
    if (!fd_) return false;
    const std::string data = line + "\n";
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Reads what is available; false at end of stream or on error. Complete lines go to `lines`.
  bool receive(std::vector<std::string>& lines) {
    char buffer[4096];
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0) return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0) return false;
    pending_.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t end; (end = pending_.find('\n')) != std::string::npos;) {
      lines.push_back(pending_.substr(0, end));
      pending_.erase(0, end + 1);
    }
    return pending_.size() < 64 * 1024;  // a peer that never ends its line is not one of ours
  }

 private:
  Fd fd_;
  std::string pending_;
};

// The helper threads leave the forwarded signals to the supervisor's thread.
std::thread start_quiet_thread(std::function<void()> body) {
  sigset_t all, previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &previous);
  std::thread thread(std::move(body));
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return thread;
}

// Wakes a thread blocked in poll().
class Wakeup {
 public:
  int fd() const { return pipe_.read.get(); }
  void raise() const { (void)!::write(pipe_.write.get(), "x", 1); }
  void clear() const {
    char buffer[64];
    while (::read(pipe_.read.get(), buffer, sizeof buffer) > 0) {
    }
  }

 private:
  Pipe pipe_ = make_pipe(O_NONBLOCK);
};

addrinfo* resolve_address(const std::string& host, int port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;  // IPv4 or IPv6, as machine 0's address is written
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  const int error = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (error != 0) {
    throw Error("cannot resolve --main_process_ip " + host + ": " + ::gai_strerror(error));
  }
  return found;
}

// Connects a non-blocking socket, waiting at most `timeout_ms` (an unreachable host would
// otherwise hold a blocking connect for minutes, past the join timeout). Returns 0 or the errno.
int connect_within(int fd, const sockaddr* address, socklen_t length, int timeout_ms) {
  if (::connect(fd, address, length) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd writable{fd, POLLOUT, 0};
  if (::poll(&writable, 1, timeout_ms) != 1) return ETIMEDOUT;
  int error = 0;
  socklen_t size = sizeof error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
  return error;
}

std::string list_machines(const std::vector<int>& machines) {
  std::vector<std::string> names;
  for (int machine : machines) names.push_back(std::to_string(machine));
  return text::join(names, ", ");
}

long long seconds_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count();
}

void say(const std::string& line) {
  const std::string text = "accel-launch: " + line + "\n";
  (void)!::write(STDERR_FILENO, text.data(), text.size());
}

}  // namespace control_plane_detail
using namespace control_plane_detail;

int control_port(const LaunchSpec& spec) { return spec.master_port + 1; }

// ---------------------------------------------------------------------------------------------
// Machine 0: the job's single decision maker.
class MachineLink::Coordinator {
 public:
  explicit Coordinator(const LaunchSpec& spec) : spec_(spec), machines_(spec.num_machines) {
    listen_on(spec.master_addr, control_port(spec));
    thread_ = start_quiet_thread([this] { loop(); });
  }
  ~Coordinator() {
    quit_ = true;
    wakeup_.raise();
    thread_.join();
  }

 private:
  struct Machine {
    std::optional<Connection> link;
    std::string host;
    Clock::time_point last_heard;
    bool ended = false;  // this attempt's workers have all exited here
  };
  enum class Phase { kJoining, kRunning, kStopping, kDone };

  void listen_on(const std::string& host, int port) {
    // Bind where machine 0 is reached; when that name is not an address of this host (a
    // Kubernetes service, a NAT), listen on every address instead.
    addrinfo* found = resolve_address(host, port, true);
    sockaddr_storage address{};
    const socklen_t size = found->ai_addrlen;
    std::memcpy(&address, found->ai_addr, size);
    ::freeaddrinfo(found);
    Fd fd(::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), size) != 0 && errno == EADDRNOTAVAIL) {
      if (address.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr = in6addr_any;
      else reinterpret_cast<sockaddr_in*>(&address)->sin_addr.s_addr = htonl(INADDR_ANY);
      (void)!::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), size);
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    // sin_port and sin6_port sit at the same offset.
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0 ||
        reinterpret_cast<sockaddr_in*>(&bound)->sin_port == 0 || ::listen(fd.get(), 1024) != 0) {
      throw Error("cannot host the launchers' control plane on " + host + ":" + std::to_string(port) + " (" +
                  std::strerror(errno) + "): it is --main_process_port + 1; choose a --main_process_port whose next "
                  "port is free on machine 0");
    }
    ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
    listener_ = std::move(fd);
  }

  void loop() {
    phase_started_ = Clock::now();
    next_progress_ = phase_started_ + kFirstProgress;
    auto next_beat = Clock::now();
    std::optional<Clock::time_point> linger_until;
    while (true) {
      // Leaving: the launchers are given a moment to read the final word and hang up first, so
      // that closing here never resets a connection with the word still unread.
      if (quit_) {
        if (!linger_until) linger_until = Clock::now() + std::chrono::seconds(2);
        const bool connected = std::any_of(machines_.begin(), machines_.end(), [](const Machine& m) { return m.link.has_value(); });
        if (phase_ != Phase::kDone || !connected || Clock::now() >= *linger_until) break;
      }
      std::vector<pollfd> fds{{wakeup_.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
      for (auto& pending : pending_) fds.push_back({pending.fd(), POLLIN, 0});
      for (auto& machine : machines_) fds.push_back({machine.link ? machine.link->fd() : -1, POLLIN, 0});
      ::poll(fds.data(), fds.size(), static_cast<int>(kPollStep.count()));
      wakeup_.clear();
      const std::size_t polled_pending = pending_.size();
      const std::size_t first_machine_fd = 2 + polled_pending;
      if (fds[1].revents) accept_all();
      // New connections first say hello; then they are machines. Those accepted just now were not
      // polled yet.
      std::vector<Connection> still_pending;
      for (std::size_t i = 0; i < pending_.size(); ++i) {
        std::vector<std::string> lines;
        const bool readable = i < polled_pending && fds[2 + i].revents;
        const bool open = !readable || pending_[i].receive(lines);
        if (!lines.empty()) {
          welcome(std::move(pending_[i]), lines);
        } else if (open) {
          still_pending.push_back(std::move(pending_[i]));
        }
      }
      pending_ = std::move(still_pending);
      for (int rank = 0; rank < spec_.num_machines; ++rank) {
        Machine& machine = machines_[rank];
        if (!machine.link || !fds[first_machine_fd + rank].revents) continue;
        std::vector<std::string> lines;
        const bool open = machine.link->receive(lines);
        machine.last_heard = Clock::now();
        for (const auto& line : lines) handle(rank, line);
        if (!open && machine.link) lose(rank, "its launcher ended or its connection closed");
      }
      for (int rank = 0; rank < spec_.num_machines; ++rank) {
        if (machines_[rank].link && Clock::now() - machines_[rank].last_heard > kHeartbeatTimeout) {
          lose(rank, "no heartbeat for " + std::to_string(kHeartbeatTimeout.count() / 1000) + " s");
        }
      }
      if (Clock::now() >= next_beat) {
        for (auto& machine : machines_) {
          if (machine.link) machine.link->send("beat");
        }
        next_beat = Clock::now() + kHeartbeatInterval;
      }
      if (phase_ == Phase::kJoining) check_joining();
    }
  }

  void accept_all() {
    while (true) {
      Fd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!fd) return;
      pending_.emplace_back(std::move(fd));
    }
  }

  // The first line of a connection: who it is, and whether it belongs to this job.
  void welcome(Connection link, const std::vector<std::string>& lines) {
    const auto hello = parse_hello(lines.front());
    const std::string refusal = hello ? refusal_for(*hello) : "not an accel-launch of this version";
    if (!refusal.empty()) {
      say("refused a launcher from " + (hello ? hello->host : std::string("?")) + ": " + refusal);
      link.send("finish 2 " + encode("machine 0 refused this launcher: " + refusal));
      return;
    }
    const int rank = hello->rank;
    const std::string host = hello->host;
    Machine& machine = machines_[rank];
    machine.link = std::move(link);
    machine.host = host;
    machine.last_heard = Clock::now();
    // A launcher replacing a lost one while the others still stop has no workers in this
    // attempt: it joins the next one.
    machine.ended = phase_ == Phase::kRunning || phase_ == Phase::kStopping;
    for (std::size_t i = 1; i < lines.size(); ++i) handle(rank, lines[i]);
  }

  std::string refusal_for(const Hello& hello) const {
    if (hello.run_id != spec_.run_id) return "it belongs to run " + hello.run_id + ", this is " + spec_.run_id;
    if (hello.machines != spec_.num_machines) {
      return "it says --num_machines " + std::to_string(hello.machines) + " but machine 0 says " +
             std::to_string(spec_.num_machines) + "; every machine needs the same value";
    }
    if (hello.processes != spec_.num_processes) {
      return "it runs " + std::to_string(hello.processes) + " worker(s) per machine but machine 0 runs " +
             std::to_string(spec_.num_processes) + "; every machine needs the same --num_processes and --num_machines";
    }
    if (hello.rank < 0 || hello.rank >= spec_.num_machines) {
      return "--machine_rank " + std::to_string(hello.rank) + " is outside 0.." + std::to_string(spec_.num_machines - 1);
    }
    if (machines_[hello.rank].link) {
      return "machine " + std::to_string(hello.rank) + " already joined from " + machines_[hello.rank].host +
             "; give every machine its own --machine_rank";
    }
    return "";
  }

  void handle(int rank, const std::string& line) {
    const auto w = words(line);
    if (w.empty() || w[0] == "beat") return;
    const auto attempt = w.size() >= 2 ? number(w[1]) : std::nullopt;
    if (!attempt || (*attempt != attempt_ && w[0] != "abort")) return;  // about an attempt already decided
    if (w[0] == "abort" && w.size() == 4) {
      // A launcher interrupted by a signal: the job stops everywhere and is not restarted.
      no_restart_ = true;
      if (phase_ == Phase::kRunning) return stop_all(rank, number(w[2]).value_or(1), from(rank, decode(w[3])));
      if (phase_ == Phase::kJoining) return finish(number(w[2]).value_or(1), from(rank, decode(w[3])));
    } else if (w[0] == "failed" && w.size() == 4) {
      if (phase_ != Phase::kRunning) return;  // the first failure is the root cause
      stop_all(rank, number(w[2]).value_or(1), from(rank, decode(w[3])));
    } else if (w[0] == "ended" && w.size() == 4) {
      // The root cause's machine sends its full account (error file, last stderr lines) once
      // its workers are down; it replaces the first line sent at the moment of failure.
      if (rank == root_machine_ && w[2] == "failed" && w[3] != "%") root_summary_ = from(rank, decode(w[3]));
      machines_[rank].ended = true;
      check_attempt_over();
    }
  }

  std::string from(int rank, const std::string& summary) const {
    return "machine " + std::to_string(rank) + " (" + machines_[rank].host + "): " + summary;
  }

  void lose(int rank, const std::string& why) {
    Machine& machine = machines_[rank];
    machine.link.reset();
    if (phase_ == Phase::kDone) return;
    const std::string what = "machine " + std::to_string(rank) + " (" + machine.host + ") was lost: " + why;
    say(what);
    if (phase_ == Phase::kRunning) stop_all(rank, 1, what);
    if (phase_ == Phase::kStopping) check_attempt_over();
  }

  // The root cause happened on machine `rank`.
  void stop_all(int rank, int exit_code, const std::string& summary) {
    phase_ = Phase::kStopping;
    root_machine_ = rank;
    root_exit_code_ = exit_code;
    root_summary_ = summary;
    for (auto& machine : machines_) {
      if (machine.link) machine.link->send("stop " + std::to_string(attempt_) + " " + encode(summary));
    }
    check_attempt_over();
  }

  void check_attempt_over() {
    const bool all_ended = std::all_of(machines_.begin(), machines_.end(), [this](const Machine& m) {
      return m.ended || (!m.link && phase_ == Phase::kStopping);
    });
    if (!all_ended) return;
    if (phase_ == Phase::kRunning) return finish(0, "");
    if (attempt_ >= spec_.max_restarts || no_restart_) return finish(root_exit_code_, root_summary_);
    ++attempt_;
    enter_joining();
  }

  void enter_joining() {
    phase_ = Phase::kJoining;
    phase_started_ = Clock::now();
    next_progress_ = phase_started_ + kFirstProgress;
    check_joining();
  }

  void check_joining() {
    std::vector<int> missing;
    for (int rank = 0; rank < spec_.num_machines; ++rank) {
      if (!machines_[rank].link) missing.push_back(rank);
    }
    if (missing.empty()) {
      phase_ = Phase::kRunning;
      for (auto& machine : machines_) {
        machine.ended = false;
        machine.link->send("start " + std::to_string(attempt_));
      }
      return;
    }
    const auto waited = seconds_since(phase_started_);
    const std::string where = spec_.master_addr + ":" + std::to_string(control_port(spec_));
    if (Clock::now() - phase_started_ >= std::chrono::duration<double>(spec_.join_timeout_s)) {
      return finish(1, "machine(s) " + list_machines(missing) + " of " + std::to_string(spec_.num_machines) +
                           " did not join at " + where + " within --join_timeout " + seconds_text(spec_.join_timeout_s) +
                           " s; start accel-launch there with --machine_rank and the same --main_process_ip, "
                           "--main_process_port and --num_machines");
    }
    if (Clock::now() >= next_progress_) {
      say("waiting for machine(s) " + list_machines(missing) + " of " + std::to_string(spec_.num_machines) +
          " to join at " + where + " (" + std::to_string(waited) + " s of --join_timeout " +
          seconds_text(spec_.join_timeout_s) + " s)");
      next_progress_ += kProgressEvery;
    }
  }

  static std::string seconds_text(double seconds) {
    std::ostringstream out;
    out << seconds;
    return out.str();
  }

  void finish(int exit_code, const std::string& summary) {
    phase_ = Phase::kDone;
    for (auto& machine : machines_) {
      if (machine.link) machine.link->send("finish " + std::to_string(exit_code) + " " + encode(summary));
    }
  }

  const LaunchSpec& spec_;
  Fd listener_;
  Wakeup wakeup_;
  std::vector<Connection> pending_;
  std::vector<Machine> machines_;
  Phase phase_ = Phase::kJoining;
  int attempt_ = 0;
  int root_machine_ = -1;
  bool no_restart_ = false;
  int root_exit_code_ = 1;
  std::string root_summary_;
  Clock::time_point phase_started_, next_progress_;
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Every machine: the connection to the coordinator, kept alive on its own thread.
class MachineLink::Agent {
 public:
  explicit Agent(const LaunchSpec& spec) : spec_(spec) {
    Pipe events = make_pipe();
    ::fcntl(events.read.get(), F_SETFL, O_NONBLOCK);
    events_read_ = std::move(events.read);
    events_write_ = std::move(events.write);
    thread_ = start_quiet_thread([this] { loop(); });
  }
  ~Agent() {
    quit_ = true;
    wakeup_.raise();
    thread_.join();
  }

  int fd() const { return events_read_.get(); }

  std::optional<JobEvent> next_event() {
    std::lock_guard lock(mutex_);
    char byte;
    (void)!::read(events_read_.get(), &byte, 1);
    if (events_.empty()) return std::nullopt;
    JobEvent event = events_.front();
    events_.pop_front();
    return event;
  }

  void send(const std::string& line) {
    std::lock_guard lock(mutex_);
    outbox_.push_back(line);
    wakeup_.raise();
  }

 private:
  void post(JobEvent event) {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = event.kind == JobEvent::kFinish;
    events_.push_back(std::move(event));
    (void)!::write(events_write_.get(), "e", 1);
  }

  void lost(const std::string& why) {
    post({JobEvent::kFinish, 0, 1,
          "lost contact with machine 0 at " + where() + ": " + why + "; every machine's workers are stopped"});
  }

  std::string where() const { return spec_.master_addr + ":" + std::to_string(control_port(spec_)); }

  // Connects, retrying until machine 0 listens or the join timeout passes.
  std::optional<Connection> connect_to_coordinator() {
    const auto start = Clock::now();
    auto next_progress = start + kFirstProgress;
    std::string last_error = "no answer";
    while (!quit_) {
      try {
        addrinfo* found = resolve_address(spec_.master_addr, control_port(spec_), false);
        Fd fd(::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        const int error = connect_within(fd.get(), found->ai_addr, found->ai_addrlen, 1000);
        ::freeaddrinfo(found);
        if (error == 0) {
          ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
          return Connection(std::move(fd));
        }
        last_error = std::strerror(error);
      } catch (const Error& error) {
        last_error = error.what();
      }
      if (Clock::now() - start >= std::chrono::duration<double>(spec_.join_timeout_s)) {
        post({JobEvent::kFinish, 0, 1,
              "machine 0 did not answer at " + where() + " within --join_timeout (" + last_error +
                  "); start accel-launch --machine_rank 0 there, with the same --main_process_port"});
        return std::nullopt;
      }
      if (Clock::now() >= next_progress) {
        say("machine " + std::to_string(spec_.machine_rank) + " waiting for machine 0 at " + where() + " (" +
            std::to_string(seconds_since(start)) + " s)");
        next_progress += kProgressEvery;
      }
      pollfd wake{wakeup_.fd(), POLLIN, 0};
      ::poll(&wake, 1, 200);
    }
    return std::nullopt;
  }

  void loop() {
    auto link = connect_to_coordinator();
    if (!link) return;
    link->send("hello " + std::to_string(spec_.machine_rank) + " " + std::to_string(spec_.num_machines) + " " +
               std::to_string(spec_.num_processes) + " " + spec_.run_id + " " + encode(spec_.host));
    auto last_heard = Clock::now();
    auto next_beat = Clock::now() + kHeartbeatInterval;
    while (true) {
      pollfd fds[2] = {{wakeup_.fd(), POLLIN, 0}, {link->fd(), POLLIN, 0}};
      ::poll(fds, 2, static_cast<int>(kPollStep.count()));
      wakeup_.clear();
      // Read before sending: what the supervisor queued before leaving (an abort) still goes out.
      const bool leaving = quit_;
      std::deque<std::string> outgoing;
      {
        std::lock_guard lock(mutex_);
        outgoing.swap(outbox_);
      }
      for (const auto& line : outgoing) link->send(line);
      if (leaving) return;
      if (Clock::now() >= next_beat) {
        link->send("beat");
        next_beat = Clock::now() + kHeartbeatInterval;
      }
      if (fds[1].revents) {
        std::vector<std::string> lines;
        const bool open = link->receive(lines);
        last_heard = Clock::now();
        for (const auto& line : lines) handle(line);
        if (finished()) return;  // the job is over; closing tells machine 0 we heard it
        if (!open) return lost("the connection closed (its launcher ended or the network failed)");
      }
      if (Clock::now() - last_heard > kHeartbeatTimeout) {
        return lost("no heartbeat for " + std::to_string(kHeartbeatTimeout.count() / 1000) + " s");
      }
    }
  }

  bool finished() {
    std::lock_guard lock(mutex_);
    return finished_;
  }

  void handle(const std::string& line) {
    const auto w = words(line);
    if (w.empty() || w[0] == "beat") return;
    const auto value = w.size() >= 2 ? number(w[1]) : std::nullopt;
    if (!value) return;
    if (w[0] == "start") post({JobEvent::kStart, *value, 0, ""});
    if (w[0] == "stop" && w.size() == 3) post({JobEvent::kStop, *value, 0, decode(w[2])});
    if (w[0] == "finish" && w.size() == 3) post({JobEvent::kFinish, 0, *value, decode(w[2])});
  }

  const LaunchSpec& spec_;
  Wakeup wakeup_;
  Fd events_read_, events_write_;
  std::mutex mutex_;
  std::deque<JobEvent> events_;
  std::deque<std::string> outbox_;
  bool finished_ = false;
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

MachineLink::MachineLink(const LaunchSpec& spec) {
  if (spec.machine_rank == 0) coordinator_ = std::make_unique<Coordinator>(spec);
  agent_ = std::make_unique<Agent>(spec);
}

// The agent goes first: its closed connection is how machine 0 learns that this launcher ended.
MachineLink::~MachineLink() {
  agent_.reset();
  coordinator_.reset();
}

int MachineLink::fd() const { return agent_->fd(); }

std::optional<JobEvent> MachineLink::next_event() { return agent_->next_event(); }

void MachineLink::report_failure(int attempt, int exit_code, const std::string& summary) {
  agent_->send("failed " + std::to_string(attempt) + " " + std::to_string(exit_code) + " " + encode(summary));
}

void MachineLink::report_interrupted(int attempt, int exit_code, const std::string& summary) {
  agent_->send("abort " + std::to_string(attempt) + " " + std::to_string(exit_code) + " " + encode(summary));
}

void MachineLink::report_ended(int attempt, bool ok, const std::string& failure) {
  agent_->send("ended " + std::to_string(attempt) + (ok ? " ok " : " failed ") + encode(failure));
}

}  // namespace accel::launch
