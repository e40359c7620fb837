#include "accel/runtime/partial_state.h"

#include <torch/cuda.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

#include <net/if.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>

#include "accel/core/text.h"

#include "accel/runtime/group.h"
#include "accel/runtime/rendezvous.h"
#include "shared_state.h"

namespace accel {
namespace {

constexpr std::chrono::milliseconds kLeaveGraceAfterPeerFailure{300};

runtime::GlooTransport transport_for(const env::WorldInfo& world, const env::Lookup& lookup) {
  runtime::GlooTransport transport;
  if (auto ifname = lookup("GLOO_SOCKET_IFNAME"); ifname && !ifname->empty()) {
    if (::if_nametoindex(ifname->c_str()) == 0) {
      std::vector<std::string> names;
      if (auto* list = ::if_nameindex()) {
        for (auto* i = list; i->if_index != 0; ++i) names.emplace_back(i->if_name);
        ::if_freenameindex(list);
      }
      throw UsageError("environment variable GLOO_SOCKET_IFNAME='" + *ifname +
                       "' is not a network interface of this machine; it has: " + text::join(names, ", "));
    }
    transport.interface = *ifname;
  } else if (world.num_nodes > 1) {
    transport.hostname = runtime::local_address_towards(world.master_addr, world.master_port);
  }
  return transport;
}

// Our variable when it is set, else accelerate's spelling of it.
const char* either(const env::Lookup& lookup, const char* ours, const char* accelerates) {
  const auto value = lookup(ours);
  return value && !value->empty() ? ours : accelerates;
}

bool read_either_flag(const env::Lookup& lookup, const char* ours, const char* accelerates) {
  return env::read_flag(lookup, either(lookup, ours, accelerates), false);
}

MixedPrecision checked_mixed_precision(const std::string& value, const std::string& source) {
  auto lowered = text::trim(value);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lowered.empty()) return MixedPrecision::kNo;
  const auto precision = parse_mixed_precision(lowered);
  if (precision && *precision != MixedPrecision::kFp8) return *precision;
  throw UsageError(source + "='" + value + "' is not a mixed precision this runtime supports; accepted: " +
                   accepted_mixed_precisions(false));
}

MixedPrecision read_mixed_precision(const env::Lookup& lookup, const PartialStateOptions& options) {
  if (options.mixed_precision) return checked_mixed_precision(*options.mixed_precision, "PartialStateOptions::mixed_precision");
  const char* name = either(lookup, env::kMixedPrecision, env::kAccelerateMixedPrecision);
  const auto value = lookup(name);
  return value ? checked_mixed_precision(*value, "environment variable " + std::string(name)) : MixedPrecision::kNo;
}

std::shared_ptr<detail::SharedState> form_state(const PartialStateOptions& options) {
  const env::Lookup lookup = options.lookup ? options.lookup : env::process_environment();
  auto state = std::make_shared<detail::SharedState>();
  state->world = env::detect_world(lookup);
  const auto timeout = options.timeout ? *options.timeout : env::read_timeout(lookup, kDefaultCollectiveTimeout);
  const bool cpu = options.cpu ? *options.cpu : read_either_flag(lookup, env::kUseCpu, env::kAccelerateUseCpu);
  state->mixed_precision = read_mixed_precision(lookup, options);
  state->debug = options.debug ? *options.debug : read_either_flag(lookup, env::kDebug, env::kAccelerateDebugMode);
  const bool cuda = !cpu && torch::cuda::is_available();
  const int gpu_count = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (cuda) {
    state->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(state->world.local_rank % gpu_count));
  }
  const auto& world = state->world;
  if (!world.distributed()) {
    state->group.timeout = timeout;
    return state;
  }

  runtime::RendezvousOptions rdzv;
  rdzv.master_addr = world.master_addr;
  rdzv.master_port = world.master_port;
  rdzv.rank = world.rank;
  rdzv.world_size = world.world_size;
  rdzv.timeout = timeout;
  rdzv.poll_before_connect = options.poll_before_connect;
  rdzv.launcher_hosts_store = world.launcher_hosts_store;
  rdzv.attempt = world.restart_count;
  const auto transport = transport_for(world, lookup);  // checked before any peer waits on us
  const auto store = runtime::rendezvous(rdzv, [&](const c10::intrusive_ptr<::c10d::Store>& joined) {
    // The default group's keys get a namespace of their own, so that groups formed later over
    // the same store (pipeline stages) cannot collide with them.
    auto group_store = c10::make_intrusive<::c10d::PrefixStore>("accel/pg/default", joined);
    if (runtime::nccl_suits(cuda, world.local_world_size, gpu_count)) {
      state->group = runtime::make_nccl_group(group_store, world.rank, world.world_size, timeout);
      state->backend = Backend::kNccl;
    } else {
      state->group = runtime::make_gloo_group(group_store, world.rank, world.world_size, timeout, transport);
      state->backend = Backend::kGloo;
    }
  });
  state->group.store = store;  // progress markers live un-prefixed, where rendezvous put them
  state->leave_store_on_exit = true;
  state->hosts_store = world.rank == 0 && !world.launcher_hosts_store;
  return state;
}

std::mutex& process_state_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::shared_ptr<detail::SharedState>& process_state() {
  static std::shared_ptr<detail::SharedState> state;
  return state;
}

void leave_at_exit() {
  std::lock_guard<std::mutex> lock(process_state_mutex());
  if (auto& shared = process_state()) {
    shared->leave();
    shared->group.group.reset();
  }
}

}  // namespace

void detail::SharedState::leave() {
  if (!leave_store_on_exit || !group.store) return;
  leave_store_on_exit = false;
  std::vector<int> ranks;
  for (int r = 0; r < world.world_size; ++r) ranks.push_back(r);
  try {
    // A peer that failed may be dead and never say it is leaving: wait for it only briefly.
    const auto grace = group.health->peer_failed ? std::min(group.timeout, kLeaveGraceAfterPeerFailure) : group.timeout;
    runtime::leave_store(*group.store, world.rank, hosts_store, ranks, grace);
  } catch (const std::exception&) {
    // The store is already gone (rank 0 died): nothing left to leave in order.
  }
}

PartialState::PartialState() : PartialState(PartialStateOptions{}) {}

PartialState::PartialState(const PartialStateOptions& options) {
  std::lock_guard<std::mutex> lock(process_state_mutex());
  auto& shared = process_state();
  if (!shared) {
    shared = form_state(options);
    // Leaves the store at exit, before static destruction begins: by then c10d's and Gloo's own
    // statics may be gone, and a destructor must not talk to the network.
    if (shared->leave_store_on_exit) std::atexit(leave_at_exit);
  }
  impl_ = shared;
}

PartialState PartialState::over_group(const runtime::GroupHandle& group, bool debug) {
  auto state = std::make_shared<detail::SharedState>();
  state->debug = debug;
  state->group = group;
  state->world.rank = state->world.local_rank = group.rank;
  state->world.world_size = state->world.local_world_size = group.world_size;
  state->world.master_addr = env::kDefaultMasterAddr;
  state->world.launcher = "threads";
  state->backend = group.group ? Backend::kGloo : Backend::kNone;
  return PartialState(std::move(state));
}

int PartialState::process_index() const { return impl_->world.rank; }
int PartialState::local_process_index() const { return impl_->world.local_rank; }
int PartialState::num_processes() const { return impl_->world.world_size; }
int PartialState::num_local_processes() const { return impl_->world.local_world_size; }
c10::Device PartialState::device() const { return impl_->device; }
Backend PartialState::backend() const { return impl_->backend; }
const env::WorldInfo& PartialState::world() const { return impl_->world; }
std::chrono::milliseconds PartialState::timeout() const { return impl_->group.timeout; }
const runtime::GroupHandle& PartialState::group() const { return impl_->group; }
MixedPrecision PartialState::mixed_precision() const { return impl_->mixed_precision; }
bool PartialState::debug() const { return impl_->debug; }

DistributedType PartialState::distributed_type() const {
  if (!distributed()) return DistributedType::kNo;
  return device().is_cuda() ? DistributedType::kMultiGpu : DistributedType::kMultiCpu;
}

const char* to_string(Backend backend) {
  static constexpr std::array<const char*, 3> kNames = {"none", "gloo", "nccl"};  // in the enum's order
  return kNames.at(static_cast<std::size_t>(backend));
}

c10::ScalarType PartialState::compute_dtype() const {
  if (mixed_precision() == MixedPrecision::kBf16) return c10::kBFloat16;
  if (mixed_precision() == MixedPrecision::kFp16 && device().is_cuda()) return c10::kHalf;
  return c10::kFloat;
}

void PartialState::destroy_process_group() const {
  std::lock_guard<std::mutex> lock(process_state_mutex());
  impl_->leave();
  impl_->group.group.reset();
}

std::string PartialState::to_string() const {
  std::ostringstream out;
  out << "Distributed environment: " << accel::to_string(distributed_type())
      << (distributed() ? std::string("  Backend: ") + accel::to_string(backend()) : std::string()) << "\n"
      << "Num processes: " << num_processes() << "\n"
      << "Process index: " << process_index() << "\n"
      << "Local process index: " << local_process_index() << "\n"
      << "Device: " << device().str() << "\n"
      << "Launcher: " << world().launcher << "\n"
      << "Mixed precision: " << accel::to_string(mixed_precision()) << "\n"
      << "Debug: " << (debug() ? "true" : "false") << "\n";
  return out.str();
}

bool PartialState::is_process(int index, const char* op) const {
  if (index < 0 || index >= num_processes()) {
    throw UsageError(std::string(op) + ": process " + std::to_string(index) + " does not exist; this job has " +
                     std::to_string(num_processes()) + " process(es), numbered 0 to " +
                     std::to_string(num_processes() - 1));
  }
  return index == process_index();
}

void PartialState::throw_split_mismatch(std::size_t results, std::size_t items) {
  throw UsageError("gather_unpadded: got " + std::to_string(results) + " results for a split of " +
                   std::to_string(items) + " items; pass exactly one result per item of the split (padding included)");
}

void PartialState::throw_total_mismatch(std::size_t gathered, std::size_t total) {
  throw PeerError("gather_unpadded: the ranks' real items add up to " + std::to_string(gathered) +
                  " but the split input had " + std::to_string(total) +
                  "; every rank must split the same input and pass its own split");
}

void PartialState::throw_distribute_mismatch(std::uint64_t index, std::size_t total) {
  throw PeerError("distribute: item " + std::to_string(index) + " of " + std::to_string(total) +
                  " came back missing, twice or out of range; every rank must distribute the same items, "
                  "calling distribute() the same number of times in the same order");
}

namespace {

// The job's store as a mailbox backend; a store that fails (its host, rank 0, has gone) is a
// PeerError naming what was being done.
class StoreBackend : public Mailbox::Backend {
 public:
  StoreBackend(c10::intrusive_ptr<::c10d::Store> store, std::string what)
      : store_(std::move(store)), what_(std::move(what)) {}
  std::int64_t add(const std::string& key, std::int64_t amount) override {
    return guarded([&] { return store_->add(key, amount); });
  }
  void set(const std::string& key, const std::string& value) override {
    guarded([&] { store_->set(key, std::vector<std::uint8_t>(value.begin(), value.end())); return 0; });
  }
  std::string get(const std::string& key) override {
    const auto bytes = guarded([&] { return store_->get(key); });
    return std::string(bytes.begin(), bytes.end());
  }
  void erase(const std::string& key) override {
    guarded([&] { return store_->deleteKey(key); });
  }

 private:
  template <class F>
  auto guarded(F fn) -> decltype(fn()) {
    try {
      return fn();
    } catch (const std::exception& e) {
      throw PeerError(what_ + ": the job's store (hosted by rank 0) failed: " + runtime::failure_reason(e));
    }
  }
  c10::intrusive_ptr<::c10d::Store> store_;
  std::string what_;
};

}  // namespace

WorkQueue PartialState::distribute(std::size_t total, std::size_t group_size) const {
  const auto call = impl_->distribute_calls++;
  if (!distributed() || !impl_->group.store) return WorkQueue(total, group_size, local_counter());
  const auto store = std::make_shared<StoreBackend>(impl_->group.store, "distribute");
  const std::string key = "accel/distribute/" + std::to_string(call);
  return WorkQueue(total, group_size, [store, key](std::int64_t amount) { return store->add(key, amount); });
}

Mailbox PartialState::mailbox(const std::string& name) const {
  if (!distributed() || !impl_->group.store) return Mailbox(local_mailbox_backend(), name);
  return Mailbox(std::make_shared<StoreBackend>(impl_->group.store, "mailbox " + name), "accel/mailbox/" + name);
}

ProcessOrderGuard::ProcessOrderGuard(const PartialState& state, bool goes_first)
    : state_(state.impl_), goes_first_(goes_first), uncaught_on_entry_(std::uncaught_exceptions()) {
  if (!goes_first_) PartialState(state_).wait_for_everyone();
}

void ProcessOrderGuard::finish() {
  if (finished_) return;
  finished_ = true;
  if (goes_first_) PartialState(state_).wait_for_everyone();
}

ProcessOrderGuard::~ProcessOrderGuard() {
  // Waiting while an exception unwinds could end in a second one; the peers' wait names this
  // rank instead.
  if (std::uncaught_exceptions() != uncaught_on_entry_) return;
  try {
    finish();
  } catch (const std::exception& e) {
    std::cerr << "accel: the wait at the end of a main_process_first block failed (call finish() to catch it): "
              << e.what() << "\n";
  }
}

}  // namespace accel
