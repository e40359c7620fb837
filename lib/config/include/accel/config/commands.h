#pragma once
// The work of `accel-launch config [default|update]`, `env` and `test`. The CLI (apps/) binds
// words to these options structs and calls run_*; nothing here parses a command line. Each run_* returns
// the process exit code and throws accel::Error (or a subclass) on bad input.
#include <optional>
#include <ostream>
#include <string>

#include "accel/config/config.h"
#include "accel/core/env_contract.h"
#include "accel/core/hardware.h"

namespace accel::config {

// `config default`: a config for this machine, written without asking.
struct DefaultOptions {
  std::optional<std::string> config_file;  // default: $ACCEL_CONFIG_FILE, else the default location
  std::string mixed_precision = "no";
  bool force = false;  // replace an existing file (keeping a backup)
};
// Several GPUs: MULTI_GPU, one process per GPU. One GPU: one process on it. No GPU: one CPU
// process (torch's intra-op threads already use every core; more processes would each hold a
// copy of the model).
Config default_config(const hardware::Machine& machine, const std::string& mixed_precision);
int run_default(const DefaultOptions& options, std::ostream& out);

// `config update`: rewrites the file in effect with current keys (legacy ones migrated).
struct UpdateOptions {
  std::optional<std::string> config_file;
};
int run_update(const UpdateOptions& options, std::ostream& out);

// `config`: the questionnaire, on a terminal only.
struct QuestionnaireOptions {
  std::optional<std::string> config_file;
};
int run_questionnaire(const QuestionnaireOptions& options);

// `env`: a block to paste into a bug report.
struct EnvOptions {
  std::optional<std::string> config_file;
  std::string version;  // accel-launch's
  std::string root = "";  // prefix of the paths searched for installed libraries; tests fake a tree
};
// The report, from what is passed in (tests call this with a fake machine and environment).
std::string env_report(const EnvOptions& options, const hardware::Machine& machine, const env::Lookup& lookup);
int run_env(const EnvOptions& options, std::ostream& out);

// `test`: launches the built-in job across the configured processes.
struct TestOptions {
  std::optional<std::string> config_file;
  std::string job;  // empty: accel-test-job beside the running executable
};
int run_test(const TestOptions& options, std::ostream& out);

}  // namespace accel::config
