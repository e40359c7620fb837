#include <catch2/catch.hpp>

#include "accel/core/precision.h"

using accel::MixedPrecision;

TEST_CASE("mixed precision parses accelerate's spellings only, and spells them back", "[core][precision]") {
  for (const MixedPrecision precision : {MixedPrecision::kNo, MixedPrecision::kFp16, MixedPrecision::kBf16, MixedPrecision::kFp8}) {
    CHECK(accel::parse_mixed_precision(accel::to_string(precision)) == precision);
  }
  CHECK(accel::parse_mixed_precision("bf16") == MixedPrecision::kBf16);
  CHECK_FALSE(accel::parse_mixed_precision("BF16"));  // callers that accept any case lower it first
  CHECK_FALSE(accel::parse_mixed_precision("fp32"));
  CHECK_FALSE(accel::parse_mixed_precision(""));
  CHECK(accel::accepted_mixed_precisions(true) == "no, fp16, bf16, fp8");
  CHECK(accel::accepted_mixed_precisions(false) == "no, fp16, bf16");
}
