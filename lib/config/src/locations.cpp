#include "accel/config/locations.h"

#include <sys/stat.h>

#include "accel/core/error.h"

namespace accel::config {
namespace {

std::optional<std::string> non_empty(const env::Lookup& lookup, const char* name) {
  auto value = lookup(name);
  if (value && value->empty()) return std::nullopt;
  return value;
}

bool is_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && !S_ISDIR(info.st_mode);
}

}  // namespace

std::string describe(Source source) {
  switch (source) {
    case Source::CommandLine: return "--config_file";
    case Source::Environment: return std::string("$") + kConfigFileVariable;
    case Source::OwnDefault: return "the default location";
    case Source::Accelerate: return "accelerate's default location";
  }
  return "";
}

std::optional<std::string> own_default_path(const env::Lookup& lookup) {
  if (auto base = non_empty(lookup, "XDG_CONFIG_HOME")) return *base + "/accel-launch/default_config.yaml";
  if (auto home = non_empty(lookup, "HOME")) return *home + "/.config/accel-launch/default_config.yaml";
  return std::nullopt;
}

std::optional<std::string> accelerate_default_path(const env::Lookup& lookup) {
  std::optional<std::string> hf_home = non_empty(lookup, "HF_HOME");
  if (!hf_home) {
    if (auto cache = non_empty(lookup, "XDG_CACHE_HOME")) {
      hf_home = *cache + "/huggingface";
    } else if (auto home = non_empty(lookup, "HOME")) {
      hf_home = *home + "/.cache/huggingface";
    }
  }
  if (!hf_home) return std::nullopt;
  return *hf_home + "/accelerate/default_config.yaml";
}

std::optional<Located> find_config_file(const std::optional<std::string>& explicit_path, const env::Lookup& lookup) {
  if (explicit_path) return Located{*explicit_path, Source::CommandLine};
  if (auto named = non_empty(lookup, kConfigFileVariable)) return Located{*named, Source::Environment};
  if (auto own = own_default_path(lookup); own && is_file(*own)) return Located{*own, Source::OwnDefault};
  if (auto theirs = accelerate_default_path(lookup); theirs && is_file(*theirs)) return Located{*theirs, Source::Accelerate};
  return std::nullopt;
}

Located writable_config_file(const std::optional<std::string>& explicit_path, const env::Lookup& lookup) {
  if (explicit_path) return Located{*explicit_path, Source::CommandLine};
  if (auto named = non_empty(lookup, kConfigFileVariable)) return Located{*named, Source::Environment};
  if (auto own = own_default_path(lookup)) return Located{*own, Source::OwnDefault};
  throw UsageError("cannot tell where to write the config file: neither HOME nor XDG_CONFIG_HOME is set; pass --config_file");
}

}  // namespace accel::config
