// The schema: every key a file may hold, how its value is checked, and Node <-> Config.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>
#include <variant>

#include "accel/config/config.h"
#include "accel/config/store.h"
#include "accel/core/distributed_type.h"
#include "accel/core/error.h"
#include "accel/core/precision.h"
#include "accel/core/text.h"
#include "accel/launch/options.h"
#include "formats.h"

namespace accel::config {
namespace {

using Kind = Node::Kind;
using Member = std::variant<std::monostate, std::optional<bool> Config::*, std::optional<int> Config::*,
                            std::optional<double> Config::*, std::optional<std::string> Config::*>;

enum class Type {
  Bool,
  Int,
  Number,
  Text,
  Choice,
  IdList,   // "0,1,3"
  Section,  // accelerate's settings for the job (fsdp_config, ...): kept as written, passed on as variables
  Ignored,  // a feature accel-launch does not run (TPU): any value, kept as written
};

struct Field {
  const char* key = "";
  Type type = Type::Ignored;
  Member member;
  double min = 0;
  double max = 0;
  std::vector<std::string> choices;      // Choice: what accel-launch runs
  std::vector<std::string> unsupported;  // Choice: accelerate's values that accel-launch does not run
  bool allow_all = false;                // IdList: "all" is accepted
  bool own = false;                      // accel-launch's key, unknown to accelerate
};

Field scalar(const char* key, Type type, Member member) {
  Field field;
  field.key = key;
  field.type = type;
  field.member = member;
  return field;
}
Field choice(const char* key, std::optional<std::string> Config::*member, std::vector<std::string> choices,
             std::vector<std::string> unsupported = {}) {
  Field field = scalar(key, Type::Choice, member);
  field.choices = std::move(choices);
  field.unsupported = std::move(unsupported);
  return field;
}

// A launch option's key, as the option table (accel/launch/options.h) defines it.
Field launch_setting(const launch::LaunchOption& option) {
  static constexpr Type kTypes[] = // in launch::ValueType's order
      {Type::Bool, Type::Int, Type::Number, Type::Text, Type::Choice, Type::IdList};
  Field field = scalar(option.key, kTypes[static_cast<int>(option.type)], {});
  std::visit(
      [&field](auto setting) {
        if constexpr (!std::is_same_v<decltype(setting), std::monostate>) {
          std::remove_reference_t<decltype(std::declval<Config&>().*setting)> Config::*converted = setting;
          field.member = converted;
        }
      },
      option.member);
  field.min = option.min;
  field.max = option.max;
  if (option.choices) field.choices = option.choices();
  field.allow_all = option.allow_all;
  field.own = option.owner == launch::Owner::Ours;
  return field;
}

const std::vector<Field>& fields() {
  static const std::vector<Field> table = [] {
    std::vector<Field> list = {
        choice("compute_environment", &Config::compute_environment, {"LOCAL_MACHINE"}, {"AMAZON_SAGEMAKER"}),
        // Every mode accelerate knows loads; XLA/TPU is refused at launch (config update and env
        // still read such a file).
        choice("distributed_type", &Config::distributed_type, distributed_type_names()),
    };
    for (const launch::LaunchOption& option : launch::launch_options()) {
      if (option.key) list.push_back(launch_setting(option));
    }
    for (const char* key : {"deepspeed_config", "fsdp_config", "fp8_config", "megatron_lm_config", "dynamo_config",
                            "parallelism_config", "mpirun_config"}) {
      list.push_back(scalar(key, Type::Section, {}));
    }
    for (const char* key : {"ipex_config", "tpu_name", "tpu_zone", "tpu_use_cluster", "tpu_use_sudo", "tpu_env", "tpu_vm",
                            "commands", "command_file"}) {
      list.push_back(scalar(key, Type::Ignored, {}));
    }
    return list;
  }();
  return table;
}

// Keys older accelerate versions wrote, read and migrated by the checker.
constexpr const char* kLegacyFp16 = "fp16";
constexpr const char* kLegacyDynamoBackend = "dynamo_backend";

const Field* find_field(const std::string& key) {
  for (const Field& field : fields()) {
    if (key == field.key) return &field;
  }
  return nullptr;
}

std::string number_text(double value) {
  std::ostringstream out;
  out << std::setprecision(15) << value;
  return out.str();
}

std::string range_text(const Field& field) {
  if (field.type == Type::Number) return "a number from " + number_text(field.min) + " to " + number_text(field.max);
  return "an integer from " + number_text(field.min) + " to " + number_text(field.max);
}

bool is_switched_off(const Node& node) {
  if (node.is_empty_setting()) return true;
  if (node.kind == Kind::String) return node.text == "NO" || node.text == "no";
  if (node.kind == Kind::Map) {
    return std::all_of(node.entries.begin(), node.entries.end(), [](const Entry& e) { return is_switched_off(e.value); });
  }
  return false;
}

std::optional<std::string> suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  for (const auto& candidate : candidates) {
    if (candidate.size() == word.size() &&
        std::equal(word.begin(), word.end(), candidate.begin(),
                   [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == std::toupper(static_cast<unsigned char>(b)); })) {
      return candidate;
    }
  }
  return text::closest_match(word, candidates);
}

// Reads one file's entries into a Config, collecting every problem before giving up.
class Checker {
 public:
  explicit Checker(std::string origin) : origin_(std::move(origin)) {}

  LoadedConfig check(const Node& root) {
    if (root.kind == Kind::Null) {
      throw UsageError(origin_ + ": the file is empty; write at least `distributed_type: NO` or run `accel-launch config default`");
    }
    if (root.kind != Kind::Map) {
      fail(root.where, "", "the file must be a mapping of keys to values, found " + root.describe());
      throw UsageError(text::join(problems_, "\n"));
    }
    for (const Entry& entry : root.entries) {
      if (entry.key == "compute_environment" && entry.value.kind == Kind::String && entry.value.text == "AMAZON_SAGEMAKER") {
        throw UsageError(origin_ + ":" + std::to_string(entry.value.where.line) +
                         ": compute_environment AMAZON_SAGEMAKER: accel-launch runs jobs on local machines only; "
                         "launch SageMaker jobs with `accelerate launch`");
      }
    }
    for (const Entry& entry : root.entries) read(entry);
    migrate_legacy();
    check_together();
    if (!problems_.empty()) throw UsageError(text::join(problems_, "\n"));
    for (const auto& [key, where] : where_) result_.origins[key] = origin_ + ":" + std::to_string(where.line) + ": " + key;
    if (!ignored_in_use_.empty()) {
      result_.notes.push_back(origin_ + ": ignoring settings for features accel-launch does not run: " +
                              text::join(ignored_in_use_, ", "));
    }
    return result_;
  }

 private:
  void fail(Position where, const std::string& key, const std::string& problem) {
    std::string line = origin_ + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": ";
    if (!key.empty()) line += key + ": ";
    problems_.push_back(line + problem);
  }
  void wrong_value(const Entry& entry, const std::string& problem, const std::string& accepted) {
    fail(entry.value.where, entry.key, entry.value.describe() + " " + problem + "; accepted: " + accepted);
  }

  void read(const Entry& entry) {
    where_[entry.key] = entry.value.where;
    if (entry.key == kLegacyFp16 || entry.key == kLegacyDynamoBackend) {
      legacy_[entry.key] = entry;
      return;
    }
    const Field* field = find_field(entry.key);
    if (!field) {
      unknown_key(entry);
      return;
    }
    // A null value is accelerate's way of writing "not set".
    if (entry.value.kind == Kind::Null && field->type != Type::Ignored && field->type != Type::Section) return;
    Config& config = result_.config;
    switch (field->type) {
      case Type::Bool:
        if (auto value = read_bool(entry)) config.*std::get<std::optional<bool> Config::*>(field->member) = value;
        break;
      case Type::Int:
        if (auto value = read_int(*field, entry)) config.*std::get<std::optional<int> Config::*>(field->member) = value;
        break;
      case Type::Number:
        if (auto value = read_number(*field, entry)) config.*std::get<std::optional<double> Config::*>(field->member) = value;
        break;
      case Type::Text:
        if (entry.value.kind != Kind::String || entry.value.text.empty()) {
          wrong_value(entry, "is not a non-empty string",
                      entry.value.is_scalar() && !entry.value.text.empty() ? "a string (quote it: " + text::quote(entry.value.text) + ")" : "a string");
        } else {
          config.*std::get<std::optional<std::string> Config::*>(field->member) = entry.value.text;
        }
        break;
      case Type::Choice:
        if (auto value = read_choice(*field, entry)) config.*std::get<std::optional<std::string> Config::*>(field->member) = value;
        break;
      case Type::IdList:
        if (auto value = read_ids(*field, entry)) config.*std::get<std::optional<std::string> Config::*>(field->member) = value;
        break;
      case Type::Section:
        if (entry.value.kind != Kind::Map && !entry.value.is_empty_setting()) {
          wrong_value(entry, "is not a mapping", "a mapping of accelerate's " + entry.key + " keys, or {}");
          break;
        }
        config.ignored[entry.key] = entry.value;
        break;
      case Type::Ignored:
        config.ignored[entry.key] = entry.value;
        if (!is_switched_off(entry.value)) ignored_in_use_.push_back(entry.key);
        break;
    }
  }

  void unknown_key(const Entry& entry) {
    std::string problem = "unknown key " + text::quote(entry.key);
    if (auto hint = suggestion(entry.key, known_keys())) {
      problem += " (did you mean '" + *hint + "'?)";
    } else {
      std::vector<std::string> runnable;
      for (const Field& field : fields()) {
        if (field.type != Type::Ignored && field.type != Type::Section) runnable.emplace_back(field.key);
      }
      problem += "; accepted keys: " + text::join(runnable, ", ") + " (and accelerate's sections, see docs/config.md)";
    }
    fail(entry.where, "", problem);
  }

  std::optional<bool> read_bool(const Entry& entry) {
    if (entry.value.kind == Kind::Bool) return entry.value.text == "true";
    // accelerate before 0.20 wrote downcast_bf16: 'no'.
    if (entry.key == "downcast_bf16" && entry.value.kind == Kind::String && (entry.value.text == "no" || entry.value.text == "yes")) {
      return entry.value.text == "yes";
    }
    wrong_value(entry, "is not a boolean", "true or false");
    return std::nullopt;
  }

  std::optional<int> read_int(const Field& field, const Entry& entry) {
    std::optional<long long> value;
    if (entry.value.kind == Kind::Integer) value = text::parse_integer(entry.value.text);
    const std::string accepted = range_text(field) + (entry.key == "num_processes" ? " (or -1: not set)" : "");
    if (!value) {
      wrong_value(entry, "is not an integer", accepted);
      return std::nullopt;
    }
    if (entry.key == "num_processes" && *value == -1) return std::nullopt;
    if (*value < field.min || *value > field.max) {
      wrong_value(entry, "is out of range", accepted);
      return std::nullopt;
    }
    return static_cast<int>(*value);
  }

  std::optional<double> read_number(const Field& field, const Entry& entry) {
    if (entry.value.kind != Kind::Integer && entry.value.kind != Kind::Float) {
      wrong_value(entry, "is not a number", range_text(field));
      return std::nullopt;
    }
    const double value = std::strtod(entry.value.text.c_str(), nullptr);
    if (!(value >= field.min && value <= field.max)) {
      wrong_value(entry, "is out of range", range_text(field));
      return std::nullopt;
    }
    return value;
  }

  std::optional<std::string> read_choice(const Field& field, const Entry& entry) {
    const std::string accepted = text::join(field.choices, ", ");
    const Node& value = entry.value;
    // YAML 1.1 reads an unquoted NO as the boolean false; accelerate quotes it, people do not.
    if (value.kind == Kind::Bool && value.text == "false") {
      for (const auto& choice : field.choices) {
        if (choice == "NO" || choice == "no") return choice;
      }
    }
    if (value.kind != Kind::String) {
      wrong_value(entry, "is not one of the accepted values", accepted);
      return std::nullopt;
    }
    if (std::find(field.choices.begin(), field.choices.end(), value.text) != field.choices.end()) return value.text;
    if (std::find(field.unsupported.begin(), field.unsupported.end(), value.text) != field.unsupported.end()) {
      wrong_value(entry, "is a mode of accelerate that accel-launch does not run", accepted);
      return std::nullopt;
    }
    std::vector<std::string> all = field.choices;
    all.insert(all.end(), field.unsupported.begin(), field.unsupported.end());
    const auto hint = suggestion(value.text, all);
    wrong_value(entry, "is not a known value" + (hint ? " (did you mean '" + *hint + "'?)" : std::string()), accepted);
    return std::nullopt;
  }

  std::optional<std::string> read_ids(const Field& field, const Entry& entry) {
    const std::string accepted = std::string(field.allow_all ? "'all' or " : "") + "comma-separated indices such as '0,1,3'";
    const Node& value = entry.value;
    if (value.kind == Kind::String && field.allow_all && value.text == "all") return value.text;
    if (value.kind != Kind::String && value.kind != Kind::Integer) {
      wrong_value(entry, "is not a list of indices", accepted);
      return std::nullopt;
    }
    std::vector<std::string> ids;
    std::set<long long> seen;
    for (const auto& part : text::split(value.text, ',')) {
      const auto id = text::parse_integer(part);
      if (!id || *id < 0 || *id > 65535) {
        wrong_value(entry, "holds " + text::quote(text::trim(part)) + ", which is not an index", accepted);
        return std::nullopt;
      }
      if (!seen.insert(*id).second) {
        wrong_value(entry, "names index " + std::to_string(*id) + " twice", accepted);
        return std::nullopt;
      }
      ids.push_back(std::to_string(*id));
    }
    return text::join(ids, ",");
  }

  void migrate_legacy() {
    Config& config = result_.config;
    if (auto it = legacy_.find(kLegacyFp16); it != legacy_.end()) {
      const Entry& entry = it->second;
      if (entry.value.kind != Kind::Bool) {
        wrong_value(entry, "is not a boolean", "true or false (better: mixed_precision: fp16)");
      } else {
        const std::string meant = entry.value.text == "true" ? "fp16" : "no";
        if (config.mixed_precision && *config.mixed_precision != meant) {
          fail(entry.value.where, entry.key,
               "the legacy key says " + meant + " but mixed_precision says " + *config.mixed_precision + "; remove fp16");
        } else {
          config.mixed_precision = meant;
          result_.notes.push_back(origin_ + ": legacy key fp16: " + entry.value.text + " read as mixed_precision: " + meant +
                                  "; `accel-launch config update` rewrites the file");
        }
      }
    }
    if (auto it = legacy_.find(kLegacyDynamoBackend); it != legacy_.end()) {
      Node& section = config.ignored["dynamo_config"];
      if (section.kind != Kind::Map) {
        section = Node{};
        section.kind = Kind::Map;
      }
      section.entries.push_back(it->second);
      if (!is_switched_off(it->second.value) && std::find(ignored_in_use_.begin(), ignored_in_use_.end(), "dynamo_config") == ignored_in_use_.end()) {
        ignored_in_use_.push_back(kLegacyDynamoBackend);
      }
      result_.notes.push_back(origin_ + ": legacy key dynamo_backend belongs in dynamo_config; `accel-launch config update` rewrites the file");
    }
  }

  void check_together() {
    const Config& config = result_.config;
    if (config.machine_rank && *config.machine_rank >= config.num_machines.value_or(1)) {
      fail(where_["machine_rank"], "machine_rank",
           std::to_string(*config.machine_rank) + " must be below num_machines (" + std::to_string(config.num_machines.value_or(1)) +
               "); accepted: 0 to " + std::to_string(config.num_machines.value_or(1) - 1));
    }
    // accelerate's simple launcher starts one process for NO whatever num_processes says.
    if (config.distributed_type == std::string(to_string(DistributedType::kNo)) && config.num_processes.value_or(1) > 1) {
      const Position at = where_["num_processes"];
      result_.notes.push_back(origin_ + ":" + std::to_string(at.line) + ": num_processes " +
                              std::to_string(*config.num_processes) +
                              " ignored: distributed_type NO runs one process, as in accelerate (use MULTI_CPU or MULTI_GPU for more)");
      result_.config.num_processes = 1;
    }
    const int machines = config.num_machines.value_or(1);
    if (config.num_processes && (*config.num_processes % machines != 0 || *config.num_processes < machines)) {
      fail(where_["num_processes"], "num_processes",
           std::to_string(*config.num_processes) + " is the total over all " + std::to_string(machines) +
               " machines and must be a positive multiple of num_machines; accepted: " + std::to_string(machines) + ", " +
               std::to_string(2 * machines) + ", ...");
    }
    // c10d on one machine is what static is; etcd is another service accel-launch does not talk to.
    if (config.rdzv_backend && *config.rdzv_backend != "static" && *config.rdzv_backend != "c10d") {
      ignored_in_use_.push_back("rdzv_backend " + *config.rdzv_backend + " (accel-launch's rendezvous is static)");
    }
  }

  std::string origin_;
  LoadedConfig result_;
  std::vector<std::string> problems_;
  std::vector<std::string> ignored_in_use_;
  std::map<std::string, Position> where_;
  std::map<std::string, Entry> legacy_;
};

Node to_node(const Config& config, Keys keys) {
  std::map<std::string, Node> sorted;
  if (keys != Keys::Own) sorted.insert(config.ignored.begin(), config.ignored.end());
  for (const Field& field : fields()) {
    if ((keys == Keys::Own && !field.own) || (keys == Keys::Accelerate && field.own)) continue;
    std::visit(
        [&](auto member) {
          if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
            const auto& value = config.*member;
            if (!value) return;
            using T = std::decay_t<decltype(*value)>;
            if constexpr (std::is_same_v<T, bool>) sorted[field.key] = Node::scalar(Kind::Bool, *value ? "true" : "false");
            if constexpr (std::is_same_v<T, int>) sorted[field.key] = Node::scalar(Kind::Integer, std::to_string(*value));
            if constexpr (std::is_same_v<T, double>) sorted[field.key] = Node::scalar(Kind::Float, number_text(*value));
            if constexpr (std::is_same_v<T, std::string>) sorted[field.key] = Node::scalar(Kind::String, *value);
          }
        },
        field.member);
  }
  Node root;
  root.kind = Kind::Map;
  for (auto& [key, value] : sorted) root.entries.push_back({key, {}, std::move(value)});
  return root;
}

}  // namespace

Format format_for_path(const std::string& path) {
  const std::string suffix = path.size() >= 5 ? path.substr(path.size() - 5) : "";
  std::string lower;
  for (char c : suffix) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == ".json" ? Format::Json : Format::Yaml;
}

std::vector<std::string> known_keys() {
  std::vector<std::string> keys;
  for (const Field& field : fields()) keys.emplace_back(field.key);
  return keys;
}

std::string own_settings_path(const std::string& path) {
  const std::filesystem::path file(path);
  return (file.parent_path() / (file.stem().string() + ".accel-launch" + file.extension().string())).string();
}

LoadedConfig load_config(const std::string& path) {
  LoadedConfig loaded = parse_config(read_file(path), format_for_path(path), path);
  const std::string own_path = own_settings_path(path);
  if (::access(own_path.c_str(), F_OK) != 0) return loaded;
  const LoadedConfig own = parse_config(read_file(own_path), format_for_path(own_path), own_path);
  std::vector<std::string> misplaced;
  for (const auto& [key, node] : own.config.ignored) misplaced.push_back(key);
  for (const Field& field : fields()) {
    std::visit(
        [&](auto member) {
          if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
            if (!(own.config.*member)) return;
            if (!field.own) {
              misplaced.push_back(field.key);
            } else if (!(loaded.config.*member)) {
              loaded.config.*member = own.config.*member;
              loaded.origins[field.key] = own.origins.at(field.key);
            }
          }
        },
        field.member);
  }
  if (!misplaced.empty()) {
    throw UsageError(own_path + ": " + text::join(misplaced, ", ") + " belong in " + path +
                     "; this file holds accel-launch's own settings only: " + text::join(own_keys(), ", "));
  }
  loaded.notes.insert(loaded.notes.end(), own.notes.begin(), own.notes.end());
  return loaded;
}

LoadedConfig parse_config(const std::string& text, Format format, const std::string& origin) {
  std::vector<std::string> duplicates;
  const Node root = format == Format::Json ? formats::parse_json(text, origin, duplicates)
                                           : formats::parse_yaml(text, origin, duplicates);
  LoadedConfig loaded = Checker(origin).check(root);
  loaded.notes.insert(loaded.notes.begin(), duplicates.begin(), duplicates.end());
  return loaded;
}

std::vector<std::string> own_settings_in(const Config& config) {
  std::vector<std::string> keys;
  for (const Entry& entry : to_node(config, Keys::Own).entries) keys.push_back(entry.key);
  return keys;
}

std::vector<std::string> own_keys() {
  std::vector<std::string> keys;
  for (const Field& field : fields()) {
    if (field.own) keys.emplace_back(field.key);
  }
  return keys;
}

std::string to_text(const Config& config, Format format, Keys keys) {
  const Node root = to_node(config, keys);
  return format == Format::Json ? formats::emit_json(root) : formats::emit_yaml(root);
}

}  // namespace accel::config
