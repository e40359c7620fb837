#include "accel/batch/output.h"

#include <nlohmann/json.hpp>

namespace accel::batch {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kBadRequest = 400;

std::string id_of(std::string_view prefix, std::size_t index, const OutputContext& context) {
  std::string id(prefix);
  if (!context.run_tag.empty()) id += "-" + context.run_tag;
  return id + "-" + std::to_string(index);
}

std::string dumped(const Json& line) { return line.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json choice_of(const Request& request, const Completion& completion) {
  Json choice = {{"index", 0}};
  if (request.endpoint == Endpoint::kChatCompletions) {
    choice["message"] = {{"role", "assistant"}, {"content", completion.text}};
  } else {
    choice["text"] = completion.text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = to_string(completion.finish_reason);
  return choice;
}

}  // namespace

std::string_view to_string(FinishReason reason) { return reason == FinishReason::kStop ? "stop" : "length"; }

std::string format_completion(const Request& request, std::size_t index, const Completion& completion,
                              std::int64_t created, const OutputContext& context) {
  const bool chat = request.endpoint == Endpoint::kChatCompletions;
  const Json body = {
      {"id", id_of(chat ? "chatcmpl" : "cmpl", index, context)},
      {"object", chat ? "chat.completion" : "text_completion"},
      {"created", created},
      {"model", context.model},
      {"choices", Json::array({choice_of(request, completion)})},
      {"usage",
       {{"prompt_tokens", completion.prompt_tokens},
        {"completion_tokens", completion.completion_tokens},
        {"total_tokens", completion.prompt_tokens + completion.completion_tokens}}},
  };
  const Json line = {
      {"id", id_of("accel", index, context)},
      {"custom_id", request.custom_id},
      {"response", {{"status_code", 200}, {"request_id", id_of("accel-batch", index, context)}, {"body", body}}},
      {"error", nullptr},
  };
  return dumped(line);
}

std::string format_refusal(const Refusal& refusal, std::size_t index, const OutputContext& context) {
  const Json error = {
      {"message", refusal.message},
      {"type", "BadRequestError"},
      {"param", refusal.param.empty() ? Json(nullptr) : Json(refusal.param)},
      {"code", kBadRequest},
  };
  const Json line = {
      {"id", id_of("accel", index, context)},
      {"custom_id", refusal.custom_id.empty() ? Json(nullptr) : Json(refusal.custom_id)},
      {"response",
       {{"status_code", kBadRequest}, {"request_id", id_of("accel-batch", index, context)}, {"body", nullptr}}},
      {"error", {{"error", error}}},
  };
  return dumped(line);
}

Refusal refuse(const Request& request, const std::string& reason, const std::string& param) {
  return Refusal{request.line, request.custom_id, "line " + std::to_string(request.line) + ": " + reason, param};
}

}  // namespace accel::batch
