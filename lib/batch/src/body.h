#pragma once
// The request body's keys, declared once: what each does on which endpoint. The reader applies
// them; docs/batch.md lists them and a test checks the two agree.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "accel/batch/request.h"

namespace accel::batch::detail {

// A request the body makes that cannot be served; `param` is the key at fault.
struct BadRequest {
  std::string param;
  std::string message;
};

enum class KeyUse {
  kUsed,         // read into the Request
  kChat,         // kept for the chat template as JSON text
  kIgnored,      // no effect on the generated text: accepted, reported once as a warning
  kNeutralOnly,  // only its neutral value (what leaving it out means) is accepted
};

struct BodyKey {
  std::string_view name;
  bool completions;  // valid on /v1/completions
  bool chat;         // valid on /v1/chat/completions
  KeyUse use;
  // kUsed, kChat: reads a non-null value into the request, throwing BadRequest.
  void (*apply)(const nlohmann::json& value, Request& request);
  // kNeutralOnly: the values accepted.
  std::vector<nlohmann::json> neutral;
};

const std::vector<BodyKey>& body_keys();

// Applies `body` to `request` for its endpoint: every key checked against the table, required
// keys present. The ignored keys seen are appended to `ignored`. Throws BadRequest.
void apply_body(const nlohmann::json& body, Request& request, std::vector<std::string>* ignored);

// A JSON value as a message shows it: compact, cut at 60 characters.
std::string shown(const nlohmann::json& value);

}  // namespace accel::batch::detail
