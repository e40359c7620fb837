#pragma once
// The examples' prompts file: one prompt per line.
#include <cerrno>
#include <fstream>
#include <string>
#include <vector>

#include "accel/core/error.h"

namespace accel::examples {

// The non-empty lines of `path` (a trailing CR dropped). Throws accel::FileError naming the file
// when it cannot be opened or holds no prompt.
inline std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw FileError(path, "cannot open the prompts file", errno);
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) prompts.push_back(line);
  }
  if (prompts.empty()) throw FileError(path, "has no prompts; expected one prompt per line");
  return prompts;
}

}  // namespace accel::examples
