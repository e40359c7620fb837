#include "accel/core/error.h"

#include <cstring>

namespace accel {

Error::Error(const std::string& message, int exit_code)
    : std::runtime_error(message), exit_code_(exit_code) {}

FileError::FileError(const std::string& path, const std::string& what_failed, int errno_value)
    : Error(path + ": " + what_failed + ": " + std::strerror(errno_value)) {}

FileError::FileError(const std::string& path, const std::string& problem)
    : Error(path + ": " + problem) {}

}  // namespace accel
