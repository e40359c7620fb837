#pragma once
// Environments for code that reads variables through env::Lookup, so tests never call setenv.
#include <map>
#include <optional>
#include <string>

#include "accel/core/env_contract.h"

namespace accel::test {

// Exactly `values`: every other variable is unset.
inline env::Lookup fake_env(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    const auto found = values.find(name);
    if (found == values.end()) return std::nullopt;
    return found->second;
  };
}

// The process environment with `overrides` on top; an override without a value unsets the variable.
inline env::Lookup process_environment_with(std::map<std::string, std::optional<std::string>> overrides) {
  return [overrides](const std::string& name) -> std::optional<std::string> {
    const auto found = overrides.find(name);
    return found != overrides.end() ? found->second : env::process_environment()(name);
  };
}

}  // namespace accel::test
