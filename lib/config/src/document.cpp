#include "accel/config/document.h"

#include "accel/core/text.h"

namespace accel::config {

Node Node::scalar(Kind kind, std::string text) {
  Node node;
  node.kind = kind;
  node.text = std::move(text);
  return node;
}

std::string Node::describe() const {
  switch (kind) {
    case Kind::Null: return "null";
    case Kind::Bool: return "the boolean " + text;
    case Kind::Integer: return "the integer " + text;
    case Kind::Float: return "the number " + text;
    case Kind::String: return "the string " + text::quote(text);
    case Kind::Map: return "a mapping";
    case Kind::Sequence: return "a list";
  }
  return "a value";
}

bool Node::is_empty_setting() const {
  switch (kind) {
    case Kind::Null: return true;
    case Kind::Bool: return text == "false";
    case Kind::String: return text.empty();
    case Kind::Map: return entries.empty();
    case Kind::Sequence: return items.empty();
    default: return false;
  }
}

bool Node::operator==(const Node& other) const {
  if (kind != other.kind || text != other.text || items != other.items) return false;
  if (entries.size() != other.entries.size()) return false;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].key != other.entries[i].key || entries[i].value != other.entries[i].value) return false;
  }
  return true;
}

}  // namespace accel::config
