#pragma once
// The CLI's command groups: words -> a request or an options struct -> lib/.
#include <string>
#include <vector>

namespace accel::cli {

// `accel-launch [options] JOB [ARGS...]` (top_level) and its alias `accel-launch launch ...`
// (`args` without the word launch). Returns the exit code.
int run_launch(const std::string& program, const std::vector<std::string>& args, bool top_level);

// `config`, `config default`, `config update`, `env`, `test` (`args` from the command word on).
int run_config_command(const std::vector<std::string>& args);

// The commands' lines of the top-level --help.
std::string commands_help();

}  // namespace accel::cli
