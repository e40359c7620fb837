#pragma once
// Small text helpers shared by the CLI and the config checker.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accel::text {

// Levenshtein distance between a and b.
std::size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` when it is a plausible typo (distance <= max(2, len/3)),
// used for "did you mean ...?" hints.
std::optional<std::string> closest_match(const std::string& word,
                                         const std::vector<std::string>& candidates);

// Parses a whole string as a base-10 integer; nullopt on any junk, sign issue or overflow.
std::optional<long long> parse_integer(const std::string& s);

std::string join(const std::vector<std::string>& parts, const std::string& separator);
// "1 worker", "2 workers": a count with its noun, plural formed with "s" unless given.
std::string count(std::size_t n, const std::string& noun, const std::string& plural = "");
std::vector<std::string> split(const std::string& s, char separator);
std::string trim(const std::string& s);

// A value from an input file or the command line as it goes into a message: in single quotes,
// control bytes written as \xNN, and cut after `max_bytes` (at a UTF-8 boundary) with the full
// size noted, so that a hostile megabyte value cannot become a megabyte error message.
std::string quote(std::string_view value, std::size_t max_bytes = 80);

// quote() without the quotes, for text that embeds input itself (a parser's message that
// echoes the token it stopped at).
std::string excerpt(std::string_view text, std::size_t max_bytes = 200);

// The deepest JSON nesting any loader accepts. Real files (configs, safetensors headers,
// tokenizer files) stay under ten levels; the bound keeps recursive code (dump, copies, our own
// tree walks) far from the stack's limit on hostile input nested 100 000 deep.
inline constexpr std::size_t kMaxJsonNesting = 256;

// Scans JSON text (valid or not) before it is parsed. When arrays/objects nest deeper than
// kMaxJsonNesting, returns the problem in words, naming the byte offset; otherwise nullopt.
std::optional<std::string> json_nesting_problem(std::string_view json);

}  // namespace accel::text
