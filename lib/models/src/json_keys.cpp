#include "json_keys.h"

#include "accel/core/files.h"
#include "accel/core/text.h"

#include <sstream>

namespace accel::models::detail {

nlohmann::json parse_json_object(const std::string& text, const std::string& source) {
  // Bounded before parsing: recursive code (dump() in read_key's message) must never meet
  // a value nested 100 000 deep.
  if (const auto problem = text::json_nesting_problem(text)) throw UsageError(source + ": " + *problem);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(source + ": not valid JSON (" + text::excerpt(e.what()) + ")");
  }
  if (!j.is_object()) throw UsageError(source + ": expected a JSON object");
  return j;
}

nlohmann::json list_or_empty(const nlohmann::json& j, const char* key, const std::string& source) {
  auto list = value_or(j, key, nlohmann::json::array(), source);
  if (!list.is_array())
    throw UsageError(source + ": key '" + key + "' has value " + text::quote(list.dump()) + "; expected a list");
  return list;
}

void require_positive(std::int64_t value, const char* key, const std::string& source) {
  if (value <= 0)
    throw UsageError(source + ": key " + text::quote(key) + " must be a positive integer, got " +
                     std::to_string(value));
}

void require_positive_or_unset(std::int64_t value, const char* key, const std::string& source) {
  if (value < 0)
    throw UsageError(source + ": key " + text::quote(key) + " must be positive or null, got " +
                     std::to_string(value));
}

std::string read_text_file(const std::string& path, const std::string& what) {
  return files::read_whole(path, "cannot read " + what);
}

}  // namespace accel::models::detail
