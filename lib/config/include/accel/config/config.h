#pragma once
// One config file's settings. The keys are accelerate's (files written by any version of
// `accelerate config` load unchanged) plus accel-launch's own for what accelerate lacks.
// Every field is optional: a key absent from the file stays empty, so the launcher can tell
// "the file said so" from "guessed".
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "accel/config/document.h"
#include "accel/launch/request.h"

namespace accel::config {

enum class Format { Yaml, Json };

// ".json" (any case) -> Json; anything else -> Yaml, as accelerate decides.
Format format_for_path(const std::string& path);

// The settings a launch also takes from the command line are the LaunchSettings members, one per
// keyed row of the option table (accel/launch/options.h); the rest is the file's own.
struct Config : launch::LaunchSettings {
  std::optional<std::string> compute_environment;  // LOCAL_MACHINE
  std::optional<std::string> distributed_type;     // NO | MULTI_CPU | MULTI_GPU | ...

  // Settings for features accel-launch does not run (deepspeed_config, fsdp_config, tpu_*, ...),
  // kept as written so that rewriting a file loses nothing.
  std::map<std::string, Node> ignored;

  bool operator==(const Config& other) const = default;
};

struct LoadedConfig {
  Config config;
  // Where each key's value was read, "my.yaml:7: num_processes", for messages that name it.
  std::map<std::string, std::string> origins;
  // One line each, already prefixed with the file name: ignored settings, legacy keys read.
  std::vector<std::string> notes;
};

// Checks every key and value. Throws accel::UsageError listing every problem, one per line,
// each as "origin:line:column: key: what is wrong; accepted: ...".
LoadedConfig parse_config(const std::string& text, Format format, const std::string& origin);

// Reads and checks `path` (format by extension), and its own-settings file when one exists
// (which may hold accel-launch's own keys only; they fill what `path` leaves unset). Throws
// accel::FileError when the file is missing, a directory or unreadable, accel::UsageError when
// it is empty or its contents are bad.
LoadedConfig load_config(const std::string& path);

// Which keys a text holds. accelerate refuses keys it does not know, so the files accel-launch
// writes hold accelerate's keys only, and accel-launch's own settings (num_cpu_threads_per_process,
// log_dir, tee, max_restarts, grace_period, role, local_ranks_filter) go to a file of their own
// beside it (own_settings_path), which accelerate never opens.
enum class Keys { All, Accelerate, Own };

// The file's text: keys sorted, absent values left out, as accelerate writes them.
std::string to_text(const Config& config, Format format, Keys keys = Keys::All);
std::vector<std::string> own_keys();                               // every one
std::vector<std::string> own_settings_in(const Config& config);  // those `config` sets

// "dir/name.yaml" -> "dir/name.accel-launch.yaml" (".json" likewise): where accel-launch keeps its
// own settings for the config file at `path`.
std::string own_settings_path(const std::string& path);

// The names of every key a file may hold, for documentation and "did you mean" hints.
std::vector<std::string> known_keys();

}  // namespace accel::config
