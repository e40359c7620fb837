// Tokenizer throughput on ordinary text and on one long run of letters (the case where naive
// BPE merging is quadratic), for scripts/bench-models.sh.
//   tokenizer_bench TOKENIZER_DIR|gpt2 TEXT_FILE [LONG_WORD_BYTES]
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/models/tokenizer.h"
#include "accel/models/tokenizer_json.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

using namespace accel::models;

namespace {

template <typename F>
double best_of(int repeats, F&& fn) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

int run(int argc, char** argv) {
  if (argc < 3 || argc > 4)
    throw accel::UsageError("usage: tokenizer_bench TOKENIZER_DIR|gpt2 TEXT_FILE [LONG_WORD_BYTES]");
  const std::string which = argv[1];
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) throw accel::FileError(argv[2], "cannot read the text", errno);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const auto text = buffer.str();
  std::size_t long_word = 80 * 1024;
  if (argc == 4) {
    const auto parsed = accel::text::parse_integer(argv[3]);
    if (!parsed || *parsed <= 0) throw accel::UsageError(std::string("LONG_WORD_BYTES must be positive, got ") + argv[3]);
    long_word = static_cast<std::size_t>(*parsed);
  }
  const std::unique_ptr<Tokenizer> tokenizer =
      which == "gpt2" ? std::make_unique<GPT2Tokenizer>(GPT2Tokenizer::bundled()) : load_tokenizer(which);

  std::size_t tokens = 0;
  const double ordinary_s = best_of(3, [&] { tokens = tokenizer->prompt_ids(text).size(); });
  const std::string word(long_word, 'a');
  const double long_s = best_of(1, [&] { tokenizer->prompt_ids(word); });
  std::printf("ordinary_bytes %zu\nordinary_tokens %zu\nordinary_mb_per_s %.2f\nlong_word_bytes %zu\nlong_word_seconds %.3f\n",
              text.size(), tokens, text.size() / ordinary_s / 1e6, long_word, long_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const accel::Error& e) {
    std::cerr << "tokenizer_bench: " << e.what() << "\n";
    return e.exit_code();
  }
}
