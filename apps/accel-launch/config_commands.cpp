// `config`, `config default`, `config update`, `env`, `test`: flags -> options structs ->
// accel::config::run_*. The work lives in lib/config.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "accel/config/commands.h"
#include "commands.h"

namespace accel::cli {
namespace {

// A command's non-zero exit code leaves through main's CLI11 handler unchanged.
void exit_with(int code) {
  if (code != 0) throw CLI::RuntimeError(code);
}

void add_config_file(CLI::App& command, std::optional<std::string>& target, const std::string& help) {
  command.add_option_function<std::string>(
      "--config_file,--config-file", [&target](const std::string& value) { target = value; }, help);
}

const char* const kWriteTarget = "File to write (default: $ACCEL_CONFIG_FILE, else ~/.config/accel-launch/default_config.yaml)";
const char* const kReadTarget = "Config file (default: the one a launch would read)";

void setup_default(CLI::App& parent) {
  auto options = std::make_shared<config::DefaultOptions>();
  CLI::App* command = parent.add_subcommand("default", "Write a config for this machine without asking (never replaces a file without --force)");
  add_config_file(*command, options->config_file, kWriteTarget);
  command->add_option("--mixed_precision,--mixed-precision", options->mixed_precision, "no | fp16 | bf16")
      ->capture_default_str();
  command->add_flag("--force", options->force, "Replace an existing file; its old contents are kept as FILE.bak");
  command->callback([options] { exit_with(config::run_default(*options, std::cout)); });
}

void setup_update(CLI::App& parent) {
  auto options = std::make_shared<config::UpdateOptions>();
  CLI::App* command = parent.add_subcommand("update", "Rewrite a config file with current keys (legacy keys migrated, backup kept)");
  add_config_file(*command, options->config_file, kReadTarget);
  command->callback([options] { exit_with(config::run_update(*options, std::cout)); });
}

void setup_questionnaire(CLI::App& app) {
  auto options = std::make_shared<config::QuestionnaireOptions>();
  CLI::App* command = app.add_subcommand("config", "Answer a few questions to write a config file (on a terminal)");
  add_config_file(*command, options->config_file, kWriteTarget);
  setup_default(*command);
  setup_update(*command);
  command->callback([command, options] {
    if (command->get_subcommands().empty()) exit_with(config::run_questionnaire(*options));
  });
}

void setup_env(CLI::App& app) {
  auto options = std::make_shared<config::EnvOptions>();
  options->version = ACCEL_VERSION;
  CLI::App* command = app.add_subcommand("env", "Print versions, hardware and the config in effect, for bug reports");
  add_config_file(*command, options->config_file, kReadTarget);
  command->add_option_function<std::string>(
      "--python", [options](const std::string& value) { options->python = value; },
      "Python to report (default: the one a launch would use: $ACCEL_PYTHON, else python3 on PATH)");
  command->callback([options] { exit_with(config::run_env(*options, std::cout)); });
}

void setup_test(CLI::App& app) {
  auto options = std::make_shared<config::TestOptions>();
  CLI::App* command = app.add_subcommand("test", "Launch the built-in test job across the configured processes");
  add_config_file(*command, options->config_file, kReadTarget);
  command->callback([options] { exit_with(config::run_test(*options, std::cout)); });
}

}  // namespace

void add_config_commands(CLI::App& app) {
  setup_questionnaire(app);
  setup_env(app);
  setup_test(app);
}

}  // namespace accel::cli
