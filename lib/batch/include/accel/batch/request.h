#pragma once
// Requests of an offline batch job, read from an OpenAI batch input file (JSON lines, as vLLM's
// run-batch reads them) or from a prompts file (one prompt per line). No model is needed here:
// limits that depend on the model (a prompt longer than its context) are the engine's to check,
// and it reports them with refuse() (output.h).
//
// Every body key is either used, kept for the chat template, ignored (no effect on the text;
// reported once as a warning), accepted only at its neutral value (asking for the default), or
// refused by name; docs/batch.md lists them all.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace accel::batch {

enum class Endpoint { kCompletions, kChatCompletions };
// "/v1/completions" or "/v1/chat/completions".
std::string_view url_of(Endpoint endpoint);

// What a request's body asks of generation; an unset field takes the job's default.
struct Sampling {
  std::optional<int> max_tokens;  // >= 1 (chat: max_tokens or max_completion_tokens)
  std::optional<double> temperature;  // >= 0; 0 is greedy
  std::optional<double> top_p;        // in (0, 1]
  std::optional<int> top_k;           // >= 0; 0 is off (the body's -1 is stored as 0)
  std::optional<std::uint64_t> seed;  // a negative body seed s is stored as 2^64 + s
  std::vector<std::string> stop;      // stop strings, none empty
};

// A chat request's conversation and what the template reads besides it, each as compact JSON
// text (nlohmann::json::parse() gives it back); an empty string means the body did not give it.
struct ChatInput {
  std::string messages;              // an array of objects, each with a string "role"
  std::string tools;                 // an array
  std::string documents;             // an array
  std::string chat_template_kwargs;  // an object
};

// One request that can be served.
struct Request {
  std::string custom_id;
  std::size_t line = 0;  // 1-based line of the input file
  Endpoint endpoint = Endpoint::kCompletions;
  std::string prompt;  // completions: the text to continue
  ChatInput chat;      // chat completions: the conversation
  Sampling sampling;
};

// One input line that cannot be served, and why. Its output is an error line (output.h).
struct Refusal {
  std::size_t line = 0;       // 1-based line of the input file
  std::string custom_id;      // empty when the line has no usable one (malformed, repeated)
  std::string message;        // "line 4: body.temperature must be a number >= 0, got \"hot\""
  std::string param;          // the body key at fault ("temperature"), empty when none is
};

using Entry = std::variant<Request, Refusal>;

// Every entry of an input in input order (blank and whitespace-only lines skipped), with what
// identifies the input for resuming (journal.h fingerprints it).
struct BatchInput {
  std::string source;                 // the file's path, or the name given for a text
  std::uint64_t size = 0;             // bytes of the input text
  std::uint64_t content_hash = 0;     // FNV-1a (64 bit) of the input text
  std::vector<Entry> entries;
  std::vector<std::string> warnings;  // one per ignored body key: "body.user is ignored ... (lines 2, 5 and 3 more)"

  std::size_t servable() const;  // entries that are Requests
};

// Reads an OpenAI batch input file. Throws accel::InputFileError naming the file when it cannot
// be read or holds no request lines; a bad line becomes a Refusal and the others are served.
BatchInput read_batch_file(const std::string& path);
// The same from text; `source` names it in messages.
BatchInput parse_batch_text(std::string_view text, const std::string& source);

// One line of a batch file (no newline), numbered `line_number`. Duplicate custom_ids are the
// caller's to find (parse_batch_text does); the ignored body keys it saw are added to `ignored`.
Entry parse_batch_line(std::string_view line, std::size_t line_number, std::vector<std::string>* ignored = nullptr);

// How a prompts file's lines become requests: the text to continue, or one user message each.
enum class PromptForm { kCompletion, kChatMessage };

// Reads a prompts file: one prompt per line, kept as written (a trailing "\r" removed), lines
// holding only whitespace skipped, custom_ids "prompt-<line>". A line that is not valid UTF-8
// is refused. Throws accel::InputFileError when the file cannot be read or holds no prompt.
BatchInput read_prompts_file(const std::string& path, PromptForm form = PromptForm::kCompletion);
BatchInput parse_prompts_text(std::string_view text, const std::string& source,
                              PromptForm form = PromptForm::kCompletion);

}  // namespace accel::batch
