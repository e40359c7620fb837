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

namespace accel::config {

enum class Format { Yaml, Json };

// ".json" (any case) -> Json; anything else -> Yaml, as accelerate decides.
Format format_for_path(const std::string& path);

struct Config {
  // accelerate's keys.
  std::optional<std::string> compute_environment;  // LOCAL_MACHINE
  std::optional<std::string> distributed_type;     // NO | MULTI_CPU | MULTI_GPU
  std::optional<std::string> mixed_precision;      // no | fp16 | bf16
  std::optional<bool> use_cpu;
  std::optional<bool> debug;
  std::optional<int> num_processes;  // per machine
  std::optional<int> num_machines;
  std::optional<int> machine_rank;
  std::optional<std::string> gpu_ids;  // "all" or "0,1,3"
  std::optional<std::string> main_process_ip;
  std::optional<int> main_process_port;  // 0: a free port
  std::optional<std::string> rdzv_backend;
  std::optional<bool> same_network;
  std::optional<std::string> main_training_function;
  std::optional<bool> enable_cpu_affinity;
  std::optional<bool> downcast_bf16;

  // accel-launch's own keys (written to the own-settings file, see Keys).
  std::optional<int> num_cpu_threads_per_process;
  std::optional<std::string> log_dir;
  std::optional<bool> tee;
  std::optional<int> max_restarts;
  std::optional<double> grace_period;  // seconds between SIGTERM and SIGKILL
  std::optional<std::string> role;
  std::optional<std::string> local_ranks_filter;  // "0,2"

  // Settings for features accel-launch does not run (deepspeed_config, fsdp_config, tpu_*, ...),
  // kept as written so that rewriting a file loses nothing.
  std::map<std::string, Node> ignored;

  bool operator==(const Config& other) const;
  bool operator!=(const Config& other) const { return !(*this == other); }
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
