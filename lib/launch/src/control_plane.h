#pragma once
// The launchers of a multi-machine job acting as one: machine 0's launcher hosts a small
// coordinator (a thread listening on main_process_port + 1); every launcher, machine 0's
// included, joins it over TCP. The coordinator starts each attempt once every machine has
// joined, tells every machine to stop when one reports a failure or goes silent, and decides for
// the whole job whether to restart (all machines together, one restart count) or to finish.
//
// Bounds (docs/multi-machine.md): a launcher that dies is noticed when its connection closes
// (at once); one that stops answering (network gone, host frozen) after kHeartbeatTimeout of
// silence, heartbeats being sent every kHeartbeatInterval.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "accel/launch/resolve.h"

namespace accel::launch {

inline constexpr std::chrono::milliseconds kHeartbeatInterval{1000};
inline constexpr std::chrono::milliseconds kHeartbeatTimeout{5000};

// The coordinator's port: the rendezvous port + 1 (the workers' store holds the rendezvous port).
int control_port(const LaunchSpec& spec);

// What the job tells this launcher.
struct JobEvent {
  enum Kind {
    kStart,   // start the workers of `attempt` (TORCHELASTIC_RESTART_COUNT = attempt)
    kStop,    // another machine failed: stop this attempt's workers; `summary` says why
    kFinish,  // the job is over: exit with `exit_code`; `summary` is the failure (empty on success)
  };
  Kind kind = kFinish;
  int attempt = 0;
  int exit_code = 0;
  std::string summary;
};

// This launcher's membership in the job. Its network work runs on a thread of its own, so
// heartbeats flow whatever the supervisor is doing; the supervisor only polls fd() and calls
// next_event(), and reports what happens to its workers.
class MachineLink {
 public:
  // On machine 0, binds the coordinator first (throws accel::Error naming the address and port
  // when it cannot). Then joins in the background: the first event is kStart, or kFinish when
  // the job cannot form (machines missing after the join timeout, machine 0 unreachable).
  explicit MachineLink(const LaunchSpec& spec);
  ~MachineLink();
  MachineLink(const MachineLink&) = delete;
  MachineLink& operator=(const MachineLink&) = delete;

  int fd() const;                      // readable while an event is queued
  std::optional<JobEvent> next_event();  // never blocks

  // A worker of `attempt` failed here: `summary` is printed on machine 0.
  void report_failure(int attempt, int exit_code, const std::string& summary);
  // This launcher was interrupted by a signal and leaves: the job ends everywhere, no restart.
  void report_interrupted(int attempt, int exit_code, const std::string& summary);
  // Every worker of `attempt` here has exited (ok: all with status 0); `failure` is the full
  // account of a failure here (empty when none), which replaces report_failure's first word.
  void report_ended(int attempt, bool ok, const std::string& failure);

  class Coordinator;
  class Agent;

 private:
  std::unique_ptr<Coordinator> coordinator_;  // machine 0 only
  std::unique_ptr<Agent> agent_;
};

}  // namespace accel::launch
