// Placeholder: the launcher issue replaces this with the launch command.
#include <CLI/CLI.hpp>

#include "commands.h"

namespace accel::cli {
void add_launch_commands(CLI::App&) {}
}  // namespace accel::cli
