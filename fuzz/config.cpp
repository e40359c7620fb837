// Fuzzes the config reader: every input must parse or raise accel::Error (a UsageError naming
// the file, line and key); anything else (a crash, a sanitizer report, another exception type)
// is a finding. Built twice, once per format (ACCEL_FUZZ_FORMAT).
#include "accel/config/config.h"
#include "accel/core/error.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    accel::config::parse_config(text, accel::config::Format::ACCEL_FUZZ_FORMAT, "fuzz");
  } catch (const accel::Error&) {
  }
  return 0;
}
