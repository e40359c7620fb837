#include "json_keys.h"

#include <cerrno>
#include <fstream>
#include <sstream>

namespace accel::models::detail {

nlohmann::json parse_json_object(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(source + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw UsageError(source + ": expected a JSON object");
  return j;
}

std::string read_text_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw FileError(path, "cannot read " + what, errno);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace accel::models::detail
