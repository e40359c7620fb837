#include "accel/core/error.h"

#include <cstring>

namespace accel {

Error::Error(const std::string& message, int exit_code)
    : std::runtime_error(message), exit_code_(exit_code) {}

namespace {
std::string describe(const std::string& path, const std::string& what_failed, int errno_value) {
  return path + ": " + what_failed + ": " + std::strerror(errno_value);
}
}  // namespace

FileError::FileError(const std::string& path, const std::string& what_failed, int errno_value)
    : Error(describe(path, what_failed, errno_value)) {}

FileError::FileError(const std::string& path, const std::string& problem) : Error(path + ": " + problem) {}

InputFileError::InputFileError(const std::string& path, const std::string& what_failed, int errno_value)
    : UsageError(describe(path, what_failed, errno_value)) {}

InputFileError::InputFileError(const std::string& path, const std::string& problem) : UsageError(path + ": " + problem) {}

}  // namespace accel
