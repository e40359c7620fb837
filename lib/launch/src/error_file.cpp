#include "error_file.h"

#include <nlohmann/json.hpp>

#include "accel/core/files.h"
#include "accel/core/text.h"

namespace accel::launch {

std::optional<std::string> read_error_file(const std::string& path) {
  const auto contents = files::read_if_present(path);
  if (!contents) return std::nullopt;
  const std::string& text = *contents;
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_object() && json.contains("message")) {
    const auto& message = json["message"];
    if (message.is_string()) return message.get<std::string>();
    if (message.is_object() && message.contains("message") && message["message"].is_string()) {
      return message["message"].get<std::string>();
    }
  }
  const std::string first_line = text::trim(text.substr(0, text.find('\n')));
  if (first_line.empty()) return std::nullopt;
  return first_line;
}

}  // namespace accel::launch
