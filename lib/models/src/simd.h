#pragma once
// Vector types and the few operations the decode kernels (gemv.cpp, rows_product.cpp) share.
// Each kernel file compiles them once per instruction set inside functions with a target
// attribute. Private to lib/models.
#include <cstdint>
#include <cstring>

namespace accel::models::detail::simd {

// Vectors of `Lanes` float32 (or 32-bit) lanes: one register of the target the code is compiled
// for (AVX-512: 16, AVX2: 8, SSE2 or NEON: 4). They travel only by reference, so no function's
// calling convention depends on the instruction set.
template <int Lanes>
struct Vectors;
template <>
struct Vectors<16> {
  using Floats = float __attribute__((vector_size(64)));
  using Words = std::uint32_t __attribute__((vector_size(64)));
  using Halves = std::uint16_t __attribute__((vector_size(32)));
};
template <>
struct Vectors<8> {
  using Floats = float __attribute__((vector_size(32)));
  using Words = std::uint32_t __attribute__((vector_size(32)));
  using Halves = std::uint16_t __attribute__((vector_size(16)));
};
template <>
struct Vectors<4> {
  using Floats = float __attribute__((vector_size(16)));
  using Words = std::uint32_t __attribute__((vector_size(16)));
  using Halves = std::uint16_t __attribute__((vector_size(8)));
};

template <class Vector>
[[gnu::always_inline]] inline void load(Vector& v, const void* p) {
  std::memcpy(&v, p, sizeof v);
}

// bfloat16 is the upper half of a float32.
[[gnu::always_inline]] inline float widen(std::uint16_t bits) {
  const std::uint32_t word = std::uint32_t{bits} << 16;
  float value;
  std::memcpy(&value, &word, sizeof value);
  return value;
}

[[gnu::always_inline]] inline float widen(float value) { return value; }

// The lanes of v added pairwise, halving the vector each round: log2(Lanes) dependent additions
// instead of Lanes.
template <int Lanes>
[[gnu::always_inline]] inline float horizontal_sum(const typename Vectors<Lanes>::Floats& v) {
  float lanes[Lanes];
  std::memcpy(lanes, &v, sizeof lanes);
  for (int width = Lanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  return lanes[0];
}

}  // namespace accel::models::detail::simd
