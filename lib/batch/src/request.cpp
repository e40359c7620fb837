#include "accel/batch/request.h"

#include <cerrno>
#include <map>
#include <unordered_map>

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/text.h"
#include "body.h"
#include "hash.h"

namespace accel::batch {
namespace {

using nlohmann::json;
using detail::BadRequest;

constexpr std::string_view kTopLevelKeys = "custom_id, method, url, body";

Refusal refusal(std::size_t line, std::string custom_id, const std::string& message, std::string param = "") {
  return Refusal{line, std::move(custom_id), "line " + std::to_string(line) + ": " + message, std::move(param)};
}

// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 5: ..." without the
// exception's id and the line, which is always 1 here and would contradict the file's.
std::string parse_failure(const json::parse_error& e) {
  std::string text = e.what();
  if (const auto end = text.find("] "); text.rfind("[json.exception.", 0) == 0 && end != std::string::npos)
    text.erase(0, end + 2);
  if (const auto at = text.find("at line 1, column "); at != std::string::npos) text.replace(at, 18, "at column ");
  return text::excerpt(text);
}

Endpoint endpoint_of(const json& url) {
  if (url == url_of(Endpoint::kCompletions)) return Endpoint::kCompletions;
  if (url == url_of(Endpoint::kChatCompletions)) return Endpoint::kChatCompletions;
  throw BadRequest{"", "url " + detail::shown(url) + " is not served; accepted: \"" +
                           std::string(url_of(Endpoint::kCompletions)) + "\", \"" +
                           std::string(url_of(Endpoint::kChatCompletions)) + "\""};
}

// The envelope around the body: method, url and no other key than the four.
Endpoint check_envelope(const json& doc) {
  for (const auto& [key, value] : doc.items()) {
    if (key != "custom_id" && key != "method" && key != "url" && key != "body")
      throw BadRequest{"", "unknown key " + detail::shown(key) + "; a request line holds " + std::string(kTopLevelKeys)};
  }
  const auto method = doc.find("method");
  if (method == doc.end()) throw BadRequest{"", "method is missing; accepted: \"POST\""};
  if (*method != "POST") throw BadRequest{"", "method " + detail::shown(*method) + " is not accepted; accepted: \"POST\""};
  const auto url = doc.find("url");
  if (url == doc.end()) throw BadRequest{"", "url is missing"};
  const Endpoint endpoint = endpoint_of(*url);
  const auto body = doc.find("body");
  if (body == doc.end() || !body->is_object())
    throw BadRequest{"", body == doc.end() ? "body is missing" : "body must be an object, got " + detail::shown(*body)};
  return endpoint;
}

std::string custom_id_of(const json& doc, std::size_t line_number, std::optional<Refusal>& refused) {
  const auto id = doc.find("custom_id");
  if (id == doc.end()) {
    refused = refusal(line_number, "", "custom_id is missing; every request needs a unique one");
  } else if (!id->is_string() || id->get_ref<const std::string&>().empty()) {
    refused = refusal(line_number, "", "custom_id must be a non-empty string, got " + detail::shown(*id));
  } else {
    return id->get<std::string>();
  }
  return "";
}

// "body.user is ignored (it does not change the generated text): lines 2, 5, 9 and 3 more".
std::string ignored_warning(const std::string& source, const std::string& key, const std::vector<std::size_t>& lines) {
  std::string where;
  const std::size_t shown_lines = std::min<std::size_t>(lines.size(), 3);
  for (std::size_t i = 0; i < shown_lines; ++i) where += (i == 0 ? "" : ", ") + std::to_string(lines[i]);
  if (lines.size() > shown_lines) where += " and " + std::to_string(lines.size() - shown_lines) + " more";
  return source + ": body." + key + " is ignored (it does not change the generated text): line" +
         (lines.size() == 1 ? " " : "s ") + where;
}

// The offset of the first byte that does not belong to a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points past U+10FFFF included), or nothing.
std::optional<std::size_t> first_invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    std::size_t length = 1;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return i;
    }
    if (i + length > text.size() || byte(i + 1) < low || byte(i + 1) > high) return i;
    for (std::size_t k = 2; k < length; ++k)
      if ((byte(i + k) & 0xC0) != 0x80) return i;
    i += length;
  }
  return std::nullopt;
}

// Calls `each(line, number)` for every line of `text` that holds more than whitespace, without
// its newline and a trailing "\r".
template <typename Each>
void for_each_line(std::string_view text, Each each) {
  std::size_t number = 0;
  for (std::size_t start = 0; start < text.size();) {
    const auto end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    ++number;
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t\r\v\f") != std::string_view::npos) each(line, number);
  }
}

BatchInput input_of(std::string_view text, const std::string& source) {
  BatchInput input;
  input.source = source;
  input.size = text.size();
  input.content_hash = detail::fnv1a(text);
  return input;
}

std::string read_input(const std::string& path, const std::string& what) {
  files::ReadResult read = files::try_read_whole(path);
  if (!read.ok()) throw InputFileError(path, "cannot read the " + what, read.error);
  return std::move(read.contents);
}

}  // namespace

std::string_view url_of(Endpoint endpoint) {
  return endpoint == Endpoint::kCompletions ? "/v1/completions" : "/v1/chat/completions";
}

std::size_t BatchInput::servable() const {
  std::size_t n = 0;
  for (const auto& entry : entries) n += std::holds_alternative<Request>(entry);
  return n;
}

Entry parse_batch_line(std::string_view line, std::size_t line_number, std::vector<std::string>* ignored) {
  if (const auto problem = text::json_nesting_problem(line)) return refusal(line_number, "", *problem);
  json doc;
  try {
    doc = json::parse(line);
  } catch (const json::parse_error& e) {
    return refusal(line_number, "", "not valid JSON: " + parse_failure(e));
  }
  if (!doc.is_object())
    return refusal(line_number, "", "expected a JSON object with " + std::string(kTopLevelKeys) + ", got " + detail::shown(doc));
  std::optional<Refusal> refused;
  Request request;
  request.custom_id = custom_id_of(doc, line_number, refused);
  if (refused) return *refused;
  request.line = line_number;
  try {
    request.endpoint = check_envelope(doc);
    detail::apply_body(doc["body"], request, ignored);
  } catch (const BadRequest& e) {
    return refusal(line_number, request.custom_id, e.message, e.param);
  }
  return request;
}

BatchInput parse_batch_text(std::string_view text, const std::string& source) {
  BatchInput input = input_of(text, source);
  std::unordered_map<std::string, std::size_t> first_line;
  std::map<std::string, std::vector<std::size_t>> ignored_lines;
  for_each_line(text, [&](std::string_view line, std::size_t number) {
    std::vector<std::string> ignored;
    Entry entry = parse_batch_line(line, number, &ignored);
    for (const auto& key : ignored) ignored_lines[key].push_back(number);
    const std::string& custom_id = std::visit([](const auto& e) -> const std::string& { return e.custom_id; }, entry);
    if (!custom_id.empty()) {
      const auto [earlier, fresh] = first_line.emplace(custom_id, number);
      if (!fresh) {
        entry = refusal(number, "", "custom_id " + detail::shown(custom_id) + " repeats line " +
                                        std::to_string(earlier->second) + "'s; custom_ids must be unique");
      }
    }
    input.entries.push_back(std::move(entry));
  });
  if (input.entries.empty())
    throw InputFileError(source, "holds no requests; expected one JSON object per line with " + std::string(kTopLevelKeys));
  for (const auto& [key, lines] : ignored_lines) input.warnings.push_back(ignored_warning(source, key, lines));
  return input;
}

BatchInput read_batch_file(const std::string& path) { return parse_batch_text(read_input(path, "batch input file"), path); }

BatchInput parse_prompts_text(std::string_view text, const std::string& source, PromptForm form) {
  BatchInput input = input_of(text, source);
  for_each_line(text, [&](std::string_view line, std::size_t number) {
    const std::string custom_id = "prompt-" + std::to_string(number);
    if (const auto bad = first_invalid_utf8(line)) {
      input.entries.push_back(refusal(number, custom_id, "not valid UTF-8 (byte " + std::to_string(*bad + 1) + ")"));
      return;
    }
    Request request;
    request.custom_id = custom_id;
    request.line = number;
    if (form == PromptForm::kCompletion) {
      request.prompt = std::string(line);
    } else {
      request.endpoint = Endpoint::kChatCompletions;
      request.chat.messages = json::array({{{"role", "user"}, {"content", std::string(line)}}}).dump();
    }
    input.entries.push_back(std::move(request));
  });
  if (input.entries.empty()) throw InputFileError(source, "holds no prompts; expected one prompt per line");
  return input;
}

BatchInput read_prompts_file(const std::string& path, PromptForm form) {
  return parse_prompts_text(read_input(path, "prompts file"), path, form);
}

}  // namespace accel::batch
