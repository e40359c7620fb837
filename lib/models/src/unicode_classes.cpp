#include "unicode_classes.h"

#include <algorithm>
#include <vector>

namespace accel::models::detail {
namespace {

struct ClassRange {
  std::int32_t first, last;
  CharClass cls;
};

#include "unicode_class_ranges.inc"

constexpr std::int32_t kDense = 0x10000;

CharClass search(std::int32_t cp) {
  const auto* end = std::end(kRanges);
  const auto* r = std::upper_bound(std::begin(kRanges), end, cp,
                                   [](std::int32_t v, const ClassRange& range) { return v < range.first; });
  if (r == std::begin(kRanges)) return CharClass::kOther;
  --r;
  return cp <= r->last ? r->cls : CharClass::kOther;
}

// The Basic Multilingual Plane, where nearly all text lies, as one byte per code point; the
// rest is searched in the ranges.
const std::vector<CharClass>& dense_table() {
  static const std::vector<CharClass> table = [] {
    std::vector<CharClass> t(kDense, CharClass::kOther);
    for (const auto& r : kRanges)
      for (auto cp = r.first; cp <= r.last && cp < kDense; ++cp) t[static_cast<std::size_t>(cp)] = r.cls;
    return t;
  }();
  return table;
}

}  // namespace

const char* unicode_version() { return kUnicodeVersion; }

CharClass char_class(std::int32_t cp) {
  if (cp < 0) return CharClass::kOther;
  if (cp < kDense) return dense_table()[static_cast<std::size_t>(cp)];
  return search(cp);
}

}  // namespace accel::models::detail
