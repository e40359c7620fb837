// Tokenizer throughput on ordinary text and on one long run of letters (the case where naive
// BPE merging is quadratic), for scripts/bench-models.sh.
//   tokenizer_bench TOKENIZER_DIR|gpt2 TEXT_FILE [LONG_WORD_BYTES]
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/models/tokenizer.h"
#include "accel/models/tokenizer_json.h"
#include "bench_support.h"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

using namespace accel::models;
using accel::models::bench::best_of;

namespace {

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
    if (!parsed || *parsed <= 0)
      throw accel::UsageError(std::string("LONG_WORD_BYTES must be positive, got ") + argv[3]);
    long_word = static_cast<std::size_t>(*parsed);
  }
  const std::unique_ptr<Tokenizer> tokenizer =
      which == "gpt2" ? std::make_unique<GPT2Tokenizer>(GPT2Tokenizer::bundled()) : load_tokenizer(which);

  std::size_t tokens = 0;
  const double ordinary_s = best_of(3, [&] { tokens = tokenizer->prompt_ids(text).size(); });
  const std::string word(long_word, 'a');
  const double long_s = best_of(1, [&] { tokenizer->prompt_ids(word); });
  std::printf("ordinary_bytes %zu\nordinary_tokens %zu\nordinary_mb_per_s %.2f\n", text.size(), tokens,
              text.size() / ordinary_s / 1e6);
  std::printf("long_word_bytes %zu\nlong_word_seconds %.3f\n", long_word, long_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return accel::models::bench::guarded_main("tokenizer_bench", argc, argv, run); }
