#include "accel/runtime/rendezvous.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cerrno>
#include <cstring>
#include <thread>

#include "accel/core/error.h"
#include "accel/core/text.h"

namespace accel::runtime {
namespace {

using Clock = std::chrono::steady_clock;

std::string progress_key(int rank) { return "accel/at/" + std::to_string(rank); }
std::string leaving_key(int rank) { return "accel/left/" + std::to_string(rank); }
std::string formed_key(int rank) { return "accel/formed/" + std::to_string(rank); }

std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

struct AddrInfo {
  addrinfo* list = nullptr;
  AddrInfo(const std::string& host, int port, int socktype) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
    if (rc != 0) {
      throw UsageError("cannot resolve the rendezvous host MASTER_ADDR='" + host + "': " + ::gai_strerror(rc));
    }
  }
  ~AddrInfo() { ::freeaddrinfo(list); }
  AddrInfo(const AddrInfo&) = delete;
  AddrInfo& operator=(const AddrInfo&) = delete;
};

// One non-blocking connect attempt bounded by `budget`: an unreachable host must not stall us
// for the kernel's SYN retry period.
bool try_connect(const addrinfo& ai, std::chrono::milliseconds budget) {
  const int fd = ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return false;
  bool ok = ::connect(fd, ai.ai_addr, ai.ai_addrlen) == 0;
  if (!ok && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(budget.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  ::close(fd);
  return ok;
}

void wait_until_listening(const RendezvousOptions& o) {
  const AddrInfo addrs(o.master_addr, o.master_port, SOCK_STREAM);
  const auto deadline = Clock::now() + o.timeout;
  for (;;) {
    for (const addrinfo* ai = addrs.list; ai != nullptr; ai = ai->ai_next) {
      if (try_connect(*ai, std::chrono::milliseconds(500))) return;
    }
    if (Clock::now() >= deadline) {
      throw PeerError("rank " + std::to_string(o.rank) + " could not reach rank 0's rendezvous store at " +
                      o.master_addr + ":" + std::to_string(o.master_port) + " within " + seconds_text(o.timeout) +
                      "; rank 0 never started or died, or MASTER_ADDR/MASTER_PORT differ between ranks");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

c10::intrusive_ptr<::c10d::Store> open_store(const RendezvousOptions& o) {
  ::c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(o.master_port);
  store_options.isServer = o.rank == 0 && !o.launcher_hosts_store;
  store_options.numWorkers = o.world_size;
  store_options.waitWorkers = false;  // we wait ourselves, so that the error can name who is missing
  store_options.timeout = o.timeout;
  if (!store_options.isServer && o.poll_before_connect) wait_until_listening(o);
  try {
    return c10::make_intrusive<::c10d::TCPStore>(o.master_addr, store_options);
  } catch (const std::exception& e) {
    if (store_options.isServer) {
      throw Error("rank 0 could not host the rendezvous store on port " + std::to_string(o.master_port) + " (" +
                  failure_reason(e) +
                  "); another job may hold it: choose another with --main_process_port or MASTER_PORT");
    }
    throw PeerError("rank " + std::to_string(o.rank) + " could not connect to the rendezvous store at " +
                    o.master_addr + ":" + std::to_string(o.master_port) + " within " + seconds_text(o.timeout) + ": " +
                    failure_reason(e));
  }
}

// Gloo's group constructor returns on a rank as soon as its own connections are up, while a
// peer may still be completing its side: a rank that left right then broke the peer's group
// formation. Every rank therefore waits here until every rank has formed the group.
void wait_until_formed_everywhere(::c10d::Store& store, const RendezvousOptions& o) {
  store.set(formed_key(o.rank), {1});
  std::vector<std::string> keys;
  for (int r = 0; r < o.world_size; ++r) keys.push_back(formed_key(r));
  try {
    store.wait(keys, o.timeout);
  } catch (const std::exception& e) {
    std::vector<std::string> missing;
    try {
      for (int r = 0; r < o.world_size; ++r) {
        if (!store.check({formed_key(r)})) missing.push_back(std::to_string(r));
      }
    } catch (const std::exception&) {
      throw PeerError("rank " + std::to_string(o.rank) +
                      " lost rank 0's rendezvous store while the group was being formed (rank 0 probably died): " +
                      failure_reason(e));
    }
    throw PeerError("rank(s) " + text::join(missing, ", ") + " of " + std::to_string(o.world_size) +
                    " joined the rendezvous but did not finish forming the process group within " +
                    seconds_text(o.timeout) + " (died or stuck while connecting): " + failure_reason(e));
  }
}

}  // namespace

void leave_store(::c10d::Store& store, int rank, bool hosts, const std::vector<int>& clients,
                 std::chrono::milliseconds grace) {
  if (!hosts) {
    store.set(leaving_key(rank), std::vector<std::uint8_t>{1});  // LibTorch 2 adds a string overload
    return;
  }
  const auto deadline = Clock::now() + grace;
  for (int r : clients) {
    if (r == rank) continue;
    while (!store.check({leaving_key(r)}) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

void record_progress(::c10d::Store& store, int rank, std::uint64_t seq, const std::string& op) {
  const std::string value = std::to_string(seq) + " " + op;
  store.set(progress_key(rank), std::vector<std::uint8_t>(value.begin(), value.end()));
}

std::vector<std::string> ranks_behind(::c10d::Store& store, int world_size, std::uint64_t seq) {
  std::vector<std::string> behind;
  for (int r = 0; r < world_size; ++r) {
    const std::string key = progress_key(r);
    if (!store.check({key})) {
      behind.push_back("rank " + std::to_string(r) + " (never joined)");
      continue;
    }
    const auto raw = store.get(key);
    const std::string value(raw.begin(), raw.end());
    const auto space = value.find(' ');
    const auto reached = text::parse_integer(value.substr(0, space));
    if (reached && static_cast<std::uint64_t>(*reached) >= seq) continue;
    behind.push_back("rank " + std::to_string(r) + " (last seen in #" + value.substr(0, space) + " " +
                     (space == std::string::npos ? std::string("?") : value.substr(space + 1)) + ")");
  }
  return behind;
}

std::string failure_reason(const std::exception& e) {
  // c10's messages carry a C++ backtrace that would bury the reason.
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

c10::intrusive_ptr<::c10d::Store> rendezvous(const RendezvousOptions& o, const FormGroup& form) {
  c10::intrusive_ptr<::c10d::Store> store = open_store(o);
  // A launcher's store outlives restarts of the job: each attempt keeps its keys apart.
  if (o.launcher_hosts_store) {
    store = c10::make_intrusive<::c10d::PrefixStore>("accel/attempt" + std::to_string(o.attempt), store);
  }
  record_progress(*store, o.rank, 0, "join");
  // No separate wait for the others: forming the group waits for them anyway, and a failure is
  // explained afterwards from the join markers. One synchronisation round less on the fast path.
  const auto begin = Clock::now();
  try {
    form(store);
  } catch (const std::exception& e) {
    // Only a failure that took the whole timeout is about ranks that never came; anything
    // sooner is this rank's own problem, reported as such.
    const bool timed_out = Clock::now() - begin >= o.timeout * 9 / 10;
    std::vector<std::string> missing;
    std::vector<int> present;
    for (int r = 0; r < o.world_size; ++r) {
      if (store->check({progress_key(r)})) {
        present.push_back(r);
      } else {
        missing.push_back(std::to_string(r));
      }
    }
    leave_store(*store, o.rank, o.rank == 0 && !o.launcher_hosts_store, present, std::chrono::seconds(5));
    if (dynamic_cast<const Error*>(&e) != nullptr) throw;  // already says what is wrong
    if (missing.empty() || !timed_out) {
      throw PeerError("rank " + std::to_string(o.rank) + " could not connect to its peers: " + failure_reason(e));
    }
    throw PeerError("rank(s) " + text::join(missing, ", ") + " of " + std::to_string(o.world_size) +
                    " did not join the rendezvous at " + o.master_addr + ":" + std::to_string(o.master_port) +
                    " within " + seconds_text(o.timeout) +
                    " (set ACCEL_TIMEOUT_S to wait longer); check that every rank was started with the same "
                    "WORLD_SIZE and MASTER_PORT");
  }
  wait_until_formed_everywhere(*store, o);
  return store;
}

std::string local_address_towards(const std::string& host, int port) {
  const AddrInfo addrs(host, port, SOCK_DGRAM);
  for (const addrinfo* ai = addrs.list; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    // connect() on a datagram socket only picks the route and source address.
    const bool ok = ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0;
    ::close(fd);
    if (!ok) continue;
    char text_addr[INET6_ADDRSTRLEN] = {};
    const void* raw = local.ss_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
    if (::inet_ntop(local.ss_family, raw, text_addr, sizeof text_addr) != nullptr) return text_addr;
  }
  throw Error("no network route from this machine to MASTER_ADDR=" + host +
              "; set GLOO_SOCKET_IFNAME to the interface the ranks should use");
}

}  // namespace accel::runtime
