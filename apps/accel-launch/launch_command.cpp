// `accel-launch [options] JOB [JOB ARGS...]` and `accel-launch launch ...`: words -> LaunchRequest
// through the option table (accel/launch/options.h), then launch::launch_with_config().
#include <iostream>

#include "accel/config/apply.h"
#include "accel/launch/options.h"
#include "accel/launch/supervisor.h"
#include "commands.h"

namespace accel::cli {

int run_launch(const std::string& program, const std::vector<std::string>& args, bool top_level) {
  const launch::LaunchArguments parsed = launch::parse_launch_arguments(args, top_level);
  if (parsed.help) {
    std::cout << launch::launch_help(program, top_level ? commands_help() : "");
    return 0;
  }
  return launch::launch_with_config(parsed.request, config::kApplyConfigFile, std::cout, std::cerr).exit_code;
}

}  // namespace accel::cli
