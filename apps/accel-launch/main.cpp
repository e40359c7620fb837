// accel-launch: thin entry point. Every failure becomes one line on stderr and an exit code:
// 2 for bad input of any kind, the job's own code otherwise.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <iostream>

#include "accel/core/error.h"
#include "accel/launch/options.h"
#include "commands.h"

namespace {

// A closed standard descriptor (`2>&-`) would be taken by the next file the launcher opens,
// so its messages would land in a worker's pipe or a log file: each gets /dev/null instead.
void open_missing_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1) ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
  }
}

int dispatch(const std::string& program, const std::vector<std::string>& args) {
  if (!args.empty() && args.front() == "--version") {
    std::cout << "accel-launch " << ACCEL_VERSION << "\n";
    return 0;
  }
  const auto& commands = accel::launch::command_words();
  if (!args.empty() && args.front() != "launch" && std::find(commands.begin(), commands.end(), args.front()) != commands.end()) {
    return accel::cli::run_config_command(args);
  }
  const bool subcommand = !args.empty() && args.front() == "launch";
  const std::vector<std::string> rest(args.begin() + (subcommand ? 1 : 0), args.end());
  return accel::cli::run_launch(subcommand ? program + " launch" : program, rest, !subcommand);
}

}  // namespace

int main(int argc, char** argv) {
  open_missing_standard_descriptors();
  // A console that went away (a closed pipe) must not kill the launcher before it has stopped
  // its workers; the workers get SIGPIPE's default back.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return dispatch(argc > 0 ? argv[0] : "accel-launch", std::vector<std::string>(argv + std::min(argc, 1), argv + argc));
  } catch (const accel::Error& e) {
    std::cerr << "accel-launch: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "accel-launch: error: " << e.what() << "\n";
    return accel::kExitFailure;
  }
}
