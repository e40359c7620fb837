#include "accel/runtime/split.h"

#include <algorithm>
#include <string>

#include "accel/core/error.h"

namespace accel {

ChunkPlan plan_split(std::size_t total, int world_size, int rank, bool apply_padding) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw Error("plan_split: rank " + std::to_string(rank) + " is not in a world of " + std::to_string(world_size));
  }
  const auto world = static_cast<std::size_t>(world_size);
  const auto index = static_cast<std::size_t>(rank);
  const std::size_t base = total / world;
  const std::size_t extra = total % world;
  ChunkPlan plan;
  plan.start = index * base + std::min(index, extra);
  plan.count = base + (index < extra ? 1 : 0);
  plan.padded = apply_padding ? base + (extra > 0 ? 1 : 0) : plan.count;
  return plan;
}

}  // namespace accel
