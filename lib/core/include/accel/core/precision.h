#pragma once
// accelerate's mixed-precision modes, one definition for the config files, the launcher and the
// runtime. Text is parsed once where it enters (a flag, a config key, an environment variable)
// and each of those places keeps its own message naming the flag, key or variable.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accel {

enum class MixedPrecision { kNo, kFp16, kBf16, kFp8 };

// "no", "fp16", "bf16" or "fp8", spelled exactly so; nothing for anything else (callers that
// accept other cases lower the text first).
std::optional<MixedPrecision> parse_mixed_precision(std::string_view text);

// The spelling parse_mixed_precision() accepts, e.g. "bf16".
const char* to_string(MixedPrecision precision);

// The modes a caller accepts, for its error message and choices: "no, fp16, bf16[, fp8]".
// fp8 only drives accelerate's FP8 recipes in the job; this runtime computes in fp16/bf16 only.
std::vector<std::string> mixed_precision_names(bool with_fp8);
std::string accepted_mixed_precisions(bool with_fp8);

}  // namespace accel
