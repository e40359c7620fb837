#include "accel/models/tokenizer.h"

#include "accel/core/error.h"

#include <nlohmann/json.hpp>
#include <unicode/uchar.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace accel::models {
namespace {

constexpr const char* kEndOfText = "<|endoftext|>";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path, "cannot read tokenizer file", errno);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string utf8(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// One code point of the input: its bytes in the text and its Unicode value (-1 when the
// bytes are not valid UTF-8; such a byte counts as "other" and still round-trips).
struct CodePoint {
  std::size_t begin, end;
  std::int32_t value;
};

std::vector<CodePoint> decode_utf8(const std::string& s) {
  std::vector<CodePoint> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    std::int32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xC0) == 0x80;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (!ok) {
      out.push_back({i, i + 1, -1});
      ++i;
    } else {
      out.push_back({i, i + len, cp});
      i += len;
    }
  }
  return out;
}

enum class Kind { kLetter, kNumber, kSpace, kOther };

Kind kind_of(std::int32_t cp) {
  if (cp < 0) return Kind::kOther;
  if (u_isUWhiteSpace(cp)) return Kind::kSpace;
  const auto mask = U_GET_GC_MASK(cp);
  if (mask & U_GC_L_MASK) return Kind::kLetter;
  if (mask & U_GC_N_MASK) return Kind::kNumber;
  return Kind::kOther;
}

// GPT-2's pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// applied by hand (std::regex has no Unicode classes). Returns [begin, end) code point spans.
std::vector<std::pair<std::size_t, std::size_t>> pretokenize(const std::vector<CodePoint>& cps) {
  std::vector<Kind> kinds;
  for (const auto& c : cps) kinds.push_back(kind_of(c.value));
  const auto n = cps.size();
  auto run_end = [&](std::size_t j, Kind k) {
    while (j < n && kinds[j] == k) ++j;
    return j;
  };
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t i = 0;
  while (i < n) {
    if (cps[i].value == '\'') {
      std::size_t len = 0;
      for (const char* suffix : {"s", "t", "re", "ve", "m", "ll", "d"}) {
        std::size_t k = 0;
        while (suffix[k] != 0 && i + 1 + k < n && cps[i + 1 + k].value == suffix[k]) ++k;
        if (suffix[k] == 0) {
          len = 1 + k;
          break;
        }
      }
      if (len > 0) {
        out.emplace_back(i, i + len);
        i += len;
        continue;
      }
    }
    const std::size_t start = i;
    const std::size_t j = (cps[i].value == ' ' && i + 1 < n && kinds[i + 1] != Kind::kSpace) ? i + 1 : i;
    if (kinds[j] != Kind::kSpace) {
      i = run_end(j, kinds[j]);
    } else {
      // \s+(?!\S): a whitespace run stops one short of a following non-space, so that space
      // can lead the next word; a lone space before a non-space falls to \s+.
      const std::size_t end = run_end(i, Kind::kSpace);
      i = (end < n && end - i > 1) ? end - 1 : end;
    }
    out.emplace_back(start, i);
  }
  return out;
}

}  // namespace

struct GPT2Tokenizer::Impl {
  std::unordered_map<std::string, std::int64_t> encoder;
  std::vector<std::string> decoder;
  std::unordered_map<std::string, int> merge_ranks;  // "left right" -> rank
  std::string byte_to_symbol[256];
  std::unordered_map<std::string, unsigned char> symbol_to_byte;
  std::int64_t eos = -1;

  Impl() {
    // GPT-2's bytes_to_unicode: printable bytes keep their code point, the rest move to 256+.
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      byte_to_symbol[b] = utf8(printable ? b : 256 + shifted++);
      symbol_to_byte[byte_to_symbol[b]] = static_cast<unsigned char>(b);
    }
  }

  void bpe(const std::string& piece, std::vector<std::int64_t>& ids) const {
    std::vector<std::string> symbols;
    for (unsigned char b : piece) symbols.push_back(byte_to_symbol[b]);
    while (symbols.size() > 1) {
      int best = INT_MAX;
      std::size_t at = 0;
      for (std::size_t k = 0; k + 1 < symbols.size(); ++k) {
        const auto it = merge_ranks.find(symbols[k] + " " + symbols[k + 1]);
        if (it != merge_ranks.end() && it->second < best) {
          best = it->second;
          at = k;
        }
      }
      if (best == INT_MAX) break;
      const std::string left = symbols[at], right = symbols[at + 1];
      std::vector<std::string> merged;
      for (std::size_t k = 0; k < symbols.size(); ++k) {
        if (k + 1 < symbols.size() && symbols[k] == left && symbols[k + 1] == right) {
          merged.push_back(left + right);
          ++k;
        } else {
          merged.push_back(symbols[k]);
        }
      }
      symbols = std::move(merged);
    }
    for (const auto& s : symbols) {
      const auto it = encoder.find(s);
      if (it == encoder.end())
        throw Error("the GPT-2 vocabulary has no entry for BPE symbol '" + s +
                    "'; the vocab and merges files do not belong together");
      ids.push_back(it->second);
    }
  }

  void encode_plain(const std::string& text, std::vector<std::int64_t>& ids) const {
    const auto cps = decode_utf8(text);
    for (const auto& [b, e] : pretokenize(cps))
      bpe(text.substr(cps[b].begin, cps[e - 1].end - cps[b].begin), ids);
  }
};

GPT2Tokenizer::GPT2Tokenizer(const std::string& vocab_path, const std::string& merges_path)
    : impl_(std::make_unique<Impl>()) {
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_file(vocab_path));
  } catch (const nlohmann::json::exception& e) {
    throw FileError(vocab_path, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!vocab.is_object() || vocab.empty())
    throw FileError(vocab_path, "expected a non-empty JSON object mapping tokens to ids");
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_unsigned())
      throw FileError(vocab_path, "token '" + token + "' has id " + id.dump() +
                                      "; ids must be non-negative integers");
    const auto value = id.get<std::int64_t>();
    impl_->encoder[token] = value;
    if (static_cast<std::size_t>(value) >= impl_->decoder.size()) impl_->decoder.resize(value + 1);
    impl_->decoder[value] = token;
  }
  for (int b = 0; b < 256; ++b)
    if (!impl_->encoder.count(impl_->byte_to_symbol[b]))
      throw FileError(vocab_path, "has no token for byte " + std::to_string(b) +
                                      "; a byte-level BPE vocabulary covers all 256 bytes");
  const auto eos = impl_->encoder.find(kEndOfText);
  if (eos != impl_->encoder.end()) impl_->eos = eos->second;

  std::istringstream merges(read_file(merges_path));
  std::string line;
  int line_number = 0;
  int rank = 0;
  while (std::getline(merges, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_number == 1 && line.rfind("#version", 0) == 0)) continue;
    const auto space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos)
      throw FileError(merges_path, "line " + std::to_string(line_number) +
                                       ": expected two symbols separated by one space, got '" +
                                       line + "'");
    impl_->merge_ranks.emplace(line, rank++);
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

std::string bundled_vocabulary_dir() {
  const char* override_dir = std::getenv("ACCEL_GPT2_VOCAB_DIR");
  return override_dir != nullptr && *override_dir != 0 ? override_dir : ACCEL_GPT2_DATA_DIR;
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
    for (const auto& c : decode_utf8(token)) {
      const auto it = impl_->symbol_to_byte.find(token.substr(c.begin, c.end - c.begin));
      if (it == impl_->symbol_to_byte.end())
        throw Error("GPT-2 token " + std::to_string(id) + " holds a character outside the "
                    "byte alphabet; the vocabulary file is not a byte-level BPE vocabulary");
      out += static_cast<char>(it->second);
    }
  }
  return out;
}

std::int64_t GPT2Tokenizer::vocab_size() const { return static_cast<std::int64_t>(impl_->encoder.size()); }
std::int64_t GPT2Tokenizer::eos_token_id() const { return impl_->eos; }

}  // namespace accel::models
