// Fuzzes the GPT-2 tokenizer files. An input is the vocabulary (JSON) and the merges text
// separated by the first NUL byte; when both load, a fixed text must encode and decode back.
#include "accel/core/error.h"
#include "accel/models/tokenizer.h"
#include "scratch_file.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const accel::fuzz::ScratchDir scratch;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto separator = input.find('\0');
  if (separator == std::string::npos) return 0;
  const auto vocab = scratch.write("vocab.json", input.substr(0, separator));
  const auto merges = scratch.write("merges.txt", input.substr(separator + 1));
  try {
    const accel::models::GPT2Tokenizer tokenizer(vocab, merges);
    const std::string text = "Hello world, naïve café 123 <|endoftext|>\n\xff";
    if (tokenizer.decode(tokenizer.encode(text)) != text) std::abort();
  } catch (const accel::Error&) {
  }
  return 0;
}
