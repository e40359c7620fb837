#include "accel/core/text.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace accel::text {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> closest_match(const std::string& word,
                                         const std::vector<std::string>& candidates) {
  // An abbreviation that only one candidate starts with ("--num_proc") is what was meant.
  std::optional<std::string> only_extension;
  int extensions = 0;
  for (const auto& candidate : candidates) {
    if (word.size() >= 3 && candidate.size() > word.size() && candidate.compare(0, word.size(), word) == 0) {
      ++extensions;
      only_extension = candidate;
    }
  }
  if (extensions == 1) return only_extension;

  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::optional<long long> parse_integer(const std::string& s) {
  const std::string t = trim(s);
  if (t.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(t.c_str(), &end, 10);
  if (errno != 0 || end != t.c_str() + t.size()) return std::nullopt;
  return value;
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += separator;
    out += parts[i];
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char separator) {
  std::vector<std::string> out;
  std::string current;
  for (char c : s) {
    if (c == separator) {
      out.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  out.push_back(current);
  return out;
}

std::string trim(const std::string& s) {
  const auto first = std::find_if_not(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
  const auto last = std::find_if_not(s.rbegin(), s.rend(), [](unsigned char c) { return std::isspace(c); }).base();
  return first < last ? std::string(first, last) : std::string();
}

namespace {

// The first max_bytes of `value` (never ending inside a UTF-8 sequence) with control bytes as
// \xNN, and how long the whole was when it had to be cut.
std::pair<std::string, std::string> escaped_prefix(std::string_view value, std::size_t max_bytes) {
  std::size_t shown = std::min(value.size(), max_bytes);
  if (shown < value.size())
    while (shown > 0 && (static_cast<unsigned char>(value[shown]) & 0xC0) == 0x80) --shown;  // 10xxxxxx
  std::string out;
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7F) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  std::string cut = shown < value.size() ? "... (" + std::to_string(value.size()) + " bytes in all)" : "";
  return {std::move(out), std::move(cut)};
}

}  // namespace

std::string quote(std::string_view value, std::size_t max_bytes) {
  const auto [shown, cut] = escaped_prefix(value, max_bytes);
  return "'" + shown + "'" + cut;
}

std::string count(std::size_t n, const std::string& noun, const std::string& plural) {
  return std::to_string(n) + " " + (n == 1 ? noun : plural.empty() ? noun + "s" : plural);
}

std::string excerpt(std::string_view text, std::size_t max_bytes) {
  const auto [shown, cut] = escaped_prefix(text, max_bytes);
  return shown + cut;
}

std::optional<std::string> json_nesting_problem(std::string_view json) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonNesting)
        return "arrays/objects nested deeper than " + std::to_string(kMaxJsonNesting) + " levels (at byte " +
               std::to_string(i) + "); no file of this kind needs that many";
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

}  // namespace accel::text
