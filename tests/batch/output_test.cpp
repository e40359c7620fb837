#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "accel/batch/output.h"

namespace {

using namespace accel::batch;
using nlohmann::json;

Request completion_request() {
  Request r;
  r.custom_id = "q-1";
  r.line = 3;
  r.prompt = "Once upon";
  return r;
}

const OutputContext kContext{.model = "gpt2", .run_tag = "9f2c"};

}  // namespace

TEST_CASE("a completion's output line is vLLM's run-batch line, field for field and in order", "[batch][output]") {
  const Completion done{.text = " a time\n", .finish_reason = FinishReason::kLength, .prompt_tokens = 2, .completion_tokens = 16};
  CHECK(format_completion(completion_request(), 4, done, 1765000000, kContext) ==
        R"({"id":"accel-9f2c-4","custom_id":"q-1","response":{"status_code":200,"request_id":"accel-batch-9f2c-4",)"
        R"("body":{"id":"cmpl-9f2c-4","object":"text_completion","created":1765000000,"model":"gpt2",)"
        R"("choices":[{"index":0,"text":" a time\n","logprobs":null,"finish_reason":"length"}],)"
        R"("usage":{"prompt_tokens":2,"completion_tokens":16,"total_tokens":18}}},"error":null})");
}

TEST_CASE("a chat completion's output line carries the assistant message", "[batch][output]") {
  Request r = completion_request();
  r.endpoint = Endpoint::kChatCompletions;
  r.prompt.clear();
  const Completion done{.text = "Hello!", .finish_reason = FinishReason::kStop, .prompt_tokens = 9, .completion_tokens = 3};
  const json line = json::parse(format_completion(r, 0, done, 5, OutputContext{.model = "qwen3"}));
  CHECK(line["id"] == "accel-0");
  const json& body = line["response"]["body"];
  CHECK(body["id"] == "chatcmpl-0");
  CHECK(body["object"] == "chat.completion");
  CHECK(body["model"] == "qwen3");
  CHECK(body["choices"] == json::parse(R"([{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                                          "logprobs": null, "finish_reason": "stop"}])"));
  CHECK(body["usage"]["total_tokens"] == 12);
  CHECK(line["error"].is_null());
}

TEST_CASE("text that is not valid UTF-8 is written with replacement characters, never as broken JSON", "[batch][output]") {
  const Completion done{.text = "ok \xe2\x82", .completion_tokens = 1};
  const json line = json::parse(format_completion(completion_request(), 0, done, 0, kContext));
  CHECK(line["response"]["body"]["choices"][0]["text"] == "ok \xef\xbf\xbd");
}

TEST_CASE("a refused request's line has vLLM's error shape, with a null custom_id when the line had none", "[batch][output]") {
  const Refusal bad{.line = 4, .custom_id = "q-2", .message = "line 4: body.top_p must be a number in (0, 1], got 0", .param = "top_p"};
  CHECK(format_refusal(bad, 1, kContext) ==
        R"({"id":"accel-9f2c-1","custom_id":"q-2","response":{"status_code":400,"request_id":"accel-batch-9f2c-1","body":null},)"
        R"("error":{"error":{"message":"line 4: body.top_p must be a number in (0, 1], got 0","type":"BadRequestError",)"
        R"("param":"top_p","code":400}}})");
  const json anonymous = json::parse(format_refusal(Refusal{.line = 9, .message = "line 9: not valid JSON: x"}, 2, kContext));
  CHECK(anonymous["custom_id"].is_null());
  CHECK(anonymous["error"]["error"]["param"].is_null());
}

TEST_CASE("the engine refuses a request through refuse(), which names its line", "[batch][output]") {
  const Refusal r = refuse(completion_request(), "the prompt has 1100 tokens; the model reads at most 1024", "prompt");
  CHECK(r.message == "line 3: the prompt has 1100 tokens; the model reads at most 1024");
  CHECK(r.custom_id == "q-1");
  CHECK(r.line == 3);
  CHECK(r.param == "prompt");
  CHECK(json::parse(format_refusal(r, 0, kContext))["custom_id"] == "q-1");
}
