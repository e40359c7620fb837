#include "accel/core/precision.h"

#include <array>

#include "accel/core/text.h"

namespace accel {
namespace {

constexpr std::array<MixedPrecision, 4> kAll = {MixedPrecision::kNo, MixedPrecision::kFp16, MixedPrecision::kBf16,
                                                MixedPrecision::kFp8};
// Indexed by the enum's value, in its order.
constexpr std::array<const char*, 4> kPrecisionNames = {"no", "fp16", "bf16", "fp8"};

}  // namespace

std::optional<MixedPrecision> parse_mixed_precision(std::string_view text) {
  for (const MixedPrecision precision : kAll) {
    if (text == to_string(precision)) return precision;
  }
  return std::nullopt;
}

const char* to_string(MixedPrecision precision) { return kPrecisionNames.at(static_cast<std::size_t>(precision)); }

std::vector<std::string> mixed_precision_names(bool with_fp8) {
  std::vector<std::string> names;
  for (const MixedPrecision precision : kAll) {
    if (with_fp8 || precision != MixedPrecision::kFp8) names.emplace_back(to_string(precision));
  }
  return names;
}

std::string accepted_mixed_precisions(bool with_fp8) { return text::join(mixed_precision_names(with_fp8), ", "); }

}  // namespace accel
