#pragma once
// A parsed config document, independent of YAML or JSON, with the position of every value so
// that each complaint can name file:line:column.
#include <string>
#include <vector>

namespace accel::config {

struct Position {
  int line = 0;    // 1-based; 0 when unknown (a value built in memory)
  int column = 0;  // 1-based, in bytes
};

struct Entry;

struct Node {
  enum class Kind { Null, Bool, Integer, Float, String, Map, Sequence };

  Kind kind = Kind::Null;
  // Scalars: the value's spelling. Bools are "true"/"false" whatever the file wrote (YAML 1.1
  // also spells them yes/no/on/off); strings are unquoted.
  std::string text;
  Position where;
  std::vector<Entry> entries;  // Map, in file order
  std::vector<Node> items;     // Sequence

  static Node scalar(Kind kind, std::string text);
  bool is_scalar() const { return kind != Kind::Map && kind != Kind::Sequence; }
  // "a mapping", "a list", "the boolean true", "the integer 3", "the string 'x'", "null".
  std::string describe() const;
  // True for null, false, an empty string, list or mapping: what accelerate writes for a feature
  // that is switched off.
  bool is_empty_setting() const;

  // Compares values, not positions.
  bool operator==(const Node& other) const;
  bool operator!=(const Node& other) const { return !(*this == other); }
};

struct Entry {
  std::string key;
  Position where;  // of the key
  Node value;
};

}  // namespace accel::config
