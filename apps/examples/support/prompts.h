#pragma once
// The examples' prompts file: one prompt per line, read as the main job reads it (lib/batch).
#include <string>
#include <variant>
#include <vector>

#include "accel/batch/request.h"
#include "accel/core/error.h"

namespace accel::examples {

// The prompts of `path`, one per line; blank and whitespace-only lines are skipped. Throws
// accel::InputFileError naming the file, and the line when one cannot be a prompt (invalid UTF-8).
inline std::vector<std::string> read_prompts(const std::string& path) {
  std::vector<std::string> prompts;
  for (const auto& entry : batch::read_prompts_file(path).entries) {
    if (const auto* refused = std::get_if<batch::Refusal>(&entry)) throw InputFileError(path, refused->message);
    prompts.push_back(std::get<batch::Request>(entry).prompt);
  }
  return prompts;
}

}  // namespace accel::examples
