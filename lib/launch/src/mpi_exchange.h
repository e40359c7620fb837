#pragma once
// Where machine 0 is under mpirun, learned from the process-management service the MPI runtime
// already gives every rank: PMIx (Open MPI 4/5, srun --mpi=pmix), loaded with dlopen, or the
// PMI-1 wire protocol on an inherited descriptor (MPICH's and Intel MPI's Hydra). No MPI
// library is linked and no shared file system is needed. docs/multi-machine.md describes the
// exchange and how machine 0's address is chosen.
#include <chrono>
#include <string>

#include "accel/core/env_contract.h"

namespace accel::launch {

// The library loaded for PMIx unless ACCEL_PMIX_LIBRARY names another (a path or a soname).
inline constexpr const char* kDefaultPmixLibrary = "libpmix.so.2";
inline constexpr const char* kPmixLibraryVariable = "ACCEL_PMIX_LIBRARY";

// The few calls of a process-management key-value service that the exchange needs. Values are
// published per rank; the ranks of one job all take part in every fence.
class KeyValueService {
 public:
  virtual ~KeyValueService() = default;
  virtual int rank() const = 0;
  // Publishes `value` under `key` for this rank.
  virtual void put(const std::string& key, const std::string& value) = 0;
  // Returns once every rank has called it; what any rank put before is visible to all after.
  virtual void fence() = 0;
  virtual std::string get(int rank, const std::string& key) = 0;
};

// Agrees on machine 0's address in two fences: rank 1 publishes its host's primary address;
// rank 0 takes the address of its own interface that routes to it and publishes that; every
// rank reads it back. Throws accel::Error when the service fails.
std::string agree_on_main_address(KeyValueService& service);

// This host's primary address: the source address of its default route (IPv4, else IPv6),
// else its first non-loopback interface address, else 127.0.0.1 (then only launchers on this
// host can reach it).
std::string primary_address();

// The address of this host's interface that the kernel would use to reach `peer` (numeric);
// `peer` itself is returned for a peer on this host. Empty when no route leads there.
std::string source_address_toward(const std::string& peer);

// PMI-1 (the "simple" wire protocol of MPICH's Hydra) on the descriptor Hydra passes in PMI_FD:
// text lines `cmd=init ...`, `cmd=get_maxes`, `cmd=get_my_kvsname`, `cmd=put ...`,
// `cmd=barrier_in`, `cmd=get ...`, `cmd=finalize`, each answered by one line. Every answer must
// arrive before `deadline`. Does not own the descriptor.
class Pmi1Client : public KeyValueService {
 public:
  // Sends init, get_maxes and get_my_kvsname.
  Pmi1Client(int fd, int rank, std::chrono::steady_clock::time_point deadline);
  // Sends finalize (Hydra counts a rank that initialised and never finalised as failed).
  ~Pmi1Client() override;
  Pmi1Client(const Pmi1Client&) = delete;
  Pmi1Client& operator=(const Pmi1Client&) = delete;

  int rank() const override { return rank_; }
  void put(const std::string& key, const std::string& value) override;
  void fence() override;
  std::string get(int rank, const std::string& key) override;

 private:
  std::string request(const std::string& command, const std::string& expected_reply);

  int fd_;
  int rank_;
  std::chrono::steady_clock::time_point deadline_;
  std::string pending_;  // bytes read past the last answer's newline
  std::string kvs_name_;
  std::size_t max_key_ = 0;
  std::size_t max_value_ = 0;
};

// agree_on_main_address through PMIx, loading `library` (see kDefaultPmixLibrary). Runs in a
// child process: PMIx_Fence has no portable timeout, and a child can be killed at `timeout`;
// the library's threads, sockets and signal handlers also stay out of the launcher, which forks
// the workers later. Returns the address; throws like exchange_main_address, without the
// fallback.
std::string exchange_through_pmix(const std::string& library, std::chrono::milliseconds timeout);

struct MainAddressFromMpi {
  std::string address;
  std::string service;  // "PMIx" or "PMI-1"
};

// Machine 0's address as every launcher of this mpirun job agrees on it: through PMIx when
// PMIX_NAMESPACE is set, else PMI-1 when PMI_FD is set. Every launcher of the job must call it.
// Waits at most `timeout` for the others. Throws accel::UsageError when neither service is
// there or the PMIx library cannot be loaded, accel::Error when a step fails or times out; both
// name the step and the fallback (mpirun -x MASTER_ADDR=...).
MainAddressFromMpi exchange_main_address(const env::Lookup& lookup, std::chrono::milliseconds timeout);

}  // namespace accel::launch
