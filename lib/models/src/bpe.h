#pragma once
// What the byte-level (GPT-2) and tokenizer.json tokenizers share: UTF-8 walking, GPT-2's byte
// alphabet, the pre-tokenisation patterns of GPT-2, Llama 3 and Qwen written out by hand over
// the classes of unicode_classes.h (std::regex has none), and BPE merging by rank. Private to
// lib/models.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace accel::models::detail {

// One code point of a text: its bytes [begin, end) and its value (-1 for a byte that is not
// valid UTF-8; such a byte counts as "other" and still round-trips).
struct CodePoint {
  std::size_t begin, end;
  std::int32_t value;
};

std::vector<CodePoint> decode_utf8(const std::string& s);
std::string encode_utf8(std::uint32_t cp);

// Bytes as UTF-8 text, each invalid sequence (maximal subpart) replaced by U+FFFD.
std::string valid_utf8(const std::string& bytes);

// GPT-2's bytes_to_unicode: every byte as a printable code point, and back.
struct ByteAlphabet {
  std::string symbol[256];
  std::unordered_map<std::string, unsigned char> byte_of;
  ByteAlphabet();
  std::string encode(const std::string& bytes) const;
};
const ByteAlphabet& byte_alphabet();

using Spans = std::vector<std::pair<std::size_t, std::size_t>>;  // [begin, end) code point indexes

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
Spans split_gpt2(const std::vector<CodePoint>& cps);
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,digits}|
// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+   (Llama 3: digits 3; Qwen: digits 1)
Spans split_llama3(const std::vector<CodePoint>& cps, std::size_t digits);

// Merge ranks keyed by the ids of the pair; the merged symbol's id comes with its rank.
class MergeTable {
 public:
  // Ranks follow the order of addition; a pair added again keeps its first rank.
  void add(std::int64_t left, std::int64_t right, std::int64_t merged);
  std::size_t size() const { return size_; }
  // Applies the merges to `ids` lowest rank first (leftmost first among equals), in
  // O(n log n) so a long run of letters costs no more than its length warrants.
  void apply(std::vector<std::int64_t>& ids) const;

 private:
  // Open addressing with linear probing over a power-of-two table at most half full: the
  // lookup of every adjacent pair is the hot loop of encoding, and std::unordered_map's
  // chained buckets and modulo made it a third of the time.
  struct Slot {
    std::uint64_t key;
    std::uint32_t rank;  // kFree when the slot is empty
    std::int64_t merged;
  };
  static constexpr std::uint32_t kFree = 0xFFFFFFFF;
  static std::uint64_t key(std::int64_t left, std::int64_t right) {
    return (static_cast<std::uint64_t>(left) << 32) | static_cast<std::uint32_t>(right);
  }
  std::size_t slot_of(std::uint64_t key) const;  // the key's slot, or the free one it would take
  void grow();

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace accel::models::detail
