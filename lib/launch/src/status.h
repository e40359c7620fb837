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

}  // namespace accel::launch
