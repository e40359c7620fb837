// Every file accel-launch writes must load in accelerate unchanged. accelerate's loader
// (commands/config/config_args.py) refuses a file whose top-level keys are not fields of its
// ClusterConfig, and one without distributed_type; the mirror below repeats that check without
// accel-launch's own parser.
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <sstream>

#include "accel/config/commands.h"
#include "accel/config/config.h"
#include "accel/config/questionnaire.h"
#include "accel/core/text.h"
#include "support.h"

using accel::config::Config;
using accel::config::Format;
using accel::config::Keys;
using accel::test::machine_with_gpus;
using accel::test::TempDir;
using accel::test::slurp;

namespace {

// accelerate's ClusterConfig fields (BaseConfig's included), and the legacy keys its
// process_config migrates before checking.
const std::set<std::string> kAccelerateFields = {
    "compute_environment", "distributed_type", "mixed_precision", "use_cpu", "debug", "num_processes",
    "machine_rank", "num_machines", "gpu_ids", "main_process_ip", "main_process_port", "rdzv_backend",
    "same_network", "main_training_function", "enable_cpu_affinity", "fp8_config", "deepspeed_config",
    "fsdp_config", "parallelism_config", "megatron_lm_config", "mpirun_config", "downcast_bf16", "tpu_name",
    "tpu_zone", "tpu_use_cluster", "tpu_use_sudo", "command_file", "commands", "tpu_vm", "tpu_env",
    "dynamo_config", "fp16", "dynamo_backend"};

// Top-level keys of the block YAML and 2-space JSON accel-launch writes.
std::vector<std::string> top_level_keys(const std::string& text, Format format) {
  std::vector<std::string> keys;
  for (const auto& line : accel::text::split(text, '\n')) {
    std::string key;
    if (format == Format::Json) {
      if (line.rfind("  \"", 0) != 0) continue;
      key = line.substr(3, line.find('"', 3) - 3);
    } else {
      if (line.empty() || line[0] == ' ' || line[0] == '-' || line[0] == '#' || line.find(':') == std::string::npos) continue;
      key = line.substr(0, line.find(':'));
    }
    keys.push_back(key);
  }
  return keys;
}

// What accelerate says about a file: empty when it loads.
std::string accelerate_refusal(const std::string& text, Format format) {
  const auto keys = top_level_keys(text, format);
  if (std::find(keys.begin(), keys.end(), "distributed_type") == keys.end()) {
    return "A `distributed_type` must be specified in the config file.";
  }
  std::vector<std::string> extra;
  for (const auto& key : keys) {
    if (!kAccelerateFields.count(key)) extra.push_back(key);
  }
  return extra.empty() ? "" : "unknown keys (" + accel::text::join(extra, ", ") + ")";
}

Config with_own_settings() {
  Config config;
  config.distributed_type = "MULTI_CPU";
  config.num_processes = 4;
  config.use_cpu = true;
  config.num_cpu_threads_per_process = 2;
  config.log_dir = "logs";
  config.max_restarts = 1;
  config.grace_period = 15;
  config.role = "worker";
  config.tee = true;
  config.local_ranks_filter = "0";
  config.ignored["fsdp_config"] = accel::config::Node{};
  return config;
}

}  // namespace

TEST_CASE("written files: the mirror of accelerate's loader refuses what accelerate refuses", "[config][written]") {
  CHECK(accelerate_refusal("distributed_type: 'NO'\nlog_dir: x\n", Format::Yaml) == "unknown keys (log_dir)");
  CHECK(accelerate_refusal("num_processes: 2\n", Format::Yaml) == "A `distributed_type` must be specified in the config file.");
  CHECK(accelerate_refusal("{\n  \"distributed_type\": \"NO\",\n  \"grace_period\": 3\n}\n", Format::Json) ==
        "unknown keys (grace_period)");
  CHECK(accelerate_refusal("distributed_type: FSDP\nfsdp_config:\n  fsdp_version: 2\n", Format::Yaml).empty());
}

TEST_CASE("written files: config default, the questionnaire and config update write what accelerate loads",
          "[config][written]") {
  for (const auto format : {Format::Yaml, Format::Json}) {
    INFO((format == Format::Yaml ? "yaml" : "json"));
    for (int gpus : {0, 1, 4}) {
      CHECK(accelerate_refusal(to_text(accel::config::default_config(machine_with_gpus(gpus), "bf16"), format, Keys::Accelerate),
                               format) == "");
    }
    for (const char* answers : {"\n\n\n\n\n", "multi-cpu\n2\n1\nhost\n\nyes\n6\nno\n",
                                "multi-gpu\n2\n0\n10.0.0.1\n29501\nyes\n4\nall\nbf16\n"}) {
      std::istringstream in(answers);
      std::ostringstream out;
      accel::config::Asker asker(in, out);
      const Config asked = accel::config::ask_config(asker, machine_with_gpus(2));
      CHECK(accelerate_refusal(to_text(asked, format, Keys::Accelerate), format) == "");
    }
    // A config holding accel-launch's own settings: the accelerate part loads in accelerate,
    // the own part holds nothing else.
    const Config config = with_own_settings();
    CHECK(accelerate_refusal(to_text(config, format, Keys::Accelerate), format) == "");
    CHECK(top_level_keys(to_text(config, format, Keys::Own), format) ==
          std::vector<std::string>{"grace_period", "local_ranks_filter", "log_dir", "max_restarts",
                                   "num_cpu_threads_per_process", "role", "tee"});
  }
}

TEST_CASE("written files: config update moves accel-launch's own keys beside the file, losing nothing",
          "[config][written][update]") {
  TempDir dir;
  const Config config = with_own_settings();
  const std::string path = dir.write("mine.yaml", to_text(config, Format::Yaml));
  REQUIRE(accelerate_refusal(slurp(path), Format::Yaml) != "");  // hand-written with our keys: accelerate refuses it
  std::ostringstream out;
  CHECK(accel::config::run_update({path}, out) == 0);
  const std::string own_path = dir.path("mine.accel-launch.yaml");
  CHECK(out.str().find("accel-launch: config written to " + own_path + "\n") != std::string::npos);
  CHECK(out.str().find("accel-launch: accel-launch's own settings (grace_period, local_ranks_filter, log_dir, max_restarts, "
                       "num_cpu_threads_per_process, role, tee) moved there: accelerate refuses keys it does not know\n") !=
        std::string::npos);
  CHECK(accelerate_refusal(slurp(path), Format::Yaml) == "");
  CHECK(accel::config::load_config(path).config == config);

  std::ostringstream again;
  CHECK(accel::config::run_update({path}, again) == 0);
  CHECK(again.str() == "accel-launch: " + path + " is up to date; nothing was written\n");
}

TEST_CASE("written files: the own-settings file takes accel-launch's keys only", "[config][written][errors]") {
  TempDir dir;
  const std::string path = dir.write("c.json", "{\"distributed_type\": \"MULTI_CPU\", \"num_processes\": 2}");
  dir.write("c.accel-launch.json", "{\"max_restarts\": 2, \"num_processes\": 4, \"fsdp_config\": {}}");
  CHECK_THROWS_WITH(accel::config::load_config(path),
                    dir.path("c.accel-launch.json") + ": fsdp_config, num_processes belong in " + path +
                        "; this file holds accel-launch's own settings only: num_cpu_threads_per_process, log_dir, tee, "
                        "max_restarts, grace_period, role, local_ranks_filter");
  dir.write("c.accel-launch.json", "{\"max_restarts\": 2}");
  const auto loaded = accel::config::load_config(path);
  CHECK(loaded.config.max_restarts == 2);
  CHECK(loaded.config.num_processes == 2);
}
