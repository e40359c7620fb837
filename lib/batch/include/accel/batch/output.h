#pragma once
// Output lines of an offline batch job, one JSON object per request as vLLM's run-batch writes
// them (field order included):
//   {"id", "custom_id", "response": {"status_code": 200, "request_id", "body": <completion>}, "error": null}
// with <completion> shaped like OpenAI's completion ("object": "text_completion", choices[0].text)
// or chat completion ("object": "chat.completion", choices[0].message {"role": "assistant",
// "content"}), finish_reason "stop" or "length", logprobs null, and usage. A request that cannot be
// served gets vLLM's error shape:
//   {"id", "custom_id" (null when the line had none), "response": {"status_code": 400,
//    "request_id", "body": null}, "error": {"error": {"message", "type": "BadRequestError",
//    "param", "code": 400}}}
// Ids are derived from the run tag and the entry's index, not drawn at random, so a resumed run
// writes the same lines a run without interruption would. Text that is not valid UTF-8 (a
// byte-level tokenizer can stop inside a character) is written with U+FFFD in its place.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "accel/batch/request.h"

namespace accel::batch {

enum class FinishReason {
  kStop,    // an end-of-sequence token or a stop string
  kLength,  // max_tokens reached
};
std::string_view to_string(FinishReason reason);  // "stop", "length"

// What the engine produced for one request.
struct Completion {
  std::string text;  // stop strings and the end-of-sequence token not included
  FinishReason finish_reason = FinishReason::kStop;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

// What every output line of one run shares.
struct OutputContext {
  std::string model;    // the served model's name: each response body's "model"
  std::string run_tag;  // part of every id ("accel-<run_tag>-<index>"); journal.h's run_tag() fits
};

// The output line (no newline) of the request at `index` in its input; `created` is the Unix
// time in seconds at which it finished.
std::string format_completion(const Request& request, std::size_t index, const Completion& completion,
                              std::int64_t created, const OutputContext& context);

// The error line (no newline) of the refused entry at `index`.
std::string format_refusal(const Refusal& refusal, std::size_t index, const OutputContext& context);

// The refusal of a request the engine cannot serve, e.g. refuse(request, "the prompt has 1100
// tokens; the model reads at most 1024", "prompt"): its message names the request's line.
Refusal refuse(const Request& request, const std::string& reason, const std::string& param = "");

}  // namespace accel::batch
