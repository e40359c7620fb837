#pragma once
// The CLI's command groups; each registers its options and a callback that calls into lib/.
namespace CLI {
class App;
}

namespace accel::cli {

// `accel-launch [options] JOB [ARGS...]` and its alias `accel-launch launch ...`.
void add_launch_commands(CLI::App& app);

// `config`, `config default`, `config update`, `env`, `test`.
void add_config_commands(CLI::App& app);

}  // namespace accel::cli
