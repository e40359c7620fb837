#pragma once
// Reading config.json keys with errors that name the file and the key. Private to lib/models.
#include "accel/core/error.h"
#include "accel/core/text.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
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

// Sets `out` when the key is present and not null; keeps it empty otherwise.
template <typename T>
void read_key(const nlohmann::json& j, const char* key, std::optional<T>& out, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return;
  T value{};
  read_key(j, key, value, source);
  out = value;
}

// `j[key]` as T, or `fallback` when the key is absent or null. UsageError naming `source` and the
// key when `j` is not an object or the value has another type (hostile files must not reach
// nlohmann's own type errors).
template <typename T>
T value_or(const nlohmann::json& j, const char* key, T fallback, const std::string& source) {
  if (!j.is_object())
    throw UsageError(source + " is " + text::quote(j.dump()) + "; expected an object with '" + key + "'");
  read_key(j, key, fallback, source);
  return fallback;
}

// `j[key]` when it is a list, an empty list when the key is absent or null; UsageError otherwise.
nlohmann::json list_or_empty(const nlohmann::json& j, const char* key, const std::string& source);

// UsageError naming `source` and `key` unless `value` > 0; the _or_unset form also takes 0,
// which the config classes use for a key given as null ("derive it" or "none").
void require_positive(std::int64_t value, const char* key, const std::string& source);
void require_positive_or_unset(std::int64_t value, const char* key, const std::string& source);

// The whole text as a JSON object, or UsageError naming `source`.
nlohmann::json parse_json_object(const std::string& text, const std::string& source);

// The file's text, or FileError naming it.
std::string read_text_file(const std::string& path, const std::string& what);

}  // namespace accel::models::detail
