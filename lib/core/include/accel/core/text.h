#pragma once
// Small text helpers shared by the CLI and the config checker.
#include <optional>
#include <string>
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
std::vector<std::string> split(const std::string& s, char separator);
std::string trim(const std::string& s);

}  // namespace accel::text
