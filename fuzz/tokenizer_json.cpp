// Fuzzes tokenizer.json: every input must load or raise accel::Error; a loaded tokenizer must
// encode and decode a fixed text (with and without special tokens) without any other failure.
#include "accel/core/error.h"
#include "accel/models/tokenizer_json.h"
#include "scratch_file.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const accel::fuzz::ScratchDir scratch;
  const auto path = scratch.write("tokenizer.json", std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto tokenizer = accel::models::TokenizerJson::from_file(path);
    for (const bool special : {true, false}) {
      const auto ids = tokenizer.encode("Hello world, naïve café 123 ab\n\xff", special);
      tokenizer.decode(ids, special);
    }
  } catch (const accel::Error&) {
  }
  return 0;
}
