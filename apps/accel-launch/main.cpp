// accel-launch: thin entry point. Every failure becomes one line on stderr and an exit code:
// 2 for bad input of any kind (CLI11's parse errors included), the job's own code otherwise.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "accel/core/error.h"
#include "commands.h"

namespace {

// CLI11 cannot show JOB (prefix mode hands it over unparsed), so the launch commands' usage
// line is written here.
class UsageWithJob : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override {
    if (!app->get_prefix_command()) return CLI::Formatter::make_usage(app, name);
    std::string usage = "Usage: " + name + " [OPTIONS] JOB [JOB ARGS...]\n";
    if (!app->get_parent()) usage += "   or: " + name + " COMMAND [OPTIONS] ...\n";
    return usage;
  }
};

// A closed standard descriptor (`2>&-`) would be taken by the next file the launcher opens,
// so its messages would land in a worker's pipe or a log file: each gets /dev/null instead.
void open_missing_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1) ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
  }
}

}  // namespace

int main(int argc, char** argv) {
  open_missing_standard_descriptors();
  // A console that went away (a closed pipe) must not kill the launcher before it has stopped
  // its workers; the workers get SIGPIPE's default back.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"accel-launch: launch and supervise distributed LibTorch jobs"};
  app.formatter(std::make_shared<UsageWithJob>());
  app.set_version_flag("--version", std::string("accel-launch ") + ACCEL_VERSION);
  // The config commands first: the launch commands put the top level in prefix mode, which
  // CLI11 copies into subcommands created afterwards.
  accel::cli::add_config_commands(app);
  accel::cli::add_launch_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help, version and CLI::RuntimeError(code) (a command's exit code) pass through unchanged.
    const std::string name = e.get_name();
    if (name == "RuntimeError" || name == "CallForHelp" || name == "CallForAllHelp" || name == "CallForVersion" ||
        e.get_exit_code() == 0) {
      return app.exit(e);
    }
    std::cerr << "accel-launch: error: " << e.what() << "\n";
    return accel::kExitUsage;
  } catch (const accel::Error& e) {
    std::cerr << "accel-launch: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "accel-launch: error: " << e.what() << "\n";
    return accel::kExitFailure;
  }
  return 0;
}
