#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace accel::batch::detail {

// FNV-1a, 64 bit: tells inputs apart for resuming (not a defence against a forger).
inline std::uint64_t fnv1a(std::string_view text, std::uint64_t hash = 14695981039346656037ull) {
  for (const unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

// 16 lower-case hex digits.
std::string hex(std::uint64_t value);

}  // namespace accel::batch::detail
