#pragma once
// Instruct models as transformers drives them: a checkpoint's chat template turns a conversation
// into the prompt text (apply_chat_template), the text is encoded without the special tokens the
// tokenizer's post-processor would add (the template wrote BOS where it wants one), generation
// stops at generation_config.json's eos ids and at the request's stop strings, and sampling
// defaults come from generation_config.json unless the request sets them. Torch-free: the
// template interpreter (src/jinja*.cpp) and the tokenizer need no LibTorch.
#include "accel/models/tokenizer.h"

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accel::models {

// One conversation to render, as a chat completions request gives it. Each JSON field is text
// (an empty string: not given); objects keep their key order, which tojson prints.
struct ChatRequest {
  std::string messages;         // an array of {"role", "content", ...}; content a string or text parts
  std::string tools;            // an array of tool schemas, passed to the template as `tools`
  std::string documents;        // an array, passed as `documents`
  std::string template_kwargs;  // an object of further template variables ({"enable_thinking": false})
  bool add_generation_prompt = true;
  // A named template of a checkpoint that has several; empty: "tool_use" when tools are given
  // and the checkpoint names one so, else "default".
  std::string template_name;
  // What strftime_now() formats (local time); unset: now.
  std::optional<std::time_t> now;
};

class ChatTemplate {
 public:
  // The chat template of a checkpoint directory: chat_template.jinja when present, else
  // tokenizer_config.json's `chat_template` (a string, or a list of {name, template}), with the
  // special tokens of tokenizer_config.json (bos_token, eos_token, unk_token, sep_token,
  // pad_token, cls_token, mask_token, additional_special_tokens; strings or {"content": ...}).
  // FileError naming the directory when it has neither; UsageError naming the file and the line
  // for a template outside the supported subset of Jinja (see docs/models.md).
  static ChatTemplate from_directory(const std::string& dir);
  // Templates by name ("default" is the one used unless another is asked for) and the special
  // tokens given to them. UsageError naming `source` and the line for a template that cannot be
  // parsed.
  ChatTemplate(const std::map<std::string, std::string>& templates, const std::map<std::string, std::string>& special_tokens,
               const std::string& source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // The prompt text, as transformers' apply_chat_template(tokenize=False) renders it.
  // UsageError naming the request field for malformed JSON, or the template line for a render
  // failure (raise_exception("Conversation roles must alternate..."), a limit reached).
  std::string render(const ChatRequest& request) const;
  std::vector<std::string> names() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// generation_config.json's end-of-sequence ids and sampling defaults (config.json's eos_token_id
// when generation_config.json has none). Unset fields: the file does not set them.
struct GenerationDefaults {
  std::vector<std::int64_t> eos_token_ids;
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> top_k;
};
// Absent files give empty defaults; a malformed one is a UsageError naming the file and key.
GenerationDefaults load_generation_defaults(const std::string& dir);

// What a request asks of sampling; unset: the checkpoint's default.
struct SamplingRequest {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> top_k;
};
struct SamplingChoice {
  double temperature = 0;  // 0: greedy
  double top_p = 1;        // 1: off
  std::int64_t top_k = 0;  // 0: off
};
// The request's value where it sets one, else the checkpoint's: greedy unless the request sets
// a temperature or generation_config.json says do_sample (then its temperature, default 1, and
// its top_p and top_k).
SamplingChoice choose_sampling(const GenerationDefaults& defaults, const SamplingRequest& request);

// The earliest of a request's stop strings in a growing completion text. A stop string split
// over several tokens is found once its last piece is decoded; what precedes the match is the
// completion, the stop string and what follows it are not.
class StopStrings {
 public:
  // UsageError for an empty stop string (it would end every completion at once).
  explicit StopStrings(std::vector<std::string> stops);
  bool empty() const { return stops_.empty(); }
  // The byte offset in `text` where the completion ends (the start of the earliest stop
  // string), or nullopt. `text` is the decoded completion so far; each call looks only where a
  // match can be that a call on an earlier prefix of the same completion did not see (a decoded
  // text changes only in its last few bytes as tokens arrive), so calling it after every token
  // costs the new text plus the longest stop string.
  std::optional<std::size_t> find(std::string_view text);
  // How many bytes at the end of `text` could begin a stop string: what a caller streaming the
  // completion holds back until the next token decides.
  std::size_t held_back(std::string_view text) const;

 private:
  std::vector<std::string> stops_;
  std::size_t longest_ = 0;
  std::size_t scanned_ = 0;
};

// A chat prompt ready for generation.
struct ChatPrompt {
  std::string text;                // the rendered template
  std::vector<std::int64_t> ids;   // text encoded with add_special_tokens=False
};

// A checkpoint's tokenizer, chat template and generation defaults, loaded once: what the main
// job needs to serve chat requests (and to print them with --render_only, without weights).
class ChatModel {
 public:
  // FileError / UsageError naming the directory and the file at fault.
  static ChatModel from_directory(const std::string& dir);
  ChatPrompt prompt(const ChatRequest& request) const;
  // generation_config.json's eos ids, and the tokenizer_config.json eos_token's id when not
  // among them (chat turns end with it).
  std::vector<std::int64_t> stop_token_ids() const;
  const GenerationDefaults& generation_defaults() const { return defaults_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ChatTemplate& chat_template() const { return template_; }

 private:
  ChatModel(std::unique_ptr<Tokenizer> tokenizer, ChatTemplate chat_template, GenerationDefaults defaults,
            std::optional<std::int64_t> eos_token_id);
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate template_;
  GenerationDefaults defaults_;
  std::optional<std::int64_t> eos_token_id_;
};

}  // namespace accel::models
