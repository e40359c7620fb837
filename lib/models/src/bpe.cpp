#include "bpe.h"

#include "unicode_classes.h"

#include <algorithm>
#include <queue>

namespace accel::models::detail {
namespace {

std::vector<CharClass> kinds_of(const std::vector<CodePoint>& cps) {
  std::vector<CharClass> kinds;
  kinds.reserve(cps.size());
  for (const auto& c : cps) kinds.push_back(char_class(c.value));
  return kinds;
}

// The length of the contraction ('s, 't, 're, 've, 'm, 'll, 'd) at i, or 0.
std::size_t contraction_at(const std::vector<CodePoint>& cps, std::size_t i, bool ignore_case) {
  if (cps[i].value != '\'') return 0;
  for (const char* suffix : {"s", "t", "re", "ve", "m", "ll", "d"}) {
    std::size_t k = 0;
    while (suffix[k] != 0 && i + 1 + k < cps.size()) {
      auto c = cps[i + 1 + k].value;
      if (ignore_case && c >= 'A' && c <= 'Z') c += 'a' - 'A';
      if (c != suffix[k]) break;
      ++k;
    }
    if (suffix[k] == 0) return 1 + k;
  }
  return 0;
}

bool is_newline(std::int32_t cp) { return cp == '\r' || cp == '\n'; }

// (\s+(?!\S)|\s+) at a whitespace run [i, end): a run stops one short of a following
// non-space, so that space can lead the next piece; a lone space before one is taken whole.
std::size_t whitespace_end(std::size_t i, std::size_t end, std::size_t n) {
  return (end < n && end - i > 1) ? end - 1 : end;
}

}  // namespace

std::vector<CodePoint> decode_utf8(const std::string& s) {
  std::vector<CodePoint> out;
  out.reserve(s.size());
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

std::string encode_utf8(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

std::string valid_utf8(const std::string& bytes) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  const auto n = bytes.size();
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  while (i < n) {
    const auto b = at(i);
    if (b < 0x80) {
      out += static_cast<char>(b);
      ++i;
      continue;
    }
    // The lead byte fixes the length and the range of the second byte (Unicode table 3-7).
    std::size_t len = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b == 0xE0) len = 3, low = 0xA0;
    else if (b == 0xED) len = 3, high = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF) len = 3;
    else if (b == 0xF0) len = 4, low = 0x90;
    else if (b == 0xF4) len = 4, high = 0x8F;
    else if (b >= 0xF1 && b <= 0xF3) len = 4;
    std::size_t valid = len == 0 ? 0 : 1;
    while (valid > 0 && valid < len && i + valid < n) {
      const auto c = at(i + valid);
      const bool ok = valid == 1 ? (c >= low && c <= high) : (c >= 0x80 && c <= 0xBF);
      if (!ok) break;
      ++valid;
    }
    if (len > 0 && valid == len) {
      out.append(bytes, i, len);
      i += len;
    } else {
      out += kReplacement;  // one for the maximal subpart that cannot be completed
      i += valid > 0 ? valid : 1;
    }
  }
  return out;
}

ByteAlphabet::ByteAlphabet() {
  // Printable bytes keep their code point, the rest move to 256 and up.
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    symbol[b] = encode_utf8(printable ? b : 256 + shifted++);
    byte_of[symbol[b]] = static_cast<unsigned char>(b);
  }
}

std::string ByteAlphabet::encode(const std::string& bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += symbol[b];
  return out;
}

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

Spans split_gpt2(const std::vector<CodePoint>& cps) {
  const auto kinds = kinds_of(cps);
  const auto n = cps.size();
  auto run_end = [&](std::size_t j, CharClass k) {
    while (j < n && kinds[j] == k) ++j;
    return j;
  };
  Spans out;
  std::size_t i = 0;
  while (i < n) {
    if (const auto len = contraction_at(cps, i, /*ignore_case=*/false)) {
      out.emplace_back(i, i + len);
      i += len;
      continue;
    }
    const std::size_t start = i;
    const std::size_t j = (cps[i].value == ' ' && i + 1 < n && kinds[i + 1] != CharClass::kSpace) ? i + 1 : i;
    i = kinds[j] != CharClass::kSpace ? run_end(j, kinds[j]) : whitespace_end(i, run_end(i, CharClass::kSpace), n);
    out.emplace_back(start, i);
  }
  return out;
}

Spans split_llama3(const std::vector<CodePoint>& cps, std::size_t digits) {
  const auto kinds = kinds_of(cps);
  const auto n = cps.size();
  auto run_end = [&](std::size_t j, auto&& in_run) {
    while (j < n && in_run(j)) ++j;
    return j;
  };
  auto is_letter = [&](std::size_t j) { return kinds[j] == CharClass::kLetter; };
  auto is_space = [&](std::size_t j) { return kinds[j] == CharClass::kSpace; };
  auto is_other = [&](std::size_t j) { return kinds[j] == CharClass::kOther; };
  auto is_newline_at = [&](std::size_t j) { return is_newline(cps[j].value); };
  Spans out;
  std::size_t i = 0;
  while (i < n) {
    const std::size_t start = i;
    std::size_t end = 0;
    if (const auto len = contraction_at(cps, i, /*ignore_case=*/true)) {
      end = i + len;
    } else if (is_letter(i)) {  // [^\r\n\p{L}\p{N}]?\p{L}+ without the prefix
      end = run_end(i, is_letter);
    } else if (kinds[i] != CharClass::kNumber && !is_newline(cps[i].value) && i + 1 < n && is_letter(i + 1)) {
      end = run_end(i + 1, is_letter);  // ... with one leading space or symbol
    } else if (kinds[i] == CharClass::kNumber) {  // \p{N}{1,digits}
      end = i;
      while (end < n && end - i < digits && kinds[end] == CharClass::kNumber) ++end;
    } else if (is_other(i) || (cps[i].value == ' ' && i + 1 < n && is_other(i + 1))) {
      // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
      end = run_end(run_end(cps[i].value == ' ' ? i + 1 : i, is_other), is_newline_at);
    } else {
      // Whitespace: '\s*[\r\n]+' takes the run up to its last newline, if it has one.
      const auto run = run_end(i, is_space);
      std::size_t last_newline = run;
      for (std::size_t k = i; k < run; ++k)
        if (is_newline(cps[k].value)) last_newline = k;
      end = last_newline < run ? last_newline + 1 : whitespace_end(i, run, n);
    }
    out.emplace_back(start, end);
    i = end;
  }
  return out;
}

std::size_t MergeTable::slot_of(std::uint64_t k) const {
  const std::size_t mask = slots_.size() - 1;
  std::size_t at = static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> 32) & mask;
  while (slots_[at].rank != kFree && slots_[at].key != k) at = (at + 1) & mask;
  return at;
}

void MergeTable::grow() {
  std::vector<Slot> old(std::max<std::size_t>(16, slots_.size() * 2), Slot{0, kFree, 0});
  old.swap(slots_);
  for (const auto& slot : old)
    if (slot.rank != kFree) slots_[slot_of(slot.key)] = slot;
}

void MergeTable::add(std::int64_t left, std::int64_t right, std::int64_t merged) {
  if (2 * (size_ + 1) > slots_.size()) grow();
  auto& slot = slots_[slot_of(key(left, right))];
  if (slot.rank != kFree) return;
  slot = Slot{key(left, right), static_cast<std::uint32_t>(size_++), merged};
}

void MergeTable::apply(std::vector<std::int64_t>& ids) const {
  const auto n = ids.size();
  if (n < 2 || size_ == 0) return;
  // A doubly linked list of symbols and a min-heap of candidate merges; an entry whose pair
  // has changed since it was pushed is skipped when popped.
  std::vector<std::int64_t> prev(n), next(n);
  for (std::size_t k = 0; k < n; ++k) {
    prev[k] = static_cast<std::int64_t>(k) - 1;
    next[k] = k + 1 < n ? static_cast<std::int64_t>(k + 1) : -1;
  }
  struct Candidate {
    std::uint32_t rank;
    std::int64_t pos, left, right, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](std::int64_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    const auto& found = slots_[slot_of(key(ids[pos], ids[next[pos]]))];
    if (found.rank != kFree) heap.push({found.rank, pos, ids[pos], ids[next[pos]], found.merged});
  };
  for (std::size_t k = 0; k + 1 < n; ++k) consider(static_cast<std::int64_t>(k));
  std::vector<bool> removed(n, false);
  while (!heap.empty()) {
    const auto c = heap.top();
    heap.pop();
    if (removed[c.pos] || next[c.pos] < 0 || ids[c.pos] != c.left || ids[next[c.pos]] != c.right) continue;
    const auto gone = next[c.pos];
    ids[c.pos] = c.merged;
    removed[gone] = true;
    next[c.pos] = next[gone];
    if (next[gone] >= 0) prev[next[gone]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  std::vector<std::int64_t> merged;
  for (std::int64_t k = 0; k >= 0; k = next[k]) merged.push_back(ids[k]);
  ids = std::move(merged);
}

}  // namespace accel::models::detail
