#pragma once
// Rendezvous: how the ranks of a job find each other through rank 0's TCPStore, and the progress
// markers the runtime leaves there so that a failure can name the ranks that did not show up.
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace accel::runtime {

struct RendezvousOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // Non-zero ranks poll rank 0's port until it accepts before creating their store client: the
  // c10d client sleeps about a second after a refused first connect, which dominated group
  // formation. false keeps c10d's own behaviour (the benchmark's baseline).
  bool poll_before_connect = true;
  // torchrun's agent hosts the store itself (TORCHELASTIC_USE_AGENT_STORE): every rank is a
  // client, and keys are kept per restart `attempt` because that store outlives restarts.
  bool launcher_hosts_store = false;
  int attempt = 0;
};

// Forms the process group over the store; blocks until every rank has joined, throws on timeout.
using FormGroup = std::function<void(const c10::intrusive_ptr<::c10d::Store>&)>;

// Connects to (rank 0: hosts) the job's TCPStore, records this rank as joined and runs `form`.
// Throws accel::PeerError naming the ranks that did not arrive within the timeout, or rank 0's
// address when it cannot be reached; accel::Error when rank 0 cannot listen.
c10::intrusive_ptr<::c10d::Store> rendezvous(const RendezvousOptions& options, const FormGroup& form);

// Ends this rank's use of the job's TCPStore. c10d's client thread dies with std::terminate (or
// spins) when the store's host goes away first, so the host (rank 0) waits, at most `grace`,
// until every rank in `clients` has said it is leaving; the other ranks just say so.
void leave_store(::c10d::Store& store, int rank, bool hosts, const std::vector<int>& clients,
                 std::chrono::milliseconds grace);

// Records under the store that `rank` has entered operation number `seq` called `op`
// (seq 0 is joining the group).
void record_progress(::c10d::Store& store, int rank, std::uint64_t seq, const std::string& op);

// The ranks that have not entered operation `seq`, each described for an error message, e.g.
// "rank 2 (last seen in #3 broadcast)" or "rank 5 (never joined)". Reads without blocking.
std::vector<std::string> ranks_behind(::c10d::Store& store, int world_size, std::uint64_t seq);

// The message of a failure from c10d or Gloo, without c10's C++ backtrace.
std::string failure_reason(const std::exception& e);

// The local address this machine uses to reach host:port (no packet is sent), so that a rank's
// Gloo transport listens on an interface its peers can reach.
std::string local_address_towards(const std::string& host, int port);

}  // namespace accel::runtime
