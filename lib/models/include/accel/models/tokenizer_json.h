#pragma once
// Hugging Face tokenizer.json for BPE models: byte-level BPE (GPT-2, Llama 3, Qwen) and
// sentencepiece-style BPE with byte fallback (Llama 2, Mistral), with their normalizers (NFC,
// Prepend, Replace), pre-tokenizers (ByteLevel, Split with the GPT-2, Llama 3 and Qwen
// patterns, Metaspace), post-processors (TemplateProcessing, ByteLevel), decoders (ByteLevel,
// Replace, ByteFallback, Fuse, Strip, Metaspace) and added tokens, matched whole before the
// model sees the text. Anything else in the file is refused by name when loading.
#include "accel/models/tokenizer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace accel::models {

class TokenizerJson : public Tokenizer {
 public:
  // Throws FileError naming the file and the unsupported or malformed part
  // ("pre_tokenizer type 'Whitespace' is not supported; supported: ...").
  static TokenizerJson from_file(const std::string& path);

  ~TokenizerJson() override;
  TokenizerJson(TokenizerJson&&) noexcept;
  TokenizerJson& operator=(TokenizerJson&&) noexcept;

  // The ids of `text`, with the special tokens the post-processor adds (Llama 2's <s>) when
  // add_special_tokens.
  std::vector<std::int64_t> encode(const std::string& text, bool add_special_tokens = true) const;
  // Text of `ids` through the decoder, invalid UTF-8 replaced by U+FFFD. With
  // skip_special_tokens, special added tokens and ids outside the vocabulary are dropped;
  // otherwise an unknown id is a UsageError naming it.
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens = true) const;

  std::vector<std::int64_t> prompt_ids(const std::string& text) const override { return encode(text); }
  std::vector<std::int64_t> plain_ids(const std::string& text) const override { return encode(text, false); }
  std::string completion_text(const std::vector<std::int64_t>& ids) const override {
    return decode(ids);
  }
  std::int64_t vocab_size() const override;
  // The id of a token in the vocabulary or among the added tokens; -1 when absent.
  std::int64_t token_id(const std::string& token) const;

  // transformers' clean_up_tokenization_spaces on decode (" ." -> ".", " n't" -> "n't", ...);
  // tokenizer_config.json decides it.
  void set_clean_up_tokenization_spaces(bool on);
  // tokenizer_config.json's add_bos_token / add_eos_token: `token` is added around the ids
  // unless the post-processor's template already adds it. UsageError when it is not a token.
  void add_bos_token(const std::string& token);
  void add_eos_token(const std::string& token);

 private:
  struct Impl;
  explicit TokenizerJson(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The tokenizer of a checkpoint directory: tokenizer.json (with tokenizer_config.json's
// clean_up_tokenization_spaces, add_bos_token and add_eos_token) when present, else GPT-2's vocab.json + merges.txt. FileError
// naming the directory and the files looked for otherwise.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace accel::models
