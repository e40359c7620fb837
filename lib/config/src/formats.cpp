#include "formats.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "accel/core/error.h"
#include "accel/core/text.h"

namespace accel::config::formats {
namespace {

using Kind = Node::Kind;

std::string at(const std::string& origin, Position where) {
  return origin + ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
}

// Two keys with one name: the last wins, as in PyYAML and Python's json (accelerate's readers),
// so every file accelerate reads loads here too; a file with two answers to one question is
// still worth a warning naming both lines.
void drop_duplicate_keys(Node& node, const std::string& origin, std::vector<std::string>& warnings) {
  for (Node& item : node.items) drop_duplicate_keys(item, origin, warnings);
  if (node.kind != Kind::Map) return;
  std::vector<Entry> kept;
  for (Entry& entry : node.entries) {
    drop_duplicate_keys(entry.value, origin, warnings);
    const auto earlier = std::find_if(kept.begin(), kept.end(), [&](const Entry& e) { return e.key == entry.key; });
    if (earlier != kept.end()) {
      warnings.push_back(at(origin, entry.where) + ": key " + text::quote(entry.key) + " appears twice (lines " +
                         std::to_string(earlier->where.line) + " and " + std::to_string(entry.where.line) +
                         "); the last value is used, as accelerate does");
      kept.erase(earlier);
    }
    kept.push_back(std::move(entry));
  }
  node.entries = std::move(kept);
}

// ---- YAML ----------------------------------------------------------------------------------

bool one_of(const std::string& s, std::initializer_list<const char*> words) {
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return s == w; });
}

bool is_decimal_integer(const std::string& s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool is_float(const std::string& s) {
  if (one_of(s, {".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", ".nan", ".NaN", ".NAN"})) return true;
  // YAML 1.1 floats need a dot: PyYAML reads 1e3 as a string.
  const bool has_digit = std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
  if (s.find('.') == std::string::npos || !has_digit) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

// How PyYAML's safe_load (YAML 1.1) types an unquoted scalar; accelerate reads files with it.
Node resolve_plain(const std::string& s) {
  if (one_of(s, {"", "~", "null", "Null", "NULL"})) return Node::scalar(Kind::Null, "");
  if (one_of(s, {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})) return Node::scalar(Kind::Bool, "true");
  if (one_of(s, {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})) return Node::scalar(Kind::Bool, "false");
  if (is_decimal_integer(s)) return Node::scalar(Kind::Integer, s);
  if (is_float(s)) return Node::scalar(Kind::Float, s);
  return Node::scalar(Kind::String, s);
}

Position position_of(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

Node from_yaml(const YAML::Node& y, const std::string& origin) {
  Node node;
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      break;
    case YAML::NodeType::Scalar:
      // yaml-cpp tags plain scalars "?" and quoted ones "!"; only plain ones are typed.
      node = (y.Tag() == "?" || y.Tag().empty()) ? resolve_plain(y.Scalar()) : Node::scalar(Kind::String, y.Scalar());
      break;
    case YAML::NodeType::Sequence:
      node.kind = Kind::Sequence;
      for (const auto& item : y) node.items.push_back(from_yaml(item, origin));
      break;
    case YAML::NodeType::Map:
      node.kind = Kind::Map;
      for (const auto& pair : y) {
        Entry entry;
        entry.where = position_of(pair.first.Mark());
        if (!pair.first.IsScalar()) {
          throw UsageError(at(origin, entry.where) + ": a key must be a plain name, found a " +
                           (pair.first.IsMap() ? "mapping" : "list"));
        }
        entry.key = pair.first.Scalar();
        entry.value = from_yaml(pair.second, origin);
        // An empty value (`key:`) has no position of its own.
        if (entry.value.where.line == 0) entry.value.where = entry.where;
        node.entries.push_back(std::move(entry));
      }
      break;
  }
  if (node.where.line == 0) node.where = position_of(y.Mark());
  return node;
}

// Strings that YAML 1.1 would read back as something else must be quoted.
bool needs_quotes(const std::string& s) { return resolve_plain(s).kind != Kind::String; }

void emit(YAML::Emitter& out, const Node& node) {
  switch (node.kind) {
    case Kind::Null: out << YAML::Null; break;
    case Kind::Bool: out << (node.text == "true"); break;
    case Kind::Integer:
    case Kind::Float: out << node.text; break;
    case Kind::String:
      if (needs_quotes(node.text)) out << YAML::SingleQuoted;
      out << node.text;
      break;
    case Kind::Map:
      if (node.entries.empty()) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const Entry& entry : node.entries) {
        out << YAML::Key << entry.key << YAML::Value;
        emit(out, entry.value);
      }
      out << YAML::EndMap;
      break;
    case Kind::Sequence:
      if (node.items.empty()) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const Node& item : node.items) emit(out, item);
      out << YAML::EndSeq;
      break;
  }
}

// ---- JSON ----------------------------------------------------------------------------------

using Json = nlohmann::ordered_json;

class LineIndex {
 public:
  explicit LineIndex(const std::string& text) {
    starts_.push_back(0);
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') starts_.push_back(i + 1);
    }
  }
  Position at(std::size_t offset) const {
    const auto next = std::upper_bound(starts_.begin(), starts_.end(), offset);
    const std::size_t line = static_cast<std::size_t>(next - starts_.begin());
    return {static_cast<int>(line), static_cast<int>(offset - starts_[line - 1] + 1)};
  }

 private:
  std::vector<std::size_t> starts_;
};

// nlohmann's SAX events carry no positions. The parser pulls one character at a time through
// this iterator, so at each event `consumed` is the end of the token just read (one character
// further for numbers); the token itself starts at the first character after the previous
// event's end that is not whitespace or a ':' or ',' separator.
class CountingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* begin, const char* at, std::size_t* consumed)
      : begin_(begin), at_(at), consumed_(consumed) {}
  reference operator*() const { return *at_; }
  CountingIterator& operator++() {
    ++at_;
    *consumed_ = static_cast<std::size_t>(at_ - begin_);
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const CountingIterator& other) const { return at_ == other.at_; }
  bool operator!=(const CountingIterator& other) const { return at_ != other.at_; }

 private:
  const char* begin_;
  const char* at_;
  std::size_t* consumed_;
};

class TreeBuilder : public nlohmann::json_sax<Json> {
 public:
  TreeBuilder(const std::string& text, const std::string& origin) : text_(text), origin_(origin), lines_(text) {}

  std::size_t consumed = 0;
  Node root;

  bool null() override { return scalar(Kind::Null, ""); }
  bool boolean(bool value) override { return scalar(Kind::Bool, value ? "true" : "false"); }
  bool number_integer(number_integer_t value) override { return scalar(Kind::Integer, std::to_string(value)); }
  bool number_unsigned(number_unsigned_t value) override { return scalar(Kind::Integer, std::to_string(value)); }
  bool number_float(number_float_t, const string_t& spelling) override { return scalar(Kind::Float, spelling); }
  bool string(string_t& value) override { return scalar(Kind::String, value); }
  bool binary(binary_t&) override { return scalar(Kind::String, ""); }
  bool start_object(std::size_t) override { return open(Kind::Map); }
  bool start_array(std::size_t) override { return open(Kind::Sequence); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& name) override {
    key_ = name;
    key_where_ = next_start();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& error) override {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: REASON"
    std::string reason = error.what();
    if (const auto column = reason.find("column "); column != std::string::npos) {
      if (const auto colon = reason.find(": ", column); colon != std::string::npos) reason = reason.substr(colon + 2);
    }
    const std::size_t offset = position > 0 ? std::min(position - 1, text_.size()) : 0;
    throw UsageError(formats::at(origin_, lines_.at(offset)) + ": malformed JSON: " + text::excerpt(reason));
  }

 private:
  struct Frame {
    Node node;
    std::string key;
    Position key_where;
  };

  Position next_start() {
    std::size_t i = last_end_;
    while (i < text_.size() && (std::isspace(static_cast<unsigned char>(text_[i])) || text_[i] == ':' || text_[i] == ',')) ++i;
    last_end_ = consumed;
    return lines_.at(i);
  }
  bool scalar(Kind kind, std::string spelling) {
    Node node = Node::scalar(kind, std::move(spelling));
    node.where = next_start();
    attach(std::move(node));
    return true;
  }
  bool open(Kind kind) {
    Frame frame{Node{}, key_, key_where_};
    frame.node.kind = kind;
    frame.node.where = next_start();
    stack_.push_back(std::move(frame));
    return true;
  }
  bool close() {
    last_end_ = consumed;
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    key_ = frame.key;
    key_where_ = frame.key_where;
    attach(std::move(frame.node));
    return true;
  }
  void attach(Node node) {
    if (stack_.empty()) {
      root = std::move(node);
    } else if (stack_.back().node.kind == Kind::Map) {
      stack_.back().node.entries.push_back({key_, key_where_, std::move(node)});
    } else {
      stack_.back().node.items.push_back(std::move(node));
    }
  }

  const std::string& text_;
  const std::string& origin_;
  LineIndex lines_;
  std::size_t last_end_ = 0;
  std::vector<Frame> stack_;
  std::string key_;
  Position key_where_;
};

Json to_json(const Node& node) {
  switch (node.kind) {
    case Kind::Null: return nullptr;
    case Kind::Bool: return node.text == "true";
    case Kind::Integer: return std::strtoll(node.text.c_str(), nullptr, 10);
    case Kind::Float: return std::strtod(node.text.c_str(), nullptr);
    case Kind::String: return node.text;
    case Kind::Map: {
      Json object = Json::object();
      for (const Entry& entry : node.entries) object[entry.key] = to_json(entry.value);
      return object;
    }
    case Kind::Sequence: {
      Json array = Json::array();
      for (const Node& item : node.items) array.push_back(to_json(item));
      return array;
    }
  }
  return nullptr;
}

bool blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); });
}

}  // namespace

Node parse_yaml(const std::string& text, const std::string& origin, std::vector<std::string>& warnings) {
  if (blank(text)) return {};
  Node node;
  try {
    node = from_yaml(YAML::Load(text), origin);
  } catch (const YAML::Exception& error) {
    throw UsageError(at(origin, position_of(error.mark)) + ": malformed YAML: " + error.msg);
  }
  drop_duplicate_keys(node, origin, warnings);
  return node;
}

Node parse_json(const std::string& text, const std::string& origin, std::vector<std::string>& warnings) {
  if (blank(text)) return {};
  if (const auto problem = text::json_nesting_problem(text)) throw UsageError(origin + ": malformed JSON: " + *problem);
  TreeBuilder builder(text, origin);
  const char* begin = text.data();
  Json::sax_parse(CountingIterator(begin, begin, &builder.consumed),
                  CountingIterator(begin, begin + text.size(), &builder.consumed), &builder);
  drop_duplicate_keys(builder.root, origin, warnings);
  return builder.root;
}

std::string emit_yaml(const Node& node) {
  YAML::Emitter out;
  emit(out, node);
  return std::string(out.c_str()) + "\n";
}

std::string emit_json(const Node& node) { return to_json(node).dump(2) + "\n"; }

}  // namespace accel::config::formats
