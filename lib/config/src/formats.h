#pragma once
// The only code that knows YAML and JSON: text <-> Node. Private to lib/config.
#include <string>
#include <vector>

#include "accel/config/document.h"

namespace accel::config::formats {

// Both throw accel::UsageError "origin:line:column: malformed YAML|JSON: reason". An empty or
// blank text yields a Null node. A key given twice in one mapping keeps its last value (as
// PyYAML and Python's json do) and adds a warning naming both lines to `warnings`.
Node parse_yaml(const std::string& text, const std::string& origin, std::vector<std::string>& warnings);
Node parse_json(const std::string& text, const std::string& origin, std::vector<std::string>& warnings);

// Block-style YAML that PyYAML reads back as the same values (strings that YAML 1.1 would
// read as booleans, nulls or numbers are quoted, as accelerate's files quote 'NO').
std::string emit_yaml(const Node& node);
// JSON indented by 2, keys in the node's order.
std::string emit_json(const Node& node);

}  // namespace accel::config::formats
