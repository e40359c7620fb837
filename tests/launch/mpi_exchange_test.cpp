// Machine 0's address exchanged through the MPI runtime: PMI-1 against a fake Hydra server
// (MPICH is not installed here), the address choice, and the failures of every path. The real
// PMIx path runs under Open MPI's mpirun in cli_test.cpp ("launch multi:").
#include "mpi_exchange.h"

#include <catch2/catch.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "support/fake_env.h"

using namespace accel;
using namespace accel::launch;
using namespace std::chrono_literals;

namespace {

// What a fake server does with one request line of one client; `reply` answers it.
enum class Misbehaviour { kNone, kRefusePut, kCloseAtBarrier, kSilentAtBarrier };

// A PMI-1 server as Hydra's proxy serves it, on one socketpair per rank, in a thread of its own:
// a key-value space shared by all ranks and a barrier that answers once every rank entered it.
class FakeHydra {
 public:
  FakeHydra(int ranks, Misbehaviour misbehaviour) : misbehaviour_(misbehaviour) {
    for (int rank = 0; rank < ranks; ++rank) {
      int pair[2];
      REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
      clients_.push_back({pair[0], ""});
      client_ends_.push_back(pair[1]);
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeHydra() { finish(); }

  int client_fd(int rank) const { return client_ends_[static_cast<std::size_t>(rank)]; }

  // Ends the server (it sees end of input from every rank) and returns every request line it
  // received, "rank: line", in arrival order.
  std::vector<std::string> finish() {
    if (thread_.joinable()) {
      for (int fd : client_ends_) ::close(fd);
      thread_.join();
      for (auto& client : clients_) ::close(client.fd);
    }
    return log_;
  }

 private:
  struct Client {
    int fd;
    std::string pending;
    bool open = true;
  };

  void serve() {
    while (std::any_of(clients_.begin(), clients_.end(), [](const Client& c) { return c.open; })) {
      std::vector<pollfd> fds;
      for (const auto& client : clients_) fds.push_back({client.open ? client.fd : -1, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) <= 0) continue;
      for (std::size_t rank = 0; rank < clients_.size(); ++rank) {
        if (fds[rank].revents) receive(static_cast<int>(rank));
      }
    }
  }

  void receive(int rank) {
    Client& client = clients_[static_cast<std::size_t>(rank)];
    char buffer[256];
    const ssize_t n = ::read(client.fd, buffer, sizeof buffer);
    if (n <= 0) {
      client.open = false;
      return;
    }
    client.pending.append(buffer, static_cast<std::size_t>(n));
    for (auto newline = client.pending.find('\n'); newline != std::string::npos; newline = client.pending.find('\n')) {
      const std::string line = client.pending.substr(0, newline);
      client.pending.erase(0, newline + 1);
      log_.push_back(std::to_string(rank) + ": " + line);
      answer(rank, line);
    }
  }

  void reply(int rank, const std::string& line) {
    const std::string text = line + "\n";
    // A rank may have hung up already (the failure cases): no SIGPIPE for the test.
    (void)!::send(clients_[static_cast<std::size_t>(rank)].fd, text.data(), text.size(), MSG_NOSIGNAL);
  }

  std::string field(const std::string& line, const std::string& name) {
    for (const auto& word : text::split(line, ' ')) {
      if (word.rfind(name + "=", 0) == 0) return word.substr(name.size() + 1);
    }
    return "";
  }

  void answer(int rank, const std::string& line) {
    const std::string cmd = field(line, "cmd");
    if (cmd == "init") return reply(rank, "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0");
    if (cmd == "get_maxes") return reply(rank, "cmd=maxes rc=0 kvsname_max=256 keylen_max=64 vallen_max=1024");
    if (cmd == "get_my_kvsname") return reply(rank, "cmd=my_kvsname rc=0 kvsname=kvs_4711_0");
    if (cmd == "put" && misbehaviour_ == Misbehaviour::kRefusePut) {
      return reply(rank, "cmd=put_result rc=-1 msg=duplicate_key");
    }
    if (cmd == "put") {
      kvs_[field(line, "key")] = field(line, "value");
      return reply(rank, "cmd=put_result rc=0 msg=success");
    }
    if (cmd == "get") {
      const auto found = kvs_.find(field(line, "key"));
      if (found == kvs_.end()) return reply(rank, "cmd=get_result rc=-1 msg=key_not_found");
      return reply(rank, "cmd=get_result rc=0 msg=success value=" + found->second);
    }
    if (cmd == "barrier_in") return enter_barrier(rank);
    if (cmd == "finalize") return reply(rank, "cmd=finalize_ack");
  }

  void enter_barrier(int rank) {
    if (misbehaviour_ == Misbehaviour::kSilentAtBarrier) return;
    if (misbehaviour_ == Misbehaviour::kCloseAtBarrier) {
      ::shutdown(clients_[static_cast<std::size_t>(rank)].fd, SHUT_RDWR);
      return;
    }
    in_barrier_.insert(rank);
    if (in_barrier_.size() < clients_.size()) return;
    for (int waiting : in_barrier_) reply(waiting, "cmd=barrier_out");
    in_barrier_.clear();
  }

  Misbehaviour misbehaviour_;
  std::vector<Client> clients_;
  std::vector<int> client_ends_;
  std::map<std::string, std::string> kvs_;
  std::set<int> in_barrier_;
  std::vector<std::string> log_;
  std::thread thread_;
};

env::Lookup pmi1_rank(const FakeHydra& hydra, int rank) {
  return test::fake_env({{"PMI_FD", std::to_string(hydra.client_fd(rank))}, {"PMI_RANK", std::to_string(rank)}, {"PMI_SIZE", "3"}});
}

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("mpi exchange: three launchers agree on machine 0's address through PMI-1") {
  std::vector<MainAddressFromMpi> found(3);
  std::vector<std::string> log;
  {
    FakeHydra hydra(3, Misbehaviour::kNone);
    std::vector<std::future<MainAddressFromMpi>> ranks;
    for (int rank = 0; rank < 3; ++rank) {
      ranks.push_back(std::async(std::launch::async, [&hydra, rank] {
        return exchange_main_address(pmi1_rank(hydra, rank), 60s);
      }));
    }
    for (int rank = 0; rank < 3; ++rank) found[static_cast<std::size_t>(rank)] = ranks[static_cast<std::size_t>(rank)].get();
    log = hydra.finish();
  }
  // On one host rank 0's interface toward rank 1 is the host's primary address itself.
  const std::string expected = primary_address();
  for (const auto& answer : found) {
    CHECK(answer.address == expected);
    CHECK(answer.service == "PMI-1");
  }
  const auto has = [&log](const std::string& line) { return std::find(log.begin(), log.end(), line) != log.end(); };
  for (const char* rank : {"0", "1", "2"}) {
    CHECK(has(std::string(rank) + ": cmd=init pmi_version=1 pmi_subversion=1"));
    CHECK(has(std::string(rank) + ": cmd=get kvsname=kvs_4711_0 key=accel-launch-main-address-0"));
    CHECK(has(std::string(rank) + ": cmd=finalize"));
  }
  CHECK(has("1: cmd=put kvsname=kvs_4711_0 key=accel-launch-peer-address-1 value=" + expected));
  CHECK(has("0: cmd=get kvsname=kvs_4711_0 key=accel-launch-peer-address-1"));
  CHECK(has("0: cmd=put kvsname=kvs_4711_0 key=accel-launch-main-address-0 value=" + expected));
  CHECK(std::count_if(log.begin(), log.end(), [](const std::string& line) {
          return line.find("cmd=put") != std::string::npos;
        }) == 2);  // only rank 1's address and rank 0's choice travel
}

TEST_CASE("mpi exchange: a PMI-1 server that refuses, hangs up or stays silent is named, with the fallback") {
  const auto failure = [](Misbehaviour misbehaviour, std::chrono::milliseconds timeout) {
    FakeHydra hydra(2, misbehaviour);
    // Rank 1 alone: it is the one that puts first, and nothing waits for rank 0.
    return error_of([&] { exchange_main_address(pmi1_rank(hydra, 1), timeout); });
  };
  const std::string prefix = "cannot learn machine 0's address from mpirun through PMI-1: ";
  const std::string fallback = "; or give every launcher machine 0's address: mpirun -x MASTER_ADDR=<address of the first host> ...";
  CHECK(failure(Misbehaviour::kRefusePut, 60s) ==
        prefix + "the PMI server refused cmd=put kvsname=kvs_4711_0 key=accel-launch-peer-address-1 value=" +
            primary_address() + " (rc=-1, duplicate_key)" + fallback);
  CHECK(failure(Misbehaviour::kCloseAtBarrier, 60s) ==
        prefix + "the PMI server closed PMI_FD before answering cmd=barrier_in" + fallback);
  CHECK(failure(Misbehaviour::kSilentAtBarrier, 300ms) ==
        prefix + "no answer to cmd=barrier_in before --join_timeout ran out: a launcher of this mpirun job never "
                 "reached the exchange" + fallback);

  CHECK(error_of([] { exchange_main_address(test::fake_env({{"PMI_FD", "x"}, {"PMI_RANK", "0"}}), 1s); }) ==
        prefix + "PMI_FD='x' and PMI_RANK='0' are not a descriptor and a rank" + fallback);
}

TEST_CASE("mpi exchange: no PMIx library, or no service at all, is a usage error naming what is missing") {
  const std::string fallback = "; or give every launcher machine 0's address: mpirun -x MASTER_ADDR=<address of the first host> ...";
  try {
    exchange_main_address(test::fake_env({{"PMIX_NAMESPACE", "1616838657"}, {kPmixLibraryVariable, "libaccel-absent-pmix.so.2"}}), 60s);
    FAIL("no error");
  } catch (const UsageError& error) {
    const std::string message = error.what();
    CHECK_THAT(message, Catch::StartsWith("cannot learn machine 0's address from mpirun through PMIx: cannot load the "
                                          "PMIx library libaccel-absent-pmix.so.2 (libaccel-absent-pmix.so.2: "));
    CHECK_THAT(message, Catch::EndsWith("): install Open MPI's PMIx library (Debian: libpmix2) or name it with "
                                        "ACCEL_PMIX_LIBRARY" + fallback));
  }
  try {
    exchange_main_address(test::fake_env({{"OMPI_COMM_WORLD_RANK", "0"}}), 60s);
    FAIL("no error");
  } catch (const UsageError& error) {
    CHECK(std::string(error.what()) ==
          "cannot learn machine 0's address from mpirun: it gave this launcher neither a PMIx server (PMIX_NAMESPACE) "
          "nor a PMI-1 descriptor (PMI_FD)" + fallback);
  }
}

TEST_CASE("mpi exchange: the address toward a peer is the local end of the route to it") {
  CHECK(source_address_toward("127.0.0.1") == "127.0.0.1");
  CHECK(source_address_toward("127.0.0.5") == "127.0.0.1");
  CHECK(source_address_toward("gpu-a07").empty());  // names are not resolved: ranks publish addresses
  const std::string primary = primary_address();
  CHECK_FALSE(primary.empty());
  CHECK(source_address_toward(primary) == primary);
}
