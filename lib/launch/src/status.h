#pragma once
// Wait statuses in words and as the launcher's exit code (private to lib/launch).
#include <string>

namespace accel::launch {

// "SIGKILL" for 9; "signal 77" when the number has no name.
std::string signal_name(int signal_number);

// "exited with status 3" or "killed by signal 9 (SIGKILL)" for a waitpid() status.
std::string describe_wait_status(int status);

// The status as a shell reports it: the exit status, or 128 + N for signal N.
int exit_code_of(int status);

// Why execve(executable) failed with `error`, in words, and the shell's exit code for it
// (127 when the file is missing, 126 when it cannot be run). A script whose #! interpreter is
// missing is named as such: execve reports ENOENT for it although the script exists.
struct StartFailure {
  std::string what;  // "could not be started: ..."
  int exit_code = 126;
};
StartFailure describe_start_error(const std::string& executable, int error);

}  // namespace accel::launch
