#include "body.h"

#include <climits>
#include <cmath>

#include "accel/core/text.h"

namespace accel::batch::detail {
namespace {

using nlohmann::json;

[[noreturn]] void bad(std::string_view key, const std::string& expected, const json& value) {
  throw BadRequest{std::string(key), "body." + std::string(key) + " must be " + expected + ", got " + shown(value)};
}

// A whole number in [low, high]: JSON integers, and numbers like 16.0 that clients write for them.
long long whole_number(std::string_view key, const json& value, long long low, long long high, const std::string& expected) {
  if (value.is_number_unsigned()) {
    const auto n = value.get<unsigned long long>();
    if (n <= static_cast<unsigned long long>(high) && static_cast<long long>(n) >= low) return static_cast<long long>(n);
  } else if (value.is_number_integer()) {
    const auto n = value.get<long long>();
    if (n >= low && n <= high) return n;
  } else if (value.is_number_float()) {
    const double x = value.get<double>();
    if (std::isfinite(x) && x == std::floor(x) && x >= static_cast<double>(low) && x <= static_cast<double>(high))
      return static_cast<long long>(x);
  }
  bad(key, expected, value);
}

double real_number(std::string_view key, const json& value, const std::string& expected) {
  if (!value.is_number() || !std::isfinite(value.get<double>())) bad(key, expected, value);
  return value.get<double>();
}

void apply_prompt(const json& value, Request& request) {
  const json* text = &value;
  if (value.is_array() && value.size() == 1) text = &value[0];
  if (value.is_array() && value.size() != 1) {
    throw BadRequest{"prompt", "body.prompt holds " + std::to_string(value.size()) +
                                   " prompts; one request gives one completion: write one line per prompt, each with "
                                   "its own custom_id"};
  }
  if (!text->is_string()) bad("prompt", "a string (or a list of one string; token ids are not accepted)", value);
  if (text->get_ref<const std::string&>().empty()) throw BadRequest{"prompt", "body.prompt is empty"};
  request.prompt = text->get<std::string>();
}

void apply_messages(const json& value, Request& request) {
  const std::string expected = "a non-empty list of messages, each an object with a string \"role\"";
  if (!value.is_array() || value.empty()) bad("messages", expected, value);
  for (std::size_t i = 0; i < value.size(); ++i) {
    const json& message = value[i];
    const std::string at = "body.messages[" + std::to_string(i) + "]";
    if (!message.is_object()) throw BadRequest{"messages", at + " must be an object, got " + shown(message)};
    const auto role = message.find("role");
    if (role == message.end() || !role->is_string())
      throw BadRequest{"messages", at + " needs a string \"role\" (\"system\", \"user\", \"assistant\", ...)"};
    const auto content = message.find("content");
    if (content != message.end() && !content->is_string() && !content->is_array() && !content->is_null())
      throw BadRequest{"messages", at + ".content must be a string or a list of parts, got " + shown(*content)};
  }
  request.chat.messages = value.dump();
}

void apply_tools(const json& value, Request& request) {
  if (!value.is_array()) bad("tools", "a list of tool definitions", value);
  request.chat.tools = value.dump();
}

void apply_documents(const json& value, Request& request) {
  if (!value.is_array()) bad("documents", "a list of documents", value);
  request.chat.documents = value.dump();
}

void apply_chat_template_kwargs(const json& value, Request& request) {
  if (!value.is_object()) bad("chat_template_kwargs", "an object of template variables", value);
  request.chat.chat_template_kwargs = value.dump();
}

void apply_max_tokens_as(std::string_view key, const json& value, Request& request) {
  const int n = static_cast<int>(whole_number(key, value, 1, INT_MAX, "a whole number >= 1"));
  if (request.sampling.max_tokens && *request.sampling.max_tokens != n) {
    const bool legacy = key == "max_tokens";
    const int max_tokens = legacy ? n : *request.sampling.max_tokens;
    const int max_completion_tokens = legacy ? *request.sampling.max_tokens : n;
    throw BadRequest{std::string(key), "body.max_tokens (" + std::to_string(max_tokens) +
                                           ") and body.max_completion_tokens (" + std::to_string(max_completion_tokens) +
                                           ") differ; give one of them"};
  }
  request.sampling.max_tokens = n;
}

void apply_max_tokens(const json& value, Request& request) { apply_max_tokens_as("max_tokens", value, request); }
void apply_max_completion_tokens(const json& value, Request& request) {
  apply_max_tokens_as("max_completion_tokens", value, request);
}

void apply_temperature(const json& value, Request& request) {
  const double t = real_number("temperature", value, "a number >= 0 (0: greedy)");
  if (t < 0) bad("temperature", "a number >= 0 (0: greedy)", value);
  request.sampling.temperature = t;
}

void apply_top_p(const json& value, Request& request) {
  const double p = real_number("top_p", value, "a number in (0, 1]");
  if (!(p > 0 && p <= 1)) bad("top_p", "a number in (0, 1]", value);
  request.sampling.top_p = p;
}

void apply_top_k(const json& value, Request& request) {
  const auto k = whole_number("top_k", value, -1, INT_MAX, "a whole number >= 1, or 0 or -1 for no limit");
  request.sampling.top_k = static_cast<int>(k < 0 ? 0 : k);
}

void apply_seed(const json& value, Request& request) {
  const std::string expected = "a whole number from -2^63 to 2^64-1";
  if (value.is_number_unsigned()) {
    request.sampling.seed = value.get<std::uint64_t>();
  } else if (value.is_number_integer()) {
    request.sampling.seed = static_cast<std::uint64_t>(value.get<std::int64_t>());
  } else {
    request.sampling.seed = static_cast<std::uint64_t>(whole_number("seed", value, LLONG_MIN, LLONG_MAX, expected));
  }
}

void apply_stop(const json& value, Request& request) {
  const std::string expected = "a string or a list of strings, none empty";
  std::vector<std::string> stop;
  if (value.is_string()) {
    stop.push_back(value.get<std::string>());
  } else if (value.is_array()) {
    for (const json& item : value) {
      if (!item.is_string()) bad("stop", expected, value);
      stop.push_back(item.get<std::string>());
    }
  } else {
    bad("stop", expected, value);
  }
  for (const auto& s : stop)
    if (s.empty()) bad("stop", expected + " (an empty one would end every completion at once)", value);
  request.sampling.stop = std::move(stop);
}

void apply_n(const json& value, Request&) {
  if (value.is_number() && value.get<double>() == 1) return;
  throw BadRequest{"n", "body.n = " + shown(value) +
                            " is not supported: each request gives one completion (n = 1); write the request on "
                            "several lines with their own custom_ids (and seeds) instead"};
}

std::string neutral_values(const BodyKey& key) {
  if (key.neutral.empty()) return "null";
  std::string text;
  for (std::size_t i = 0; i < key.neutral.size(); ++i) text += (i == 0 ? "" : " or ") + key.neutral[i].dump();
  return text;
}

const BodyKey* find_key(std::string_view name) {
  for (const auto& key : body_keys())
    if (key.name == name) return &key;
  return nullptr;
}

std::string accepted_keys(Endpoint endpoint) {
  std::string names;
  for (const auto& key : body_keys()) {
    if (endpoint == Endpoint::kCompletions ? !key.completions : !key.chat) continue;
    names += (names.empty() ? "" : ", ") + std::string(key.name);
  }
  return names;
}

void apply_key(const std::string& name, const json& value, Request& request, std::vector<std::string>* ignored) {
  const BodyKey* key = find_key(name);
  const bool chat = request.endpoint == Endpoint::kChatCompletions;
  if (key == nullptr) {
    const std::string shown_name = text::excerpt(name, 60);
    throw BadRequest{shown_name, "body." + shown_name + " is not a known parameter of " + std::string(url_of(request.endpoint)) +
                               "; accepted: " + accepted_keys(request.endpoint)};
  }
  if (chat ? !key->chat : !key->completions) {
    throw BadRequest{name, "body." + name + " belongs to " +
                               std::string(url_of(chat ? Endpoint::kCompletions : Endpoint::kChatCompletions)) +
                               ", not to this line's url " + std::string(url_of(request.endpoint))};
  }
  if (value.is_null()) return;  // what clients send for "not given"
  switch (key->use) {
    case KeyUse::kUsed:
    case KeyUse::kChat:
      key->apply(value, request);
      return;
    case KeyUse::kIgnored:
      if (ignored != nullptr) ignored->push_back(name);
      return;
    case KeyUse::kNeutralOnly:
      for (const auto& accepted : key->neutral)
        if (value == accepted) return;
      throw BadRequest{name, "body." + name + " = " + shown(value) + " is not supported; accepted: " +
                                 neutral_values(*key) + " (what leaving it out means)"};
  }
}

}  // namespace

std::string shown(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() <= 60) return text;
  std::size_t cut = 57;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  return text.substr(0, cut) + "...";
}

const std::vector<BodyKey>& body_keys() {
  using enum KeyUse;
  static const std::vector<BodyKey> keys = {
      {"prompt", true, false, kUsed, apply_prompt, {}},
      {"messages", false, true, kUsed, apply_messages, {}},
      {"max_tokens", true, true, kUsed, apply_max_tokens, {}},
      {"max_completion_tokens", false, true, kUsed, apply_max_completion_tokens, {}},
      {"temperature", true, true, kUsed, apply_temperature, {}},
      {"top_p", true, true, kUsed, apply_top_p, {}},
      {"top_k", true, true, kUsed, apply_top_k, {}},
      {"seed", true, true, kUsed, apply_seed, {}},
      {"stop", true, true, kUsed, apply_stop, {}},
      {"n", true, true, kUsed, apply_n, {}},
      {"tools", false, true, kChat, apply_tools, {}},
      {"documents", false, true, kChat, apply_documents, {}},
      {"chat_template_kwargs", false, true, kChat, apply_chat_template_kwargs, {}},
      {"model", true, true, kIgnored, nullptr, {}},
      {"user", true, true, kIgnored, nullptr, {}},
      {"metadata", false, true, kIgnored, nullptr, {}},
      {"store", false, true, kIgnored, nullptr, {}},
      {"stream", true, true, kNeutralOnly, nullptr, {false}},
      {"stream_options", true, true, kNeutralOnly, nullptr, {}},
      {"echo", true, false, kNeutralOnly, nullptr, {false}},
      {"suffix", true, false, kNeutralOnly, nullptr, {""}},
      {"best_of", true, false, kNeutralOnly, nullptr, {1}},
      {"logprobs", true, true, kNeutralOnly, nullptr, {false}},
      {"top_logprobs", false, true, kNeutralOnly, nullptr, {0}},
      {"frequency_penalty", true, true, kNeutralOnly, nullptr, {0}},
      {"presence_penalty", true, true, kNeutralOnly, nullptr, {0}},
      {"repetition_penalty", true, true, kNeutralOnly, nullptr, {1}},
      {"logit_bias", true, true, kNeutralOnly, nullptr, {json::object()}},
      {"min_p", true, true, kNeutralOnly, nullptr, {0}},
      {"min_tokens", true, true, kNeutralOnly, nullptr, {0}},
      {"ignore_eos", true, true, kNeutralOnly, nullptr, {false}},
      {"stop_token_ids", true, true, kNeutralOnly, nullptr, {json::array()}},
      {"response_format", false, true, kNeutralOnly, nullptr, {json{{"type", "text"}}}},
      {"add_generation_prompt", false, true, kNeutralOnly, nullptr, {true}},
  };
  return keys;
}

void apply_body(const json& body, Request& request, std::vector<std::string>* ignored) {
  std::vector<std::string> seen;
  for (const auto& [name, value] : body.items()) apply_key(name, value, request, &seen);
  const bool chat = request.endpoint == Endpoint::kChatCompletions;
  if (chat && request.chat.messages.empty())
    throw BadRequest{"messages", "body.messages is missing: a chat completion needs the conversation"};
  if (!chat && request.prompt.empty())
    throw BadRequest{"prompt", "body.prompt is missing: a completion needs the text to continue"};
  if (ignored != nullptr) ignored->insert(ignored->end(), seen.begin(), seen.end());
}

}  // namespace accel::batch::detail
