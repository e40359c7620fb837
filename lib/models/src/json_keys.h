#pragma once
// Reading config.json keys with errors that name the file and the key. Private to lib/models.
#include "accel/core/error.h"
#include "accel/core/text.h"

#include <nlohmann/json.hpp>

#include <string>

namespace accel::models::detail {

// Leaves `out` as it is when the key is absent or null.
template <typename T>
void read_key(const nlohmann::json& j, const char* key, T& out, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return;
  try {
    out = j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw UsageError(source + ": key '" + key + "' has value " + text::quote(j[key].dump()) +
                     " of the wrong type");
  }
}

// The whole text as a JSON object, or UsageError naming `source`.
nlohmann::json parse_json_object(const std::string& text, const std::string& source);

// The file's text, or FileError naming it.
std::string read_text_file(const std::string& path, const std::string& what);

}  // namespace accel::models::detail
