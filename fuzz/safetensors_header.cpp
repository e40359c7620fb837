// Fuzzes the safetensors header parser on whole files: every input must parse into a layout
// that tiles the data section, or raise accel::FileError.
#include "accel/core/error.h"
#include "accel/models/safetensors_header.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto header = accel::models::parse_safetensors_header(data, size, "fuzz.safetensors");
    // What the reader relies on: every tensor lies inside the file, in order, without overlap.
    std::uint64_t covered = 0;
    for (const auto& t : header.tensors) {
      if (t.begin != covered || t.end < t.begin || header.data_offset + t.end > size) std::abort();
      covered = t.end;
    }
    if (header.data_offset + covered != size) std::abort();
  } catch (const accel::Error&) {
  }
  return 0;
}
