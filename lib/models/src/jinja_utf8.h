#pragma once
// UTF-8 as Python's str sees it (the chat template interpreter indexes, slices, strips and
// cases strings by code point). Private to lib/models; torch-free.
#include "bpe.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace accel::models::jinja::utf8 {

// The code point starting at s[i], advancing i past it; U+FFFD (one byte consumed) for a byte
// that starts no valid sequence.
inline std::uint32_t next(std::string_view s, std::size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  const std::size_t extra = (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : 0;
  if (extra == 0 || i + extra >= s.size()) {
    ++i;
    return 0xFFFD;
  }
  std::uint32_t cp = b & (0x3F >> extra);
  for (std::size_t k = 1; k <= extra; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  i += extra + 1;
  return cp;
}

inline void append(std::string& out, std::uint32_t cp) { out += models::detail::encode_utf8(cp); }

// The byte offset where each code point starts, plus s.size() at the end.
inline std::vector<std::size_t> offsets(std::string_view s) {
  std::vector<std::size_t> out;
  out.reserve(s.size() + 1);
  for (std::size_t i = 0; i < s.size();) {
    out.push_back(i);
    next(s, i);
  }
  out.push_back(s.size());
  return out;
}

// Python's str.isspace() for one code point.
inline bool is_space(std::uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

}  // namespace accel::models::jinja::utf8
