// `config`, `config default`, `config update`, `env`, `test`: words -> options structs ->
// accel::config::run_*. The work lives in lib/config.
#include <algorithm>
#include <iostream>
#include <map>

#include "accel/config/commands.h"
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/launch/options.h"
#include "commands.h"

namespace accel::cli {
namespace {

struct Flag {
  const char* name;        // "--config_file"; "--config-file" is accepted too
  const char* value_name;  // nullptr: a switch
  const char* help;
};

const char* const kWriteTarget = "File to write (default: $ACCEL_CONFIG_FILE, else ~/.config/accel-launch/default_config.yaml)";
const char* const kReadTarget = "Config file (default: the one a launch would read)";

// Flags given, by name: the value, or "" for a switch.
using Given = std::map<std::string, std::string>;

struct Command {
  const char* words;  // "config default"
  const char* summary;
  std::vector<Flag> flags;
  int (*run)(const Given& given);
};

std::optional<std::string> text_of(const Given& given, const std::string& name) {
  const auto it = given.find(name);
  return it == given.end() ? std::nullopt : std::optional<std::string>(it->second);
}

int run_questionnaire(const Given& given) { return config::run_questionnaire({text_of(given, "--config_file")}); }

int run_default(const Given& given) {
  config::DefaultOptions options;
  options.config_file = text_of(given, "--config_file");
  options.mixed_precision = text_of(given, "--mixed_precision").value_or(options.mixed_precision);
  options.force = given.count("--force") > 0;
  return config::run_default(options, std::cout);
}

int run_update(const Given& given) { return config::run_update({text_of(given, "--config_file")}, std::cout); }

int run_env(const Given& given) {
  return config::run_env({.config_file = text_of(given, "--config_file"), .version = ACCEL_VERSION}, std::cout);
}

int run_test(const Given& given) { return config::run_test({.config_file = text_of(given, "--config_file")}, std::cout); }

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"config", "Answer a few questions to write a config file (on a terminal)", {{"--config_file", "FILE", kWriteTarget}},
       run_questionnaire},
      {"config default", "Write a config for this machine without asking (never replaces a file without --force)",
       {{"--config_file", "FILE", kWriteTarget},
        {"--mixed_precision", "MODE", "no | fp16 | bf16 (default no)"},
        {"--force", nullptr, "Replace an existing file; its old contents are kept as FILE.bak"}},
       run_default},
      {"config update", "Rewrite a config file with current keys (legacy keys migrated, backup kept)",
       {{"--config_file", "FILE", kReadTarget}}, run_update},
      {"env", "Print versions, hardware and the config in effect, for bug reports", {{"--config_file", "FILE", kReadTarget}},
       run_env},
      {"test", "Launch the built-in test job across the configured processes", {{"--config_file", "FILE", kReadTarget}},
       run_test},
  };
  return table;
}

std::string help(const Command& command) {
  std::string text = std::string("Usage: accel-launch ") + command.words + " [OPTIONS]\n\n" + command.summary + "\n\nOptions:\n";
  text += launch::help_line("-h, --help", "Print this help and exit");
  for (const Flag& flag : command.flags) {
    text += launch::help_line(std::string(flag.name) + (flag.value_name ? std::string(" ") + flag.value_name : ""), flag.help);
  }
  if (std::string(command.words) == "config") text += "\nCommands:\n  default, update (accel-launch config COMMAND --help)\n";
  return text;
}

// An unknown flag: a near spelling of this command's flags, or, for a launch option, where it belongs.
[[noreturn]] void unknown_flag(const Command& command, const std::string& typed) {
  std::vector<std::string> known;
  for (const Flag& flag : command.flags) known.emplace_back(flag.name);
  const std::string name = "`accel-launch " + std::string(command.words) + "`";
  const std::string flag = typed.substr(0, typed.find('='));
  if (const launch::LaunchOption* option = launch::find_launch_option_by_flag(flag)) {
    const std::string where = option->key ? "set " + std::string(option->key) + " in the config file (accel-launch config), or " : "";
    throw UsageError(flag + " is a launch option; " + name + " takes " + text::join(known, ", ") + " only: " + where +
                     "launch a job with `accel-launch " + flag + " ... JOB`");
  }
  throw UsageError(launch::unknown_flag_message(flag, known, "accel-launch " + std::string(command.words) + " --help") +
                   " (" + name + " takes " + text::join(known, ", ") + ")");
}

const Command& find_command(const std::string& words) {
  for (const Command& command : commands()) {
    if (words == command.words) return command;
  }
  throw Error("no command " + words);
}

}  // namespace

std::string commands_help() {
  std::string text = launch::help_line("launch", "Launch JOB on several processes (same as without 'launch')");
  for (const Command& command : commands()) text += launch::help_line(command.words, command.summary);
  return text;
}

int run_config_command(const std::vector<std::string>& args) {
  std::string words = args.front();
  std::size_t next = 1;
  if (words == "config" && next < args.size() && args[next][0] != '-') {
    const std::string sub = args[next];
    if (sub != "default" && sub != "update") {
      const auto close = text::closest_match(sub, {"default", "update"});
      throw UsageError("unknown command 'config " + sub + "'" + (close ? "; did you mean 'config " + *close + "'?" : "") +
                       " (accel-launch config takes default or update, or no command to answer questions)");
    }
    words += " " + sub;
    ++next;
  }
  const Command& command = find_command(words);
  Given given;
  for (; next < args.size(); ++next) {
    const std::string& word = args[next];
    if (word == "-h" || word == "--help") {
      std::cout << help(command);
      return 0;
    }
    if (word.rfind("-", 0) != 0) {
      throw UsageError("`accel-launch " + words + "` takes no argument '" + word + "'; see accel-launch " + words + " --help");
    }
    std::string name = word.substr(0, word.find('='));
    for (std::size_t i = 2; i < name.size(); ++i) name[i] = name[i] == '-' ? '_' : name[i];
    const auto flag = std::find_if(command.flags.begin(), command.flags.end(), [&](const Flag& f) { return name == f.name; });
    if (flag == command.flags.end()) unknown_flag(command, word);
    if (!flag->value_name) {
      if (word.find('=') != std::string::npos) throw UsageError(name + " takes no value; pass " + name + " alone");
      given[name] = "";
    } else if (word.find('=') != std::string::npos) {
      given[name] = word.substr(word.find('=') + 1);
    } else if (next + 1 < args.size()) {
      given[name] = args[++next];
    } else {
      throw UsageError(name + " needs a value: " + flag->value_name);
    }
  }
  return command.run(given);
}

}  // namespace accel::cli
