// accel-launch: thin entry point. Every failure becomes one line on stderr and an exit code:
// 2 for bad input of any kind (CLI11's parse errors included), the job's own code otherwise.
#include <CLI/CLI.hpp>
#include <iostream>

#include "accel/core/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"accel-launch: launch and supervise distributed LibTorch jobs"};
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
