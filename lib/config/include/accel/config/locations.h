#pragma once
// Where config files live, decided from the environment (a fake lookup in tests).
#include <optional>
#include <string>

#include "accel/core/env_contract.h"

namespace accel::config {

inline constexpr const char* kConfigFileVariable = "ACCEL_CONFIG_FILE";

enum class Source {
  CommandLine,  // --config_file
  Environment,  // $ACCEL_CONFIG_FILE
  OwnDefault,   // ${XDG_CONFIG_HOME:-~/.config}/accel-launch/default_config.yaml
  Accelerate,   // ${HF_HOME:-${XDG_CACHE_HOME:-~/.cache}/huggingface}/accelerate/default_config.yaml
};

struct Located {
  std::string path;
  Source source;
};

// "--config_file", "$ACCEL_CONFIG_FILE", "the default location", "accelerate's default location".
std::string describe(Source source);

// Empty when neither XDG_CONFIG_HOME nor HOME is set.
std::optional<std::string> own_default_path(const env::Lookup& lookup);
std::optional<std::string> accelerate_default_path(const env::Lookup& lookup);

// The file a launch reads: an explicitly named one (whether or not it exists: reading it then
// fails clearly), else the first default location that holds a file. Empty when none does.
std::optional<Located> find_config_file(const std::optional<std::string>& explicit_path, const env::Lookup& lookup);

// The file `config default`, `config` and `config update` write: --config_file, else
// $ACCEL_CONFIG_FILE, else the own default location. Throws accel::UsageError when no location
// can be named (no HOME).
Located writable_config_file(const std::optional<std::string>& explicit_path, const env::Lookup& lookup);

}  // namespace accel::config
