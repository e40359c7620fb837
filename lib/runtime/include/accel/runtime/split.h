#pragma once
// How split_between_processes divides N items between W ranks, as pure arithmetic: contiguous
// chunks in rank order, the first N % W ranks one item longer (accelerate's rule, so results match
// across the two ecosystems). Kept free of torch so the rule is testable on its own.
#include <cstddef>

namespace accel {

struct ChunkPlan {
  std::size_t start = 0;   // index of the chunk's first item in the input
  std::size_t count = 0;   // real items in the chunk
  std::size_t padded = 0;  // chunk length after padding (== count without padding)
};

// With apply_padding every rank's chunk has the longest chunk's length, ceil(total / world);
// an empty input stays empty everywhere because there is nothing to repeat.
ChunkPlan plan_split(std::size_t total, int world_size, int rank, bool apply_padding);

// One rank's share of a split input. `items` holds num_items entries; the first num_real are
// the input's items [start, start + num_real), the rest repeat the input's last item (not this
// rank's: accelerate pads with inputs[-1]) so that every rank has the same length (only with
// apply_padding). gather_unpadded() uses num_real to hand back
// exactly the input's order and length.
template <class Container>
struct Split {
  Container items;
  std::size_t num_real = 0;
  std::size_t num_items = 0;
  std::size_t start = 0;
  std::size_t total = 0;

  bool padded() const { return num_items > num_real; }
  auto begin() const { return items.begin(); }
  auto end() const { return items.end(); }
};

}  // namespace accel
