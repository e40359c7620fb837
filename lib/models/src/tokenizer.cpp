#include "accel/models/tokenizer.h"

#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/text.h"
#include "bpe.h"

#include <nlohmann/json.hpp>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <unordered_map>

namespace accel::models {
namespace {

constexpr const char* kEndOfText = "<|endoftext|>";

}  // namespace

struct GPT2Tokenizer::Impl {
  std::unordered_map<std::string, std::int64_t> encoder;
  std::int64_t byte_id[256];  // the token of each byte's symbol, looked up once
  std::vector<std::string> decoder;
  detail::MergeTable merges;
  std::int64_t eos = -1;

  void encode_plain(const std::string& text, std::vector<std::int64_t>& ids) const {
    const auto cps = detail::decode_utf8(text);
    std::vector<std::int64_t> piece;
    for (const auto& [b, e] : detail::split_gpt2(cps)) {
      piece.clear();
      for (std::size_t k = cps[b].begin; k < cps[e - 1].end; ++k)
        piece.push_back(byte_id[static_cast<unsigned char>(text[k])]);
      merges.apply(piece);
      ids.insert(ids.end(), piece.begin(), piece.end());
    }
  }
};

GPT2Tokenizer::GPT2Tokenizer(const std::string& vocab_path, const std::string& merges_path)
    : impl_(std::make_unique<Impl>()) {
  const std::string vocab_text = files::read_whole(vocab_path, "cannot read tokenizer file");
  if (const auto problem = text::json_nesting_problem(vocab_text)) throw FileError(vocab_path, *problem);
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(vocab_text);
  } catch (const nlohmann::json::exception& e) {
    throw FileError(vocab_path, "not valid JSON (" + text::excerpt(e.what()) + ")");
  }
  if (!vocab.is_object() || vocab.empty())
    throw FileError(vocab_path, "expected a non-empty JSON object mapping tokens to ids");
  impl_->decoder.resize(vocab.size());
  std::vector<bool> id_taken(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    // Ids index the decoder table, so an id past the token count would size it by the id.
    if (!id.is_number_unsigned() || id.get<std::uint64_t>() >= vocab.size())
      throw FileError(vocab_path, "token " + text::quote(token) + " has id " + text::quote(id.dump()) +
                                      "; ids must be integers from 0 to " + std::to_string(vocab.size() - 1) +
                                      " (the file holds " + std::to_string(vocab.size()) + " tokens)");
    const auto value = id.get<std::int64_t>();
    if (id_taken[value])
      throw FileError(vocab_path, "tokens " + text::quote(impl_->decoder[value]) + " and " + text::quote(token) +
                                      " share id " + std::to_string(value) + "; each id must name one token");
    id_taken[value] = true;
    impl_->encoder[token] = value;
    impl_->decoder[value] = token;
  }
  for (int b = 0; b < 256; ++b) {
    const auto symbol = impl_->encoder.find(detail::byte_alphabet().symbol[b]);
    if (symbol == impl_->encoder.end())
      throw FileError(vocab_path, "has no token for byte " + std::to_string(b) +
                                      "; a byte-level BPE vocabulary covers all 256 bytes");
    impl_->byte_id[b] = symbol->second;
  }
  const auto eos = impl_->encoder.find(kEndOfText);
  if (eos != impl_->encoder.end()) impl_->eos = eos->second;

  std::istringstream merges(files::read_whole(merges_path, "cannot read tokenizer file"));
  std::string line;
  int line_number = 0;
  while (std::getline(merges, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_number == 1 && line.rfind("#version", 0) == 0)) continue;
    const auto space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos)
      throw FileError(merges_path, "line " + std::to_string(line_number) +
                                       ": expected two symbols separated by one space, got " +
                                       text::quote(line));
    const auto left = line.substr(0, space), right = line.substr(space + 1);
    const auto& enc = impl_->encoder;
    if (!enc.count(left) || !enc.count(right) || !enc.count(left + right))
      throw FileError(merges_path, "line " + std::to_string(line_number) + ": merge " + text::quote(line) +
                                       " uses or makes a token missing from " + vocab_path +
                                       "; the vocab and merges files do not belong together");
    impl_->merges.add(enc.at(left), enc.at(right), enc.at(left + right));
  }
}

GPT2Tokenizer::~GPT2Tokenizer() = default;
GPT2Tokenizer::GPT2Tokenizer(GPT2Tokenizer&&) noexcept = default;
GPT2Tokenizer& GPT2Tokenizer::operator=(GPT2Tokenizer&&) noexcept = default;

GPT2Tokenizer GPT2Tokenizer::from_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt"))
    return GPT2Tokenizer((d / "vocab.json").string(), (d / "merges.txt").string());
  if (fs::exists(d / "encoder.json") && fs::exists(d / "vocab.bpe"))
    return GPT2Tokenizer((d / "encoder.json").string(), (d / "vocab.bpe").string());
  throw FileError(dir, "no GPT-2 tokenizer files: expected vocab.json + merges.txt or "
                       "encoder.json + vocab.bpe");
}

GPT2Tokenizer GPT2Tokenizer::bundled() { return from_directory(bundled_vocabulary_dir()); }

std::string bundled_vocabulary_dir(const env::Lookup& environment) {
  const auto override_dir = environment(env::kGpt2VocabDir);
  if (override_dir && !override_dir->empty()) return *override_dir;
  // An installed program (prefix/bin) reads the prefix's copy, even while the source tree that
  // built it is still around; a program in the build tree reads the source tree's.
  namespace fs = std::filesystem;
  const fs::path installed = fs::path(files::executable_directory()) / ACCEL_GPT2_DATA_FROM_BINDIR;
  for (const fs::path& dir : {installed, fs::path(ACCEL_GPT2_DATA_DIR)}) {
    if (fs::exists(dir / "encoder.json")) return dir.lexically_normal().string();
  }
  throw FileError(installed.lexically_normal().string(),
                  "the GPT-2 vocabulary shipped with accel is missing here (beside the installed program) "
                  "and in the source tree's " ACCEL_GPT2_DATA_DIR "; set ACCEL_GPT2_VOCAB_DIR to a directory "
                  "with encoder.json + vocab.bpe or vocab.json + merges.txt");
}

std::vector<std::int64_t> GPT2Tokenizer::encode(const std::string& text) const {
  std::vector<std::int64_t> ids;
  std::size_t pos = 0;
  while (true) {
    const auto special = impl_->eos >= 0 ? text.find(kEndOfText, pos) : std::string::npos;
    impl_->encode_plain(text.substr(pos, special - pos), ids);
    if (special == std::string::npos) break;
    ids.push_back(impl_->eos);
    pos = special + std::string(kEndOfText).size();
  }
  return ids;
}

std::string GPT2Tokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::string out;
  for (const auto id : ids) {
    if (id < 0 || id >= static_cast<std::int64_t>(impl_->decoder.size()) ||
        impl_->decoder[id].empty())
      throw UsageError("token id " + std::to_string(id) + " is not in the GPT-2 vocabulary (" +
                       std::to_string(impl_->encoder.size()) + " tokens)");
    const auto& token = impl_->decoder[id];
    if (id == impl_->eos) {
      out += token;
      continue;
    }
    const auto& byte_of = detail::byte_alphabet().byte_of;
    for (const auto& c : detail::decode_utf8(token)) {
      const auto it = byte_of.find(token.substr(c.begin, c.end - c.begin));
      if (it == byte_of.end())
        throw Error("GPT-2 token " + std::to_string(id) + " holds a character outside the "
                    "byte alphabet; the vocabulary file is not a byte-level BPE vocabulary");
      out += static_cast<char>(it->second);
    }
  }
  return out;
}

std::string GPT2Tokenizer::completion_text(const std::vector<std::int64_t>& ids) const {
  std::vector<std::int64_t> kept;
  for (const auto id : ids)
    if (id != impl_->eos && id >= 0 && id < static_cast<std::int64_t>(impl_->decoder.size()) &&
        !impl_->decoder[id].empty())
      kept.push_back(id);
  return detail::valid_utf8(decode(kept));
}

std::int64_t GPT2Tokenizer::vocab_size() const { return static_cast<std::int64_t>(impl_->encoder.size()); }
std::int64_t GPT2Tokenizer::eos_token_id() const { return impl_->eos; }

}  // namespace accel::models
