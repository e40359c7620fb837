#include "accel/models/tokenizer_json.h"

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "bpe.h"
#include "json_keys.h"

#include <nlohmann/json.hpp>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace accel::models {
// Named, where an anonymous namespace would do: classes with external linkage below hold these
// types, which a unity build reports (-Wsubobject-linkage). The using-directive makes it read
// as the anonymous namespace would.
namespace tokenizer_json_detail {

// tokenizer.json stores ids as unsigned 32-bit numbers (the tokenizers library reads them as u32).
constexpr std::int64_t kLargestId = 0xFFFFFFFFLL;

using nlohmann::json;
const std::string kMetaspace = "\xE2\x96\x81";  // U+2581, sentencepiece's word boundary

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

std::string nfc(const std::string& text) {
  // ASCII is its own NFC; most text is, and the ICU round trip is the costly part.
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return text;
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* normalizer = unorm2_getNFCInstance(&status);
  std::int32_t length = 0;
  std::vector<UChar> utf16(text.size() + 1);
  u_strFromUTF8WithSub(utf16.data(), static_cast<std::int32_t>(utf16.size()), &length, text.data(),
                       static_cast<std::int32_t>(text.size()), 0xFFFD, nullptr, &status);
  std::vector<UChar> normalized(static_cast<std::size_t>(length) * 3 + 16);
  const auto n = unorm2_normalize(normalizer, utf16.data(), length, normalized.data(),
                                  static_cast<std::int32_t>(normalized.size()), &status);
  std::string out(static_cast<std::size_t>(n) * 3 + 4, '\0');
  std::int32_t written = 0;
  u_strToUTF8(out.data(), static_cast<std::int32_t>(out.size()), &written, normalized.data(), n, &status);
  if (U_FAILURE(status)) return text;  // unreachable for valid buffers; keep the text as given
  out.resize(static_cast<std::size_t>(written));
  return out;
}

// "<0x0A>" -> 10; nullopt for any other token.
std::optional<unsigned char> byte_token(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return std::nullopt;
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(token[3]), lo = hex(token[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<unsigned char>(hi * 16 + lo);
}

bool is_space_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

struct AddedToken {
  std::string content;
  std::int64_t id;
  bool special, lstrip, rstrip;
};

struct Normalizer {
  enum class Kind { kNfc, kPrepend, kReplace } kind;
  std::string a, b;
};

enum class Split { kNone, kGpt2, kLlama3, kQwen };

struct Decoder {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind;
  std::string a, b;
  std::size_t start = 0, stop = 0;
  bool strip_first_space = false;  // Metaspace with a prepend scheme
};

// ByteLevel decoder: each piece made of byte-alphabet characters becomes those bytes; the
// concatenation is then read as UTF-8 (invalid sequences replaced).
std::string decode_byte_level(const std::vector<std::string>& pieces) {
  std::string bytes;
  const auto& byte_of = detail::byte_alphabet().byte_of;
  for (const auto& piece : pieces) {
    std::string decoded;
    bool all_bytes = true;
    for (const auto& c : detail::decode_utf8(piece)) {
      const auto it = byte_of.find(piece.substr(c.begin, c.end - c.begin));
      if (it == byte_of.end()) {
        all_bytes = false;
        break;
      }
      decoded += static_cast<char>(it->second);
    }
    bytes += all_bytes ? decoded : piece;
  }
  return detail::valid_utf8(bytes);
}

// ByteFallback decoder: runs of <0xNN> tokens become their text when the bytes are valid UTF-8,
// else one U+FFFD per byte; other pieces pass unchanged.
std::vector<std::string> decode_byte_fallback(const std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  std::string run;
  std::size_t run_length = 0;
  auto end_run = [&] {
    if (run_length == 0) return;
    const auto text = detail::valid_utf8(run);
    if (text == run) {
      out.push_back(text);
    } else {
      for (std::size_t k = 0; k < run_length; ++k) out.push_back("\xEF\xBF\xBD");
    }
    run.clear();
    run_length = 0;
  };
  for (const auto& piece : pieces) {
    if (const auto b = byte_token(piece)) {
      run += static_cast<char>(*b);
      ++run_length;
    } else {
      end_run();
      out.push_back(piece);
    }
  }
  end_run();
  return out;
}

}  // namespace tokenizer_json_detail
using namespace tokenizer_json_detail;

struct TokenizerJson::Impl {
  std::string path;
  std::unordered_map<std::string, std::int64_t> vocab;
  // By id. A map, not a vector: ids are any 32-bit values (the format allows gaps), and a vector
  // sized by the largest id would let one stray id allocate gigabytes.
  std::unordered_map<std::int64_t, std::string> tokens;
  std::int64_t largest_id = -1;
  detail::MergeTable merges;
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  std::int64_t unk = -1;
  std::vector<AddedToken> added;  // longest first, so a match is the longest at its position
  std::vector<std::size_t> added_by_first_byte[256];  // indexes into `added`, longest first
  std::unordered_set<std::int64_t> special_ids;
  std::vector<Normalizer> normalizers;
  Split split = Split::kNone;
  bool byte_level = false, add_prefix_space = false;
  bool metaspace = false, metaspace_split = false;
  std::string metaspace_scheme = "always";
  std::vector<std::int64_t> prefix_ids, suffix_ids;  // TemplateProcessing's single template
  std::vector<Decoder> decoders;
  bool clean_up = false;

  [[noreturn]] void fail(const std::string& problem) const { throw FileError(path, problem); }

  std::string lookup_token(std::int64_t id) const {
    const auto it = tokens.find(id);
    return it == tokens.end() ? std::string() : it->second;
  }

  void set_token(const std::string& token, std::int64_t id) {
    if (id < 0 || id > kLargestId)
      fail("token " + text::quote(token) + " has the id " + std::to_string(id) + "; ids are 0.." +
           std::to_string(kLargestId));
    vocab[token] = id;
    tokens[id] = token;
    largest_id = std::max(largest_id, id);
  }

  std::int64_t require(const std::string& token, const std::string& where) const {
    const auto it = vocab.find(token);
    if (it == vocab.end()) fail(where + " names token " + text::quote(token) + ", which the vocabulary lacks");
    return it->second;
  }

  void load_model(const json& m) {
    std::string type = "BPE";
    detail::read_key(m, "type", type, path + " model");
    if (type != "BPE") fail("model type " + text::quote(type) + " is not supported; supported: BPE");
    if (!m.contains("vocab") || !m["vocab"].is_object()) fail("model.vocab is not an object");
    for (const auto& [token, id] : m["vocab"].items()) {
      if (!id.is_number_integer()) fail("model.vocab[" + text::quote(token) + "] is " + text::quote(id.dump()) + "; expected an id");
      set_token(token, id.get<std::int64_t>());
    }
    detail::read_key(m, "byte_fallback", byte_fallback, path + " model");
    detail::read_key(m, "fuse_unk", fuse_unk, path + " model");
    detail::read_key(m, "ignore_merges", ignore_merges, path + " model");
    std::string unk_token;
    detail::read_key(m, "unk_token", unk_token, path + " model");
    if (!unk_token.empty()) unk = require(unk_token, "model.unk_token");
    for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      std::string value;
      detail::read_key(m, affix, value, path + " model");
      if (!value.empty()) fail(std::string("model.") + affix + " " + text::quote(value) + " is not supported");
    }
    if (!m.contains("merges") || !m["merges"].is_array()) fail("model.merges is not a list");
    std::size_t index = 0;
    for (const auto& merge : m["merges"]) {
      std::string left, right;
      if (merge.is_string()) {
        const auto text = merge.get<std::string>();
        const auto space = text.find(' ', 1);
        if (space == std::string::npos) fail("model.merges[" + std::to_string(index) + "] " + text::quote(text) + " is not two tokens");
        left = text.substr(0, space);
        right = text.substr(space + 1);
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        left = merge[0].get<std::string>();
        right = merge[1].get<std::string>();
      } else {
        fail("model.merges[" + std::to_string(index) + "] is " + text::quote(merge.dump()) +
             "; expected \"a b\" or [\"a\", \"b\"]");
      }
      const auto where = "model.merges[" + std::to_string(index++) + "]";
      const auto left_id = require(left, where);
      const auto right_id = require(right, where);
      merges.add(left_id, right_id, require(left + right, where));
    }
  }

  void load_added(const json& list) {
    for (const auto& t : list) {
      AddedToken token{"", -1, false, false, false};
      detail::read_key(t, "content", token.content, path + " added_tokens");
      detail::read_key(t, "id", token.id, path + " added_tokens");
      detail::read_key(t, "special", token.special, path + " added_tokens");
      detail::read_key(t, "lstrip", token.lstrip, path + " added_tokens");
      detail::read_key(t, "rstrip", token.rstrip, path + " added_tokens");
      if (token.content.empty()) fail("added_tokens holds an entry without content");
      set_token(token.content, token.id);
      if (token.special) special_ids.insert(token.id);
      added.push_back(token);
    }
    std::stable_sort(added.begin(), added.end(), [](const AddedToken& a, const AddedToken& b) {
      return a.content.size() > b.content.size();
    });
    for (std::size_t k = 0; k < added.size(); ++k)
      added_by_first_byte[static_cast<unsigned char>(added[k].content[0])].push_back(k);
  }

  // Each component reader checks the types of the keys it reads: a hostile file gets an error
  // naming the component and key, never nlohmann's own exception.
  template <typename T>
  T key_or(const json& j, const char* key, T fallback, const char* component) const {
    return detail::value_or(j, key, std::move(fallback), path + " " + component);
  }

  json list_key(const json& j, const char* key, const char* component) const {
    return detail::list_or_empty(j, key, path + " " + component);
  }

  void load_normalizer(const json& n) {
    if (n.is_null()) return;
    const char* const where = "normalizer";
    const auto type = key_or(n, "type", std::string(), where);
    if (type == "Sequence") {
      for (const auto& item : list_key(n, "normalizers", where)) load_normalizer(item);
    } else if (type == "NFC") {
      normalizers.push_back({Normalizer::Kind::kNfc, "", ""});
    } else if (type == "Prepend") {
      normalizers.push_back({Normalizer::Kind::kPrepend, key_or(n, "prepend", std::string(), where), ""});
    } else if (type == "Replace") {
      normalizers.push_back({Normalizer::Kind::kReplace, string_pattern(n, where), key_or(n, "content", std::string(), where)});
    } else {
      fail("normalizer type " + text::quote(type) + " is not supported; supported: Sequence, NFC, Prepend, Replace");
    }
  }

  std::string string_pattern(const json& item, const char* where) const {
    const auto pattern = key_or(item, "pattern", json(), where);
    if (!pattern.is_object() || !pattern.contains("String") || !pattern["String"].is_string())
      fail(std::string(where) + " Replace with pattern " + text::quote(pattern.dump()) +
           " is not supported; supported: {\"String\": ...}");
    return pattern["String"].get<std::string>();
  }

  void load_pre_tokenizer(const json& p) {
    if (p.is_null()) return;
    const char* const where = "pre_tokenizer";
    const auto type = key_or(p, "type", std::string(), where);
    if (type == "Sequence") {
      for (const auto& item : list_key(p, "pretokenizers", where)) load_pre_tokenizer(item);
    } else if (type == "ByteLevel") {
      byte_level = true;
      add_prefix_space = key_or(p, "add_prefix_space", false, where);
      if (key_or(p, "use_regex", true, where)) set_split(Split::kGpt2);
    } else if (type == "Split") {
      load_split(p);
    } else if (type == "Metaspace") {
      metaspace = true;
      metaspace_split = key_or(p, "split", true, where);
      const bool add_prefix = key_or(p, "add_prefix_space", true, where);
      metaspace_scheme = key_or(p, "prepend_scheme", std::string(add_prefix ? "always" : "never"), where);
      if (key_or(p, "replacement", kMetaspace, where) != kMetaspace)
        fail("pre_tokenizer Metaspace supports replacement U+2581 only");
    } else {
      fail("pre_tokenizer type " + text::quote(type) + " is not supported; supported: Sequence, ByteLevel, Split, Metaspace");
    }
  }

  void load_split(const json& p) {
    const char* const where = "pre_tokenizer";
    const auto pattern = key_or(p, "pattern", json(), where);
    const auto regex = pattern.is_object() ? key_or(pattern, "Regex", std::string(), where) : std::string();
    static const std::string kLetters = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|";
    static const std::string kRest = "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    if (regex == kLetters + "\\p{N}{1,3}" + kRest) set_split(Split::kLlama3);
    else if (regex == kLetters + "\\p{N}" + kRest) set_split(Split::kQwen);
    else if (regex == "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+")
      set_split(Split::kGpt2);
    else
      fail("pre_tokenizer Split pattern " + text::quote(pattern.dump()) +
           " is not supported; supported: the GPT-2, Llama 3 and Qwen patterns");
    if (key_or(p, "behavior", std::string("Isolated"), where) != "Isolated" || key_or(p, "invert", false, where))
      fail("pre_tokenizer Split supports behavior Isolated without invert only");
  }

  void set_split(Split s) {
    if (split != Split::kNone && split != s) fail("pre_tokenizer has two different Split patterns");
    split = s;
  }

  void load_decoder(const json& d) {
    if (d.is_null()) return;
    const char* const where = "decoder";
    const auto type = key_or(d, "type", std::string(), where);
    if (type == "Sequence") {
      for (const auto& item : list_key(d, "decoders", where)) load_decoder(item);
    } else if (type == "ByteLevel") {
      decoders.push_back({Decoder::Kind::kByteLevel, "", ""});
    } else if (type == "Replace") {
      decoders.push_back({Decoder::Kind::kReplace, string_pattern(d, where), key_or(d, "content", std::string(), where)});
    } else if (type == "ByteFallback") {
      decoders.push_back({Decoder::Kind::kByteFallback, "", ""});
    } else if (type == "Fuse") {
      decoders.push_back({Decoder::Kind::kFuse, "", ""});
    } else if (type == "Strip") {
      Decoder strip{Decoder::Kind::kStrip, key_or(d, "content", std::string(" "), where), ""};
      const auto start = key_or(d, "start", std::int64_t{0}, where), stop = key_or(d, "stop", std::int64_t{0}, where);
      if (strip.a.empty() || start < 0 || stop < 0)
        fail("decoder Strip needs a content character and counts start, stop >= 0; got content " + text::quote(strip.a) +
             ", start " + std::to_string(start) + ", stop " + std::to_string(stop));
      strip.start = static_cast<std::size_t>(start);
      strip.stop = static_cast<std::size_t>(stop);
      decoders.push_back(strip);
    } else if (type == "Metaspace") {
      Decoder m{Decoder::Kind::kMetaspace, "", ""};
      const bool add_prefix = key_or(d, "add_prefix_space", true, where);
      m.strip_first_space = key_or(d, "prepend_scheme", std::string(add_prefix ? "always" : "never"), where) != "never";
      decoders.push_back(m);
    } else {
      fail("decoder type " + text::quote(type) + " is not supported; supported: Sequence, ByteLevel, Replace, "
           "ByteFallback, Fuse, Strip, Metaspace");
    }
  }

  void load_post_processor(const json& p) {
    if (p.is_null()) return;
    const char* const where = "post_processor";
    const auto type = key_or(p, "type", std::string(), where);
    if (type == "ByteLevel") return;  // offsets only
    if (type == "Sequence") {
      for (const auto& item : list_key(p, "processors", where)) load_post_processor(item);
      return;
    }
    if (type != "TemplateProcessing")
      fail("post_processor type " + text::quote(type) + " is not supported; supported: TemplateProcessing, ByteLevel, Sequence");
    const auto specials = key_or(p, "special_tokens", json::object(), where);
    bool after_sequence = false;
    for (const auto& piece : list_key(p, "single", where)) {
      if (piece.is_object() && piece.contains("Sequence")) {
        after_sequence = true;
        continue;
      }
      const auto special = key_or(piece, "SpecialToken", json::object(), where);
      const auto name = key_or(special, "id", std::string(), where);
      if (!specials.is_object() || !specials.contains(name))
        fail("post_processor template names special token " + text::quote(name) + " it does not define");
      for (const auto& id : list_key(specials[name], "ids", where)) {
        if (!id.is_number_integer()) fail("post_processor special token " + text::quote(name) + " has the id " + text::quote(id.dump()));
        (after_sequence ? suffix_ids : prefix_ids).push_back(id.get<std::int64_t>());
      }
    }
  }
  std::string normalize(std::string text) const {
    for (const auto& n : normalizers) {
      if (n.kind == Normalizer::Kind::kNfc) text = nfc(text);
      else if (n.kind == Normalizer::Kind::kPrepend) text = text.empty() ? text : n.a + text;
      else text = replace_all(text, n.a, n.b);
    }
    return text;
  }

  // Pre-tokens of one segment of normalized text (the first segment of the input or not).
  std::vector<std::string> pre_tokenize(std::string text, bool first) const {
    if (metaspace) {
      text = replace_all(text, " ", kMetaspace);
      const bool prepend = metaspace_scheme == "always" || (metaspace_scheme == "first" && first);
      if (prepend && text.compare(0, kMetaspace.size(), kMetaspace) != 0) text = kMetaspace + text;
      if (!metaspace_split) return {text};
      std::vector<std::string> words;  // each word starts at a boundary mark
      std::size_t start = 0;
      for (std::size_t at = text.find(kMetaspace, 1); at != std::string::npos; at = text.find(kMetaspace, at + 1)) {
        words.push_back(text.substr(start, at - start));
        start = at;
      }
      words.push_back(text.substr(start));
      return words;
    }
    if (add_prefix_space && !text.empty() && text[0] != ' ') text = " " + text;
    if (split == Split::kNone) return {text};
    const auto cps = detail::decode_utf8(text);
    const auto spans = split == Split::kGpt2 ? detail::split_gpt2(cps)
                                            : detail::split_llama3(cps, split == Split::kLlama3 ? 3 : 1);
    std::vector<std::string> out;
    for (const auto& [b, e] : spans) out.push_back(text.substr(cps[b].begin, cps[e - 1].end - cps[b].begin));
    return out;
  }

  void bpe(const std::string& piece, std::vector<std::int64_t>& ids) const {
    const auto word = byte_level ? detail::byte_alphabet().encode(piece) : piece;
    if (ignore_merges) {
      const auto whole = vocab.find(word);
      if (whole != vocab.end()) {
        ids.push_back(whole->second);
        return;
      }
    }
    std::vector<std::int64_t> symbols;
    for (const auto& c : detail::decode_utf8(word)) {
      const auto found = vocab.find(word.substr(c.begin, c.end - c.begin));
      if (found != vocab.end()) {
        symbols.push_back(found->second);
        continue;
      }
      bool fell_back = byte_fallback;
      for (std::size_t k = c.begin; fell_back && k < c.end; ++k) {
        static const char* kHex = "0123456789ABCDEF";
        const auto b = static_cast<unsigned char>(word[k]);
        fell_back = vocab.count(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">") > 0;
      }
      if (fell_back) {
        for (std::size_t k = c.begin; k < c.end; ++k) {
          static const char* kHex = "0123456789ABCDEF";
          const auto b = static_cast<unsigned char>(word[k]);
          symbols.push_back(vocab.at(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">"));
        }
      } else if (unk >= 0) {
        if (!(fuse_unk && !symbols.empty() && symbols.back() == unk)) symbols.push_back(unk);
      } else {
        throw UsageError("text holds " + text::quote(word.substr(c.begin, c.end - c.begin)) + ", which " + path +
                         " can neither tokenize nor map to an unknown token");
      }
    }
    merges.apply(symbols);
    ids.insert(ids.end(), symbols.begin(), symbols.end());
  }

  // The added token that starts at `at`, longest first; nullptr when none does.
  const AddedToken* added_at(const std::string& text, std::size_t at) const {
    for (const auto k : added_by_first_byte[static_cast<unsigned char>(text[at])])
      if (text.compare(at, added[k].content.size(), added[k].content) == 0) return &added[k];
    return nullptr;
  }

  std::vector<std::int64_t> encode(const std::string& text) const {
    std::vector<std::int64_t> ids;
    std::size_t segment_start = 0;
    bool first = true;
    auto flush = [&](std::size_t end) {
      if (end > segment_start) {
        for (const auto& piece : pre_tokenize(normalize(text.substr(segment_start, end - segment_start)), first))
          bpe(piece, ids);
      }
      first = false;
    };
    std::size_t at = 0;
    while (at < text.size()) {
      const auto* token = added_at(text, at);
      if (token == nullptr) {
        ++at;
        continue;
      }
      std::size_t begin = at, end = at + token->content.size();
      if (token->lstrip)
        while (begin > segment_start && is_space_byte(text[begin - 1])) --begin;
      if (token->rstrip)
        while (end < text.size() && is_space_byte(text[end])) ++end;
      flush(begin);
      ids.push_back(token->id);
      segment_start = at = end;
    }
    flush(text.size());
    return ids;
  }

  std::vector<std::string> run_decoders(std::vector<std::string> pieces) const {
    for (const auto& d : decoders) {
      switch (d.kind) {
        case Decoder::Kind::kByteLevel:
          pieces = {decode_byte_level(pieces)};
          break;
        case Decoder::Kind::kReplace:
          for (auto& piece : pieces) piece = replace_all(piece, d.a, d.b);
          break;
        case Decoder::Kind::kByteFallback:
          pieces = decode_byte_fallback(pieces);
          break;
        case Decoder::Kind::kFuse: {
          std::string all;
          for (const auto& piece : pieces) all += piece;
          pieces = {all};
          break;
        }
        case Decoder::Kind::kStrip:
          for (auto& piece : pieces) {
            std::size_t begin = 0, end = piece.size();
            for (std::size_t k = 0; k < d.start && begin < end && piece.compare(begin, d.a.size(), d.a) == 0; ++k)
              begin += d.a.size();
            for (std::size_t k = 0; k < d.stop && end >= begin + d.a.size() &&
                                    piece.compare(end - d.a.size(), d.a.size(), d.a) == 0;
                 ++k)
              end -= d.a.size();
            piece = piece.substr(begin, end - begin);
          }
          break;
        case Decoder::Kind::kMetaspace:
          for (std::size_t k = 0; k < pieces.size(); ++k) {
            pieces[k] = replace_all(pieces[k], kMetaspace, " ");
            if (k == 0 && d.strip_first_space && !pieces[k].empty() && pieces[k][0] == ' ')
              pieces[k].erase(0, 1);
          }
          break;
      }
    }
    return pieces;
  }
};

TokenizerJson::TokenizerJson(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenizerJson::~TokenizerJson() = default;
TokenizerJson::TokenizerJson(TokenizerJson&&) noexcept = default;
TokenizerJson& TokenizerJson::operator=(TokenizerJson&&) noexcept = default;

TokenizerJson TokenizerJson::from_file(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const std::string file_text = detail::read_text_file(path, "tokenizer file");
  if (const auto problem = text::json_nesting_problem(file_text)) throw FileError(path, *problem);
  json j;
  try {
    j = json::parse(file_text);
  } catch (const json::exception& e) {
    throw FileError(path, "not valid JSON (" + text::excerpt(e.what()) + ")");
  }
  if (!j.is_object() || !j.contains("model")) impl->fail("expected a tokenizer.json object with a \"model\"");
  impl->load_model(j["model"]);
  impl->load_added(impl->list_key(j, "added_tokens", "file"));
  impl->load_normalizer(impl->key_or(j, "normalizer", json(), "file"));
  impl->load_pre_tokenizer(impl->key_or(j, "pre_tokenizer", json(), "file"));
  impl->load_post_processor(impl->key_or(j, "post_processor", json(), "file"));
  impl->load_decoder(impl->key_or(j, "decoder", json(), "file"));
  if (impl->byte_level)
    for (int b = 0; b < 256; ++b)
      impl->require(detail::byte_alphabet().symbol[b], "the ByteLevel pre-tokenizer (byte " + std::to_string(b) + ")");
  return TokenizerJson(std::move(impl));
}

std::vector<std::int64_t> TokenizerJson::encode(const std::string& text, bool add_special_tokens) const {
  auto ids = impl_->encode(text);
  if (!add_special_tokens) return ids;
  ids.insert(ids.begin(), impl_->prefix_ids.begin(), impl_->prefix_ids.end());
  ids.insert(ids.end(), impl_->suffix_ids.begin(), impl_->suffix_ids.end());
  return ids;
}

std::string TokenizerJson::decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> pieces;
  for (const auto id : ids) {
    const auto token = impl_->lookup_token(id);
    if (token.empty()) {
      if (skip_special_tokens) continue;
      throw UsageError("token id " + std::to_string(id) + " is not in the vocabulary of " + impl_->path +
                       " (ids 0.." + std::to_string(impl_->largest_id) + ")");
    }
    if (skip_special_tokens && impl_->special_ids.count(id)) continue;
    pieces.push_back(token);
  }
  std::string text;
  for (const auto& piece : impl_->run_decoders(std::move(pieces))) text += piece;
  if (!impl_->clean_up) return text;
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
           {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}})
    text = replace_all(text, from, to);
  return text;
}

std::int64_t TokenizerJson::vocab_size() const { return impl_->largest_id + 1; }

std::int64_t TokenizerJson::token_id(const std::string& token) const {
  const auto it = impl_->vocab.find(token);
  return it == impl_->vocab.end() ? -1 : it->second;
}

void TokenizerJson::set_clean_up_tokenization_spaces(bool on) { impl_->clean_up = on; }

void TokenizerJson::add_bos_token(const std::string& token) {
  const auto id = token_id(token);
  if (id < 0) throw UsageError("bos_token '" + token + "' is not a token of " + impl_->path);
  auto& prefix = impl_->prefix_ids;
  if (std::find(prefix.begin(), prefix.end(), id) == prefix.end()) prefix.insert(prefix.begin(), id);
}

void TokenizerJson::add_eos_token(const std::string& token) {
  const auto id = token_id(token);
  if (id < 0) throw UsageError("eos_token '" + token + "' is not a token of " + impl_->path);
  auto& suffix = impl_->suffix_ids;
  if (std::find(suffix.begin(), suffix.end(), id) == suffix.end()) suffix.push_back(id);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (fs::exists(d / "tokenizer.json")) {
    auto tokenizer = std::make_unique<TokenizerJson>(TokenizerJson::from_file((d / "tokenizer.json").string()));
    const auto config_path = d / "tokenizer_config.json";
    if (fs::exists(config_path)) {
      const auto config = detail::parse_json_object(detail::read_text_file(config_path.string(), "tokenizer config"),
                                                    config_path.string());
      const auto source = config_path.string();
      bool clean_up = false;
      detail::read_key(config, "clean_up_tokenization_spaces", clean_up, source);
      tokenizer->set_clean_up_tokenization_spaces(clean_up);
      // bos_token / eos_token: a string, or an object with "content" in older files.
      auto special = [&](const char* key) {
        if (!config.contains(key) || config[key].is_null()) return std::string();
        const auto& value = config[key];
        if (value.is_object()) return value.value("content", std::string());
        std::string token;
        detail::read_key(config, key, token, source);
        return token;
      };
      bool add_bos = false, add_eos = false;
      detail::read_key(config, "add_bos_token", add_bos, source);
      detail::read_key(config, "add_eos_token", add_eos, source);
      if (add_bos && !special("bos_token").empty()) tokenizer->add_bos_token(special("bos_token"));
      if (add_eos && !special("eos_token").empty()) tokenizer->add_eos_token(special("eos_token"));
    }
    return tokenizer;
  }
  if ((fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt")) ||
      (fs::exists(d / "encoder.json") && fs::exists(d / "vocab.bpe")))
    return std::make_unique<GPT2Tokenizer>(GPT2Tokenizer::from_directory(dir));
  throw FileError(dir, "no tokenizer: expected tokenizer.json, or vocab.json + merges.txt");
}

}  // namespace accel::models
