#include "status.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace accel::launch {

std::string signal_name(int signal_number) {
  const char* abbreviation = ::sigabbrev_np(signal_number);
  return abbreviation ? std::string("SIG") + abbreviation : "signal " + std::to_string(signal_number);
}

std::string describe_wait_status(int status) {
  if (WIFSIGNALED(status)) {
    const int number = WTERMSIG(status);
    return "killed by signal " + std::to_string(number) + " (" + signal_name(number) + ")";
  }
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

int exit_code_of(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

StartFailure describe_start_error(const std::string& executable, int error) {
  struct stat info {};
  if (error == ENOENT && ::stat(executable.c_str(), &info) == 0) {
    std::ifstream script(executable);
    std::string first_line;
    std::getline(script, first_line);
    if (first_line.rfind("#!", 0) == 0) {
      const auto begin = first_line.find_first_not_of(" \t", 2);
      const auto end = first_line.find_first_of(" \t\r", begin);
      const std::string interpreter =
          begin == std::string::npos ? std::string() : first_line.substr(begin, end == std::string::npos ? end : end - begin);
      return {"could not be started: its interpreter '" + interpreter + "' (named on the #! line of " + executable +
                  ") does not exist",
              126};
    }
  }
  return {std::string("could not be started: ") + std::strerror(error), error == ENOENT ? 127 : 126};
}

}  // namespace accel::launch
