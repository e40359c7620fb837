#pragma once
// Every launch option, said once. A row names the option (accelerate's config key or ours), its
// command-line spellings (torchrun's included), the type and range of its value, whose file may
// hold it (accelerate's config or accel-launch's own-settings file), its help text and group, and
// where its value goes in the LaunchRequest. The command line (parse_launch_arguments), --help,
// the config schema and fill_request (lib/config) are loops over this table, and a test checks
// docs/config.md's table of keys against it. Adding an option is one row plus its consumer.
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "accel/launch/request.h"

namespace accel::launch {

// The type of a value in a config file; on the command line a Switch takes no value unless the
// row names one (--tee 0-3), and every value is text checked by its row.
enum class ValueType { Switch, Integer, Seconds, Text, Choice, Ids };

// Who defines the option: accelerate (its config files may hold the key), accel-launch (our
// own-settings file beside accelerate's may hold it), or torchrun (a command-line spelling only).
enum class Owner { Accelerate, Ours, Torchrun };

// --help's sections, in this order; PassedToJob is folded into one paragraph.
enum class Group { Processes, Devices, Supervision, Job, Torchrun, Compatibility, Refused, PassedToJob };

using SettingMember = std::variant<std::monostate, std::optional<bool> LaunchSettings::*, std::optional<int> LaunchSettings::*,
                                   std::optional<double> LaunchSettings::*, std::optional<std::string> LaunchSettings::*>;

struct LaunchOption;
// A row's own effect on the request, for an option that is more than a stored value. `flag` is
// the long spelling the user typed (underscores), for messages; `value` is empty for a switch.
using ApplyOption = void (*)(const LaunchOption& option, const std::string& flag, const std::string& value,
                             LaunchRequest& request);

struct LaunchOption {
  const char* key;         // the config key, which is also the member's name; nullptr: command line only
  const char* flags;       // "--num_processes", "-t,--tee": each --a_b is also accepted as --a-b
  ValueType type;
  Owner owner;
  Group group;
  const char* value_name;  // "N", "FILE"; nullptr: a switch, which takes no value
  const char* help;        // Group::Refused: the reason; Group::PassedToJob: accelerate's argument group
  SettingMember member;    // where a keyed row's value goes (command line and file alike)
  ApplyOption apply;       // nullptr: parse by type into `member`
  double min = 0, max = 0; // Integer and Seconds in a file
  std::vector<std::string> (*choices)() = nullptr;  // Choice
  bool allow_all = false;  // Ids: "all" is accepted too

  std::string primary_flag() const;  // "--tee"
  bool takes_value() const { return value_name != nullptr; }
};

const std::vector<LaunchOption>& launch_options();

// The row spelled `flag` ("--num-processes" and "--num_processes" alike), or nullptr.
const LaunchOption* find_launch_option_by_flag(const std::string& flag);

// The words that name a command rather than a JOB: launch, config, env, test.
const std::vector<std::string>& command_words();

// What the command line asked for: the request (job included), or --help.
struct LaunchArguments {
  LaunchRequest request;
  bool help = false;
};

// Parses `accel-launch [options] JOB [JOB ARGS...]` (args without the program name and without a
// leading "launch"): options up to the first word that is not one, then the job's words
// unchanged ("--" ends the options too). `top_level`: a command word after options is refused
// (the options would belong to no command). Throws accel::UsageError naming the flag and what it
// accepts, with "did you mean" for an unknown flag.
LaunchArguments parse_launch_arguments(const std::vector<std::string>& args, bool top_level);

// --help: the usage lines, `commands` (help_line()s; empty for `accel-launch launch --help`), the
// options by group with accelerate's settings for the job folded into one section that points to
// docs/config.md.
std::string launch_help(const std::string& program, const std::string& commands);

// One line of help: `names` (flags and value, or a command) in a column, then `help`.
std::string help_line(const std::string& names, const std::string& help);

// "unknown flag --x" with the nearest known spelling among `known` (a prefix of one, or a typo),
// else "see `help_command`".
std::string unknown_flag_message(const std::string& flag, const std::vector<std::string>& known,
                                 const std::string& help_command);

}  // namespace accel::launch
