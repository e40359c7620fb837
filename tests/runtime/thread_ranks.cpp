#include "thread_ranks.h"

#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include <thread>

#include "accel/runtime/group.h"

namespace accel::testing {

std::vector<Outcome<std::string>> run_ranks_raw(int world_size,
                                                const std::function<std::string(const PartialState&)>& body,
                                                std::chrono::milliseconds timeout) {
  auto store = c10::make_intrusive<::c10d::HashStore>();
  std::vector<Outcome<std::string>> out(world_size);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world_size; ++rank) {
    threads.emplace_back([&, rank] {
      auto& o = out[rank];
      try {
        const auto state = PartialState::over_group(runtime::make_gloo_group(store, rank, world_size, timeout));
        o.value = body(state);
      } catch (const PeerError& e) {
        o.error = e.what();
        o.error_type = "PeerError";
      } catch (const UsageError& e) {
        o.error = e.what();
        o.error_type = "UsageError";
      } catch (const Error& e) {
        o.error = e.what();
        o.error_type = "Error";
      } catch (const std::exception& e) {
        o.error = e.what();
        o.error_type = "other";
      }
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace accel::testing
