// Chat templates as transformers applies them, generation_config.json's defaults and stop
// strings. Torch-free.
#include "accel/models/chat.h"

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/models/tokenizer_json.h"
#include "jinja.h"
#include "json_keys.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace accel::models {
namespace {

namespace fs = std::filesystem;
using ordered = nlohmann::ordered_json;

// transformers' SPECIAL_TOKENS_ATTRIBUTES: what special_tokens_map gives a template.
const char* const kSpecialTokens[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};

// A special token of tokenizer_config.json: a string, or an AddedToken object with "content".
std::optional<std::string> token_text(const nlohmann::json& value, const std::string& key, const std::string& source) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) return value["content"].get<std::string>();
  throw UsageError(source + ": key '" + key + "' has value " + text::quote(value.dump()) +
                   "; expected a token string or an object with a string \"content\"");
}

std::map<std::string, std::string> special_tokens_of(const nlohmann::json& config, const std::string& source) {
  std::map<std::string, std::string> tokens;
  for (const char* key : kSpecialTokens)
    if (config.contains(key))
      if (auto t = token_text(config[key], key, source)) tokens[key] = *t;
  return tokens;
}

std::vector<std::string> additional_tokens_of(const nlohmann::json& config, const std::string& source) {
  std::vector<std::string> out;
  for (const auto& item : detail::list_or_empty(config, "additional_special_tokens", source))
    if (auto t = token_text(item, "additional_special_tokens", source)) out.push_back(*t);
  return out;
}

// tokenizer_config.json's chat_template: one string, or a list of {"name", "template"}.
std::map<std::string, std::string> templates_of(const nlohmann::json& config, const std::string& source) {
  std::map<std::string, std::string> out;
  if (!config.contains("chat_template") || config["chat_template"].is_null()) return out;
  const auto& value = config["chat_template"];
  if (value.is_string()) {
    out["default"] = value.get<std::string>();
    return out;
  }
  if (!value.is_array())
    throw UsageError(source + ": key 'chat_template' must be a string or a list of {\"name\", \"template\"}, got " +
                     text::quote(value.dump()));
  for (const auto& item : value) {
    if (!item.is_object() || !item.contains("name") || !item["name"].is_string() || !item.contains("template") ||
        !item["template"].is_string())
      throw UsageError(source + ": an entry of 'chat_template' is " + text::quote(item.dump()) +
                       "; expected {\"name\": string, \"template\": string}");
    out[item["name"].get<std::string>()] = item["template"].get<std::string>();
  }
  return out;
}

// A request's JSON field, or `fallback` when it is empty. UsageError naming the field.
ordered parse_field(const std::string& text, const char* field, ordered fallback, bool must_be_array) {
  if (text.empty()) return fallback;
  if (const auto problem = text::json_nesting_problem(text)) throw UsageError(std::string("chat request: ") + field + ": " + *problem);
  ordered j;
  try {
    j = ordered::parse(text);
  } catch (const ordered::exception& e) {
    throw UsageError(std::string("chat request: ") + field + " is not valid JSON (" + text::excerpt(e.what()) + ")");
  }
  if (must_be_array ? !j.is_array() : !j.is_object())
    throw UsageError(std::string("chat request: ") + field + " must be a JSON " + (must_be_array ? "array" : "object") +
                     ", got " + text::quote(j.dump()));
  return j;
}

void check_messages(const ordered& messages) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw UsageError("chat request: messages[" + std::to_string(i) + "] is " + text::quote(m.dump()) +
                       "; expected an object with a string \"role\"");
  }
}

}  // namespace

struct ChatTemplate::Impl {
  std::map<std::string, jinja::Template> templates;
  jinja::DictData special;
  std::string source;

  const jinja::Template& choose(const ChatRequest& request, bool has_tools) const {
    std::string name = request.template_name;
    if (name.empty()) name = has_tools && templates.count("tool_use") ? "tool_use" : "default";
    const auto it = templates.find(name);
    if (it != templates.end()) return it->second;
    std::vector<std::string> names;
    for (const auto& [n, t] : templates) names.push_back(n);
    throw UsageError(source + ": no chat template named " + text::quote(name) + " (it has: " + text::join(names, ", ") +
                     ")" + (request.template_name.empty() ? "; name one of them" : ""));
  }
};

ChatTemplate::ChatTemplate(const std::map<std::string, std::string>& templates,
                           const std::map<std::string, std::string>& special_tokens, const std::string& source)
    : impl_(std::make_unique<Impl>()) {
  impl_->source = source;
  for (const auto& [name, text] : templates) {
    try {
      impl_->templates.emplace(name, jinja::Template(text));
    } catch (const jinja::TemplateError& e) {
      throw UsageError(source + ": chat template " + text::quote(name) + ": " + e.what());
    }
  }
  for (const auto& [key, token] : special_tokens) impl_->special.put(key, jinja::Value::string(token));
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

ChatTemplate ChatTemplate::from_directory(const std::string& dir) {
  const fs::path d(dir);
  const auto config_path = (d / "tokenizer_config.json").string();
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(config_path)) config = detail::parse_json_object(detail::read_text_file(config_path, "tokenizer config"), config_path);
  auto templates = templates_of(config, config_path);
  std::string source = config_path;
  const auto jinja_path = d / "chat_template.jinja";
  if (fs::exists(jinja_path)) {  // newer checkpoints keep the template in its own file; it wins
    templates["default"] = detail::read_text_file(jinja_path.string(), "chat template");
    source = jinja_path.string();
  }
  if (templates.empty())
    throw FileError(dir, "has no chat template: expected chat_template.jinja or a \"chat_template\" in tokenizer_config.json");
  ChatTemplate out(templates, special_tokens_of(config, config_path), source);
  const auto additional = additional_tokens_of(config, config_path);
  if (!additional.empty()) {
    std::vector<jinja::Value> list;
    for (const auto& t : additional) list.push_back(jinja::Value::string(t));
    out.impl_->special.put("additional_special_tokens", jinja::Value::list(std::move(list)));
  }
  return out;
}

std::vector<std::string> ChatTemplate::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : impl_->templates) out.push_back(name);
  return out;
}

std::string ChatTemplate::render(const ChatRequest& request) const {
  const auto messages = parse_field(request.messages, "messages", ordered(), true);
  if (messages.is_null()) throw UsageError("chat request: messages is missing");
  check_messages(messages);
  const auto tools = parse_field(request.tools, "tools", ordered(), true);
  const auto documents = parse_field(request.documents, "documents", ordered(), true);
  const auto kwargs = parse_field(request.template_kwargs, "chat_template_kwargs", ordered::object(), false);
  const auto& chosen = impl_->choose(request, !tools.is_null());
  try {
    auto variables = impl_->special;
    for (const auto& [key, value] : kwargs.items()) variables.put(key, jinja::Value::from_json(value));
    variables.put("messages", jinja::Value::from_json(messages));
    variables.put("tools", jinja::Value::from_json(tools));
    variables.put("documents", jinja::Value::from_json(documents));
    variables.put("add_generation_prompt", jinja::Value::boolean(request.add_generation_prompt));
    jinja::RenderOptions options;
    options.now = request.now;
    return chosen.render(variables, options);
  } catch (const jinja::TemplateError& e) {
    throw UsageError(impl_->source + ": chat template: " + e.what());
  }
}

GenerationDefaults load_generation_defaults(const std::string& dir) {
  GenerationDefaults out;
  const auto read_eos = [&](const nlohmann::json& j, const std::string& source) {
    if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return false;
    const auto& v = j["eos_token_id"];
    std::vector<std::int64_t> ids;
    if (v.is_number_integer()) {
      ids.push_back(v.get<std::int64_t>());
    } else if (v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& x) { return x.is_number_integer(); })) {
      for (const auto& x : v) ids.push_back(x.get<std::int64_t>());
    } else {
      throw UsageError(source + ": key 'eos_token_id' has value " + text::quote(v.dump()) + "; expected an integer or a list of integers");
    }
    out.eos_token_ids = ids;
    return true;
  };
  const auto generation_path = (fs::path(dir) / "generation_config.json").string();
  bool have_eos = false;
  if (fs::exists(generation_path)) {
    const auto j = detail::parse_json_object(detail::read_text_file(generation_path, "generation config"), generation_path);
    have_eos = read_eos(j, generation_path);
    detail::read_key(j, "do_sample", out.do_sample, generation_path);
    detail::read_key(j, "temperature", out.temperature, generation_path);
    detail::read_key(j, "top_p", out.top_p, generation_path);
    detail::read_key(j, "top_k", out.top_k, generation_path);
  }
  const auto config_path = (fs::path(dir) / "config.json").string();
  if (!have_eos && fs::exists(config_path))
    read_eos(detail::parse_json_object(detail::read_text_file(config_path, "config"), config_path), config_path);
  return out;
}

SamplingChoice choose_sampling(const GenerationDefaults& defaults, const SamplingRequest& request) {
  SamplingChoice out;
  const bool sample_by_default = defaults.do_sample.value_or(false);
  out.temperature = request.temperature.value_or(sample_by_default ? defaults.temperature.value_or(1.0) : 0.0);
  out.top_p = request.top_p.value_or(sample_by_default ? defaults.top_p.value_or(1.0) : 1.0);
  out.top_k = request.top_k.value_or(sample_by_default ? defaults.top_k.value_or(0) : 0);
  return out;
}

StopStrings::StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const auto& s : stops_) {
    if (s.empty()) throw UsageError("a stop string is empty; it would end every completion before its first token");
    longest_ = std::max(longest_, s.size());
  }
}

std::optional<std::size_t> StopStrings::find(std::string_view text) {
  // A decoded completion changes only in its last bytes as tokens arrive (an incomplete UTF-8
  // sequence decodes as up to three U+FFFD until its last byte comes): look again from a little
  // before where the last call stopped, far enough back for a stop string ending in new text.
  constexpr std::size_t kRedecodedBytes = 16;
  const std::size_t margin = longest_ + kRedecodedBytes;
  const std::size_t from = std::min(scanned_ > margin ? scanned_ - margin : 0, text.size());
  scanned_ = text.size();
  std::optional<std::size_t> earliest;
  for (const auto& stop : stops_) {
    const auto at = text.find(stop, from);
    if (at != std::string_view::npos && (!earliest || at < *earliest)) earliest = at;
  }
  return earliest;
}

std::size_t StopStrings::held_back(std::string_view text) const {
  std::size_t longest = 0;
  for (const auto& stop : stops_)
    for (std::size_t n = std::min(stop.size() - 1, text.size()); n > longest; --n)
      if (text.substr(text.size() - n) == std::string_view(stop).substr(0, n)) {
        longest = n;
        break;
      }
  return longest;
}

ChatModel::ChatModel(std::unique_ptr<Tokenizer> tokenizer, ChatTemplate chat_template, GenerationDefaults defaults,
                     std::optional<std::int64_t> eos_token_id)
    : tokenizer_(std::move(tokenizer)), template_(std::move(chat_template)), defaults_(std::move(defaults)),
      eos_token_id_(eos_token_id) {}

ChatModel ChatModel::from_directory(const std::string& dir) {
  auto tokenizer = load_tokenizer(dir);
  auto chat_template = ChatTemplate::from_directory(dir);
  auto defaults = load_generation_defaults(dir);
  std::optional<std::int64_t> eos;
  const auto config_path = (fs::path(dir) / "tokenizer_config.json").string();
  if (fs::exists(config_path)) {
    const auto config = detail::parse_json_object(detail::read_text_file(config_path, "tokenizer config"), config_path);
    const auto tokens = special_tokens_of(config, config_path);
    if (const auto it = tokens.find("eos_token"); it != tokens.end()) {
      const auto ids = tokenizer->plain_ids(it->second);
      if (ids.size() == 1) eos = ids[0];
    }
  }
  return ChatModel(std::move(tokenizer), std::move(chat_template), std::move(defaults), eos);
}

ChatPrompt ChatModel::prompt(const ChatRequest& request) const {
  ChatPrompt out;
  out.text = template_.render(request);
  out.ids = tokenizer_->plain_ids(out.text);
  return out;
}

std::vector<std::int64_t> ChatModel::stop_token_ids() const {
  auto ids = defaults_.eos_token_ids;
  if (eos_token_id_ && std::find(ids.begin(), ids.end(), *eos_token_id_) == ids.end()) ids.push_back(*eos_token_id_);
  return ids;
}

}  // namespace accel::models
