#pragma once
// The project's exception hierarchy. Every message is meant for a user: it names the
// flag, file, key, value or rank at fault and what would be accepted. The CLI prints
// what() as one line and exits with exit_code().
#include <stdexcept>
#include <string>

namespace accel {

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, int exit_code = kExitFailure);
  int exit_code() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

// Bad command-line input or a bad config file: nothing was started (exit code 2).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message, kExitUsage) {}
};

// A file could not be read or written; the message names the path and the OS reason.
class FileError : public Error {
 public:
  FileError(const std::string& path, const std::string& what_failed, int errno_value);
  FileError(const std::string& path, const std::string& problem);
};

// A file the user named as input (a config file) cannot be used: bad input, exit code 2.
class InputFileError : public UsageError {
 public:
  InputFileError(const std::string& path, const std::string& what_failed, int errno_value);
  InputFileError(const std::string& path, const std::string& problem);
};

// Another rank failed, vanished or never arrived: recoverable only by restarting the group.
class PeerError : public Error {
 public:
  explicit PeerError(const std::string& message) : Error(message) {}
};

}  // namespace accel
