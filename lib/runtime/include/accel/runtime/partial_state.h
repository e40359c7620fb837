#pragma once
// accel::PartialState: where this process sits in the job, and the collectives a distributed
// inference job needs, as in accelerate's PartialState. Every PartialState constructed in a
// process is a cheap handle to one shared state: the first construction reads the launcher's
// environment and forms the process group; later ones reuse it. Without launcher variables the
// process is a job of one, with no process group, and every operation still works (locally).
//
// Collectives must be called by every rank in the same order. Each one fails within the
// timeout (ACCEL_TIMEOUT_S, default 300 s) with an accel::PeerError naming the ranks that did not
// take part, instead of hanging.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "accel/core/distributed_type.h"
#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "accel/core/precision.h"
#include "accel/runtime/object_codec.h"
#include "accel/runtime/operations.h"
#include "accel/runtime/split.h"
#include "accel/runtime/tensor_codec.h"
#include "accel/runtime/work_queue.h"

namespace accel {

namespace runtime {
struct GroupHandle;
}
namespace detail {
struct SharedState;
}

// accelerate.utils.reduce's reductions ("mean", "sum", "max", "none": the sum, not divided), and Min.
enum class ReduceOp { Mean, Sum, Max, Min, None };

inline constexpr std::chrono::seconds kDefaultCollectiveTimeout{300};

// The process group's backend; kNone in a job of one.
enum class Backend { kNone, kGloo, kNccl };
const char* to_string(Backend backend);  // "none", "gloo", "nccl", as torch.distributed names them

// Each setting left unset is read from the environment: ours (ACCEL_*) first, then accelerate's
// launcher's spelling (ACCELERATE_*), so a job started by `accelerate launch` behaves alike.
struct PartialStateOptions {
  std::optional<std::chrono::milliseconds> timeout;  // unset: ACCEL_TIMEOUT_S, else 300 s
  std::optional<bool> cpu;  // unset: ACCEL_USE_CPU / ACCELERATE_USE_CPU, else use CUDA when present
  // "no", "fp16" or "bf16"; unset: ACCEL_MIXED_PRECISION / ACCELERATE_MIXED_PRECISION, else "no".
  std::optional<std::string> mixed_precision;
  // Debug checks before every collective; unset: ACCEL_DEBUG / ACCELERATE_DEBUG_MODE, else off.
  std::optional<bool> debug;
  bool poll_before_connect = true;                   // false: c10d's own connect retry (benchmarks)
  env::Lookup lookup;                                // unset: the process environment
};

class PartialState;

// Holds ranks back so that one side runs a block first (see main_process_first()): the other
// side waits when the guard is made, the side that went first when it finishes.
class [[nodiscard]] ProcessOrderGuard {
 public:
  ProcessOrderGuard(const ProcessOrderGuard&) = delete;
  ProcessOrderGuard& operator=(const ProcessOrderGuard&) = delete;
  // Ends the ordering: the side that went first waits here until the others may go. Throws
  // PeerError naming the ranks that never arrived. Later calls do nothing.
  void finish();
  // Finishes unless an exception is unwinding: then it does not wait, and the peers' wait fails
  // with a PeerError naming this rank instead of hanging. A destructor must not throw, so a
  // failure here is only written to stderr: call finish() to get it as an exception.
  ~ProcessOrderGuard();

 private:
  friend class PartialState;
  ProcessOrderGuard(const PartialState& state, bool goes_first);
  std::shared_ptr<detail::SharedState> state_;  // shared, so the guard may outlive the handle
  bool goes_first_;
  bool finished_ = false;
  int uncaught_on_entry_;
};

class PartialState {
 public:
  // The process-wide state; options only matter to the first construction in a process.
  PartialState();
  explicit PartialState(const PartialStateOptions& options);

  // A state over an already formed group, not shared with the rest of the process: tests run
  // ranks as threads this way. Every rank counts as local; the device is the CPU.
  static PartialState over_group(const runtime::GroupHandle& group, bool debug = false);

  int process_index() const;
  int local_process_index() const;
  int num_processes() const;
  int num_local_processes() const;
  bool distributed() const { return num_processes() > 1; }
  bool is_main_process() const { return process_index() == 0; }
  bool is_local_main_process() const { return local_process_index() == 0; }
  bool is_last_process() const { return process_index() == num_processes() - 1; }
  c10::Device device() const;        // cuda:LOCAL_RANK when CUDA is used, else cpu
  Backend backend() const;
  const env::WorldInfo& world() const;
  std::chrono::milliseconds timeout() const;
  const runtime::GroupHandle& group() const;
  DistributedType distributed_type() const;  // NO, MULTI_CPU or MULTI_GPU: the kinds this runtime forms
  // no, fp16 or bf16 (never fp8), and the dtype models should compute in: bf16 gives bfloat16,
  // fp16 gives float16 on CUDA (this LibTorch has no float16 matrix products on CPU: float32 there).
  MixedPrecision mixed_precision() const;
  c10::ScalarType compute_dtype() const;
  // Debug mode (accelerate's ACCELERATE_DEBUG_MODE): before every collective the ranks check
  // that they all entered the same operation, and the tensor collectives check shapes, so that a
  // mismatch is a UsageError on every rank instead of a hang or a wrong result.
  bool debug() const;
  // Leaves the process group now, in order (rank 0, which hosts the store, waits for the others
  // to say they are leaving); no collective may follow. Runs on its own at exit otherwise.
  void destroy_process_group() const;
  // One line per property, as accelerate's PartialState prints (distributed type, process
  // indices, device, backend, mixed precision, debug).
  std::string to_string() const;

  // A barrier across every rank.
  void wait_for_everyone() const;

  // `auto first = state.main_process_first(); ...; first.finish();` — the main process runs
  // the block before every other rank does (e.g. it fills a cache the others then read).
  ProcessOrderGuard main_process_first() const { return {*this, is_main_process()}; }
  ProcessOrderGuard local_main_process_first() const { return {*this, is_local_main_process()}; }
  template <class F>
  void main_process_first(F&& fn) const {
    ProcessOrderGuard guard = main_process_first();
    fn();
    guard.finish();
  }
  template <class F>
  void local_main_process_first(F&& fn) const {
    ProcessOrderGuard guard = local_main_process_first();
    fn();
    guard.finish();
  }

  // Run fn only on that process, or always in a job of one (as accelerate does, so a script
  // written for N processes runs whole when started alone). Return whether it ran.
  template <class F>
  bool on_main_process(F&& fn) const { return run_if(is_main_process(), fn); }
  template <class F>
  bool on_local_main_process(F&& fn) const { return run_if(is_local_main_process(), fn); }
  template <class F>
  bool on_last_process(F&& fn) const { return run_if(is_last_process(), fn); }
  template <class F>
  bool on_process(int index, F&& fn) const { return run_if(!distributed() || is_process(index, "on_process"), fn); }

  // accelerate's decorator form of the above: a callable that runs fn(args...) only on that
  // process (everywhere in a job of one) and elsewhere does nothing. It returns whether fn ran
  // when fn returns void, else fn's result as a std::optional (empty where it did not run).
  //   auto save = state.main_process_only([&](const std::string& path) { write(path); });
  template <class F>
  auto main_process_only(F fn) const { return only_where([](const PartialState& s) { return s.is_main_process(); }, std::move(fn)); }
  template <class F>
  auto local_main_process_only(F fn) const {
    return only_where([](const PartialState& s) { return s.is_local_main_process(); }, std::move(fn));
  }
  template <class F>
  auto last_process_only(F fn) const { return only_where([](const PartialState& s) { return s.is_last_process(); }, std::move(fn)); }
  template <class F>
  auto process_only(int index, F fn) const {
    is_process(index, "process_only");
    return only_where([index](const PartialState& s) { return s.process_index() == index; }, std::move(fn));
  }

  // Prints its arguments separated by spaces, as Python's print, on each machine's local main
  // process, as accelerate's PartialState.print.
  template <class... Args>
  void print(const Args&... args) const {
    if (!is_local_main_process()) return;
    std::ostringstream line;
    const char* separator = "";
    ((line << separator << args, separator = " "), ...);
    line << '\n';
    std::cout << line.str() << std::flush;
  }

  // This rank's contiguous share of `input` (see split.h for the rule and the padding).
  template <class T>
  Split<std::vector<T>> split_between_processes(const std::vector<T>& input, bool apply_padding = false) const {
    return split_sequence(input, apply_padding);
  }
  // Splits along dim 0; padding repeats the input's last row locally (no collective needed).
  Split<at::Tensor> split_between_processes(const at::Tensor& input, bool apply_padding = false) const;
  // Every value (vectors or tensors) must have the same length; each is split alike.
  template <class K, class V>
  Split<std::map<K, V>> split_between_processes(const std::map<K, V>& input, bool apply_padding = false) const;

  // Work pulled, not split (work_queue.h, our addition): a queue over `total` items that hands
  // this rank the next `group_size` of them each time it asks, so a fast rank takes more. Not a
  // collective (no rank waits for another), but every rank must call distribute() the same
  // number of times in the same order: the n-th call of each rank shares one queue.
  WorkQueue distribute(std::size_t total, std::size_t group_size = 1) const;
  // Messages from any rank to the main process (work_queue.h). Every rank names the same
  // mailbox with the same `name`; only the main process may take().
  Mailbox mailbox(const std::string& name) const;
  // fn(item) for every item, each on whichever rank claimed it; every rank receives all the
  // results in the input's order (one gather_object at the end: a collective). R must be
  // default-constructible and travel through accel::Codec.
  template <class T, class F>
  auto distribute(const std::vector<T>& items, F fn, std::size_t group_size = 1) const
      -> std::vector<std::invoke_result_t<F&, const T&>>;

  // Every rank receives every rank's items, concatenated in rank order.
  template <class T>
  std::vector<T> gather_object(const std::vector<T>& mine) const;
  // Every rank receives one value per rank, in rank order.
  template <class T>
  std::vector<T> gather_object(const T& mine) const;
  // Every rank receives the value the rank `from` passed.
  template <class T>
  T broadcast_object(const T& value, int from = 0) const;

  // Gathers the results computed on a split's items and drops the padding: every rank receives
  // exactly one result per original input item, in the input's order. results.size() must equal
  // split.num_items.
  template <class T, class C>
  std::vector<T> gather_unpadded(const std::vector<T>& results, const Split<C>& split) const;
  template <class C>
  at::Tensor gather_unpadded(const at::Tensor& results, const Split<C>& split) const {
    return gather_unpadded_rows(results, split.num_real, split.num_items, split.total);
  }

  // Tensor collectives; results are on the input's device. gather concatenates along dim 0 in
  // rank order (first dims may differ); broadcast copies `from`'s tensor to everyone (other
  // ranks' inputs may be undefined); reduce combines elementwise on every rank (an all-reduce),
  // the mean by default as accelerate's, then multiplies by `scale` (on every backend; accelerate
  // applies it on XLA only); the mean of an integer tensor is a floating one, alone or
  // distributed; pad_across_processes pads `dim` to the largest size any rank has.
  at::Tensor gather(const at::Tensor& tensor) const;
  at::Tensor broadcast(const at::Tensor& tensor, int from = 0) const;
  at::Tensor reduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::Mean, double scale = 1.0) const;
  at::Tensor pad_across_processes(const at::Tensor& tensor, std::int64_t dim = 0, double pad_value = 0,
                                  bool pad_first = false) const;

  // The same collectives over nested data (vectors and maps of tensors, recursively; see
  // operations.h): applied to every tensor in order, after the ranks checked that they pass the
  // same structure (a UsageError on every rank otherwise).
  template <class T, class = std::enable_if_t<is_nested_container_v<T>>>
  T gather(const T& nested) const {
    agree_structure(structure_of(nested), "gather");
    return map_tensors(nested, [&](const at::Tensor& t) { return gather(t); });
  }
  template <class T, class = std::enable_if_t<is_nested_container_v<T>>>
  T broadcast(const T& nested, int from = 0) const {
    agree_structure(structure_of(nested), "broadcast");
    return map_tensors(nested, [&](const at::Tensor& t) { return broadcast(t, from); });
  }
  template <class T, class = std::enable_if_t<is_nested_container_v<T>>>
  T reduce(const T& nested, ReduceOp op = ReduceOp::Mean, double scale = 1.0) const {
    agree_structure(structure_of(nested), "reduce");
    return map_tensors(nested, [&](const at::Tensor& t) { return reduce(t, op, scale); });
  }
  template <class T, class = std::enable_if_t<is_nested_container_v<T>>>
  T pad_across_processes(const T& nested, std::int64_t dim = 0, double pad_value = 0, bool pad_first = false) const {
    agree_structure(structure_of(nested), "pad_across_processes");
    return map_tensors(nested, [&](const at::Tensor& t) { return pad_across_processes(t, dim, pad_value, pad_first); });
  }

  // accelerate's gather_for_metrics: every result of a padded split, gathered, without the
  // duplicates the padding added (the same as gather_unpadded).
  template <class R, class C>
  auto gather_for_metrics(const R& results, const Split<C>& split) const {
    return gather_unpadded(results, split);
  }

  // The byte-level exchanges the object collectives are built on; `op` names the caller in errors.
  std::vector<Bytes> all_gather_bytes(const Bytes& mine, const char* op = "all_gather_bytes") const;
  Bytes broadcast_bytes(const Bytes& mine, int from, const char* op = "broadcast_bytes") const;

 private:
  friend class ProcessOrderGuard;
  explicit PartialState(std::shared_ptr<detail::SharedState> impl) : impl_(std::move(impl)) {}

  template <class Here, class F>
  auto only_where(Here here, F fn) const {
    return [state = *this, here, fn = std::move(fn)](auto&&... args) mutable {
      using R = std::invoke_result_t<F&, decltype(args)...>;
      const bool run = !state.distributed() || here(state);
      if constexpr (std::is_void_v<R>) {
        if (run) fn(std::forward<decltype(args)>(args)...);
        return run;
      } else {
        return run ? std::optional<R>(fn(std::forward<decltype(args)>(args)...)) : std::optional<R>();
      }
    };
  }

  template <class F>
  static bool run_if(bool here, F& fn) {
    if (here) fn();
    return here;
  }
  bool is_process(int index, const char* op) const;  // throws UsageError for an index out of range
  void agree_structure(const std::string& structure, const char* op) const;
  at::Tensor gather_unpadded_rows(const at::Tensor& results, std::size_t num_real, std::size_t num_items,
                                  std::size_t total) const;
  [[noreturn]] static void throw_split_mismatch(std::size_t results, std::size_t items);
  [[noreturn]] static void throw_total_mismatch(std::size_t gathered, std::size_t total);
  [[noreturn]] static void throw_distribute_mismatch(std::uint64_t index, std::size_t total);

  template <class Seq>
  Split<Seq> split_sequence(const Seq& input, bool apply_padding) const;

  std::shared_ptr<detail::SharedState> impl_;
};

inline std::ostream& operator<<(std::ostream& out, const PartialState& state) { return out << state.to_string(); }

namespace detail {

std::size_t split_length(const at::Tensor& t);
at::Tensor take_chunk(const at::Tensor& t, const ChunkPlan& plan);

template <class T>
std::size_t split_length(const std::vector<T>& v) {
  return v.size();
}

template <class T>
std::vector<T> take_chunk(const std::vector<T>& v, const ChunkPlan& plan) {
  std::vector<T> chunk(v.begin() + plan.start, v.begin() + plan.start + plan.count);
  if (plan.padded > chunk.size()) chunk.resize(plan.padded, v.back());  // padding repeats the input's last item
  return chunk;
}

template <class K>
std::string key_text(const K& key) {
  std::ostringstream os;
  os << key;
  return os.str();
}

}  // namespace detail

template <class Seq>
Split<Seq> PartialState::split_sequence(const Seq& input, bool apply_padding) const {
  const auto total = detail::split_length(input);
  const auto plan = plan_split(total, num_processes(), process_index(), apply_padding);
  return {detail::take_chunk(input, plan), plan.count, plan.padded, plan.start, total};
}

template <class K, class V>
Split<std::map<K, V>> PartialState::split_between_processes(const std::map<K, V>& input, bool apply_padding) const {
  Split<std::map<K, V>> out;
  const K* first_key = nullptr;
  for (const auto& [key, value] : input) {
    auto part = split_sequence(value, apply_padding);
    if (first_key != nullptr && part.total != out.total) {
      throw UsageError("split_between_processes: every value of the map must have the same length, but key '" +
                       detail::key_text(*first_key) + "' has " + std::to_string(out.total) + " items and key '" +
                       detail::key_text(key) + "' has " + std::to_string(part.total));
    }
    first_key = &key;
    out.num_real = part.num_real;
    out.num_items = part.num_items;
    out.start = part.start;
    out.total = part.total;
    out.items.emplace(key, std::move(part.items));
  }
  return out;
}

template <class T>
std::vector<T> PartialState::gather_object(const std::vector<T>& mine) const {
  if (!distributed()) return mine;
  const auto parts = all_gather_bytes(encode(mine), "gather_object");
  std::vector<T> all;
  for (std::size_t r = 0; r < parts.size(); ++r) {
    auto items = decode<std::vector<T>>(parts[r], static_cast<int>(r));
    all.insert(all.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
  }
  return all;
}

template <class T>
std::vector<T> PartialState::gather_object(const T& mine) const {
  if (!distributed()) return {mine};
  const auto parts = all_gather_bytes(encode(mine), "gather_object");
  std::vector<T> all;
  all.reserve(parts.size());
  for (std::size_t r = 0; r < parts.size(); ++r) all.push_back(decode<T>(parts[r], static_cast<int>(r)));
  return all;
}

template <class T>
T PartialState::broadcast_object(const T& value, int from) const {
  is_process(from, "broadcast_object");
  if (!distributed()) return value;
  return decode<T>(broadcast_bytes(process_index() == from ? encode(value) : Bytes{}, from, "broadcast_object"), from);
}

template <class T, class F>
auto PartialState::distribute(const std::vector<T>& items, F fn, std::size_t group_size) const
    -> std::vector<std::invoke_result_t<F&, const T&>> {
  using R = std::invoke_result_t<F&, const T&>;
  auto queue = distribute(items.size(), group_size);
  std::vector<std::pair<std::uint64_t, R>> mine;
  while (const auto range = queue.next()) {
    for (auto i = range->begin; i < range->end; ++i) mine.emplace_back(i, fn(items[i]));
  }
  std::vector<R> out(items.size());
  std::vector<bool> seen(items.size(), false);
  for (auto& [index, result] : gather_object(mine)) {
    if (index >= items.size() || seen[index]) throw_distribute_mismatch(index, items.size());
    seen[index] = true;
    out[index] = std::move(result);
  }
  for (std::size_t i = 0; i < items.size(); ++i)
    if (!seen[i]) throw_distribute_mismatch(i, items.size());
  return out;
}

template <class T, class C>
std::vector<T> PartialState::gather_unpadded(const std::vector<T>& results, const Split<C>& split) const {
  if (results.size() != split.num_items) throw_split_mismatch(results.size(), split.num_items);
  auto all = gather_object(std::vector<T>(results.begin(), results.begin() + split.num_real));
  if (all.size() != split.total) throw_total_mismatch(all.size(), split.total);
  return all;
}

}  // namespace accel
