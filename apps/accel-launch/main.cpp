// accel-launch: thin entry point. Every failure becomes one line on stderr and an exit code.
#include <CLI/CLI.hpp>
#include <iostream>

#include "accel/core/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"accel-launch: launch and supervise distributed LibTorch jobs"};
  app.set_version_flag("--version", std::string("accel-launch ") + ACCEL_VERSION);
  accel::cli::add_launch_commands(app);
  accel::cli::add_config_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const accel::Error& e) {
    std::cerr << "accel-launch: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "accel-launch: error: " << e.what() << "\n";
    return accel::kExitFailure;
  }
  return 0;
}
