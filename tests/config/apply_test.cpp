// Which file a launch reads, and command line > file > guessed.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <sstream>

#include "accel/config/apply.h"
#include "accel/config/locations.h"
#include "accel/core/error.h"
#include "accel/launch/resolve.h"
#include "accel/launch/supervisor.h"
#include "support.h"

using accel::config::Config;
using accel::config::fill_request;
using accel::config::Source;
using accel::launch::LaunchRequest;
using accel::test::fake_env;
using accel::test::machine_with_gpus;
using accel::test::TempDir;

TEST_CASE("default locations follow XDG and accelerate's HF_HOME rules", "[config][locations]") {
  using accel::config::accelerate_default_path;
  using accel::config::own_default_path;
  CHECK(own_default_path(fake_env({{"HOME", "/h"}})) == std::string("/h/.config/accel-launch/default_config.yaml"));
  CHECK(own_default_path(fake_env({{"HOME", "/h"}, {"XDG_CONFIG_HOME", "/x"}})) == std::string("/x/accel-launch/default_config.yaml"));
  CHECK_FALSE(own_default_path(fake_env({})));
  CHECK(accelerate_default_path(fake_env({{"HOME", "/h"}})) == std::string("/h/.cache/huggingface/accelerate/default_config.yaml"));
  CHECK(accelerate_default_path(fake_env({{"HOME", "/h"}, {"XDG_CACHE_HOME", "/c"}})) ==
        std::string("/c/huggingface/accelerate/default_config.yaml"));
  CHECK(accelerate_default_path(fake_env({{"HOME", "/h"}, {"XDG_CACHE_HOME", "/c"}, {"HF_HOME", "/hf"}})) ==
        std::string("/hf/accelerate/default_config.yaml"));
}

TEST_CASE("the file in effect: --config_file, $ACCEL_CONFIG_FILE, ours, then accelerate's", "[config][locations]") {
  using accel::config::find_config_file;
  TempDir dir;
  auto env = std::map<std::string, std::string>{{"HOME", dir.root()}};
  CHECK_FALSE(find_config_file(std::nullopt, fake_env(env)));

  const std::string theirs = dir.write(".cache/huggingface/accelerate/default_config.yaml", "use_cpu: true\n");
  auto found = find_config_file(std::nullopt, fake_env(env));
  REQUIRE(found);
  CHECK(found->path == theirs);
  CHECK(found->source == Source::Accelerate);

  const std::string ours = dir.write(".config/accel-launch/default_config.yaml", "use_cpu: true\n");
  found = find_config_file(std::nullopt, fake_env(env));
  CHECK(found->path == ours);
  CHECK(found->source == Source::OwnDefault);

  env["ACCEL_CONFIG_FILE"] = "/named/by/env.yaml";
  found = find_config_file(std::nullopt, fake_env(env));
  CHECK(found->path == "/named/by/env.yaml");
  CHECK(found->source == Source::Environment);

  found = find_config_file(std::string("cli.json"), fake_env(env));
  CHECK(found->path == "cli.json");
  CHECK(found->source == Source::CommandLine);
}

TEST_CASE("the command line wins over the file, the file fills the rest", "[config][apply]") {
  Config config;
  config.distributed_type = "MULTI_GPU";
  config.num_processes = 4;
  config.num_machines = 2;
  config.machine_rank = 0;
  config.main_process_ip = "10.0.0.1";
  config.main_process_port = 29600;
  config.gpu_ids = "0,1,2,3";
  config.mixed_precision = "bf16";
  config.debug = true;
  config.log_dir = "logs";
  config.max_restarts = 2;
  config.grace_period = 5;
  config.tee = true;
  config.role = "worker";
  config.local_ranks_filter = "0";
  config.num_cpu_threads_per_process = 3;

  LaunchRequest request;
  request.num_processes = 2;
  request.machine_rank = 1;
  request.mixed_precision = "no";
  fill_request(request, config);
  CHECK(request.num_processes == 2);
  CHECK(request.machine_rank == 1);
  CHECK(request.mixed_precision == std::string("no"));
  CHECK_FALSE(request.use_cpu);
  CHECK(request.distributed_type == accel::DistributedType::kMultiGpu);
  CHECK(request.num_machines == 2);
  CHECK(request.main_process_ip == std::string("10.0.0.1"));
  CHECK(request.main_process_port == 29600);
  CHECK(request.gpu_ids == std::string("0,1,2,3"));
  CHECK(request.debug == true);
  CHECK(request.log_dir == std::string("logs"));
  CHECK(request.max_restarts == 2);
  CHECK(request.grace_period == 5.0);
  CHECK(request.tee == true);
  CHECK(request.role == std::string("worker"));
  CHECK(request.local_ranks_filter == std::string("0"));
  CHECK(request.num_cpu_threads_per_process == 3);
}

TEST_CASE("what the file leaves out stays empty, to be guessed", "[config][apply]") {
  Config config;
  config.distributed_type = "MULTI_GPU";
  LaunchRequest request;
  fill_request(request, config);
  CHECK_FALSE(request.use_cpu);
  CHECK(request.distributed_type == accel::DistributedType::kMultiGpu);
  CHECK_FALSE(request.num_processes);
  CHECK_FALSE(request.mixed_precision);
  CHECK_FALSE(request.main_process_port);
  CHECK_FALSE(request.log_dir);
}

TEST_CASE("distributed_type becomes the device and process choice", "[config][apply]") {
  SECTION("NO runs one process; use_cpu false leaves the device to the machine") {
    Config config;
    config.distributed_type = "NO";
    config.use_cpu = false;
    LaunchRequest request;
    fill_request(request, config);
    CHECK(request.num_processes == 1);
    CHECK_FALSE(request.use_cpu);
  }
  SECTION("MULTI_CPU means CPU even when use_cpu is absent, and gpu_ids all mean nothing there") {
    Config config;
    config.distributed_type = "MULTI_CPU";
    config.gpu_ids = "all";
    LaunchRequest request;
    fill_request(request, config);
    CHECK(request.use_cpu == true);
    CHECK_FALSE(request.names_gpus());
  }
  SECTION("--cpu on the command line beats a MULTI_GPU file; its gpu_ids are left for resolve to ignore with a warning") {
    Config config;
    config.distributed_type = "MULTI_GPU";
    config.gpu_ids = "0,1";
    LaunchRequest request;
    request.use_cpu = true;
    fill_request(request, config);
    CHECK(request.use_cpu == true);
    CHECK_FALSE(request.distributed_type);
    CHECK(request.gpu_ids == std::string("0,1"));
  }
  SECTION("a mode flag on the command line (--use_fsdp) replaces the file's mode") {
    Config config;
    config.distributed_type = "MULTI_CPU";
    LaunchRequest request;
    request.distributed_type = accel::DistributedType::kFsdp;
    fill_request(request, config);
    CHECK(request.distributed_type == accel::DistributedType::kFsdp);
    CHECK_FALSE(request.use_cpu);
  }
}

TEST_CASE("apply_config_file says which file it used and what it ignored", "[config][apply]") {
  TempDir dir;
  const std::string path = dir.write("c.yaml", "distributed_type: MULTI_CPU\nnum_processes: 3\ntpu_name: t\n");
  LaunchRequest request;
  request.config_file = path;
  std::ostringstream notes;
  accel::config::apply_config_file(request, notes, fake_env({}));
  CHECK(notes.str() == "accel-launch: using config file " + path + " (from --config_file)\n" +
                           "accel-launch: " + path + ": ignoring settings for features accel-launch does not run: tpu_name\n");
  CHECK(request.num_processes == 3);
  CHECK(request.use_cpu == true);
}

TEST_CASE("apply: sections become the job's settings under accelerate's argument names, flags win", "[config][apply]") {
  TempDir dir;
  const std::string path = dir.write(
      "c.yaml",
      "distributed_type: FSDP\nmixed_precision: fp8\nenable_cpu_affinity: true\n"
      "fsdp_config:\n  offload_params: true\n  fsdp_version: 2\n  fsdp_transformer_layer_cls_to_wrap: [A, B]\n"
      "fp8_config:\n  backend: TE\n  fp8_format: E4M3\n"
      "dynamo_config:\n  dynamo_backend: INDUCTOR\n  use_fullgraph: true\n"
      "deepspeed_config:\n  zero_stage: 2\n"
      "mpirun_config:\n  mpirun_hostfile: /etc/hosts.mpi\n");
  LaunchRequest request;
  request.config_file = path;
  request.job_settings["fsdp_version"] = "1";
  std::ostringstream notes;
  accel::config::apply_config_file(request, notes, fake_env({}));
  const accel::launch::accelerate::JobSettings expected = {
      {"fsdp_offload_params", "True"},
      {"fsdp_version", "1"},
      {"fsdp_transformer_layer_cls_to_wrap", "['A', 'B']"},
      {"fp8_backend", "TE"},
      {"fp8_format", "E4M3"},
      {"dynamo_backend", "INDUCTOR"},
      {"dynamo_use_fullgraph", "True"},
      {"zero_stage", "2"},
      {"deepspeed_fields_from_accelerate_config", "zero_stage,mixed_precision"},
      {"mpirun_hostfile", "/etc/hosts.mpi"},
      {"enable_cpu_affinity", "True"},
  };
  CHECK(request.job_settings == expected);
  CHECK(request.distributed_type == accel::DistributedType::kFsdp);
  CHECK(request.mpirun_hostfile == std::string("/etc/hosts.mpi"));
}

TEST_CASE("apply_config_file reads $ACCEL_CONFIG_FILE and records the file", "[config][apply]") {
  TempDir dir;
  const std::string path = dir.write("env.json", "{\"num_processes\": 5}");
  LaunchRequest request;
  std::ostringstream notes;
  accel::config::apply_config_file(request, notes, fake_env({{"ACCEL_CONFIG_FILE", path}, {"HOME", dir.root()}}));
  CHECK(notes.str() == "accel-launch: using config file " + path + " (from $ACCEL_CONFIG_FILE)\n");
  CHECK(request.num_processes == 5);
  CHECK(request.config_file == path);
}

TEST_CASE("no file anywhere: nothing changes and nothing is said", "[config][apply]") {
  TempDir dir;
  LaunchRequest request;
  std::ostringstream notes;
  accel::config::apply_config_file(request, notes, fake_env({{"HOME", dir.root()}}));
  CHECK(notes.str().empty());
  CHECK_FALSE(request.num_processes);
  CHECK_FALSE(request.config_file);
}

TEST_CASE("a named file that is missing is an error, not a silent fallback", "[config][apply][errors]") {
  TempDir dir;
  LaunchRequest request;
  request.config_file = dir.path("missing.yaml");
  std::ostringstream notes;
  CHECK_THROWS_WITH(accel::config::apply_config_file(request, notes, fake_env({{"HOME", dir.root()}})),
                    dir.path("missing.yaml") + ": cannot read the config file: No such file or directory");
}

TEST_CASE("apply: --gpu_ids on the command line does not change a CPU config file's mode (as in accelerate)", "[config][apply]") {
  Config config;
  config.distributed_type = "MULTI_CPU";
  config.use_cpu = true;
  config.num_processes = 2;
  LaunchRequest request;
  request.gpu_ids = "0,1";
  fill_request(request, config);
  CHECK(request.use_cpu == true);
  CHECK(request.gpu_ids == std::string("0,1"));
  CHECK(request.num_processes == 2);
}

TEST_CASE("apply: resolve's errors about a value the file gave name the file and line", "[config][apply][errors]") {
  TempDir dir;
  const std::string path =
      dir.write("gpus.yaml", "distributed_type: MULTI_GPU\nnum_processes: 4\ngpu_ids: 0,5\nlocal_ranks_filter: 0\n");
  accel::hardware::Machine two_gpus = machine_with_gpus(2);
  LaunchRequest request;
  request.job = {"sh", "-c", "true"};
  request.config_file = path;
  request.dry_run = true;
  std::ostringstream notes;
  accel::config::apply_config_file(request, notes, fake_env({}));
  CHECK(request.origin("gpu_ids") == path + ":3: gpu_ids");
  CHECK(request.origin("num_processes") == path + ":2: num_processes");
  CHECK(request.origin("main_process_port") == "--main_process_port");
  CHECK_THROWS_WITH(accel::launch::resolve(request, two_gpus, notes),
                    path + ":3: gpu_ids 0,5: GPU 5 does not exist; this machine has 2 GPU(s), numbered 0..1");
  request.gpu_ids.reset();
  CHECK_THROWS_WITH(accel::launch::resolve(request, two_gpus, notes),
                    path + ":2: num_processes 4 needs 4 GPU(s) per machine but 2 GPU(s) are available; pass "
                           "--num_processes 2 or less, or --cpu for CPU workers");
  // The command line's value is named as a flag.
  request.num_processes = 3;
  request.origins.erase("num_processes");
  CHECK_THROWS_WITH(accel::launch::resolve(request, two_gpus, notes),
                    "--num_processes 3 needs 3 GPU(s) per machine but 2 GPU(s) are available; pass --num_processes 2 "
                    "or less, or --cpu for CPU workers");
}

namespace {
// `sh -c script` on CPU workers, with no config file (HOME is `home`) and no GPU.
LaunchRequest cpu_shell_job(const TempDir& home, const std::string& script) {
  LaunchRequest request;
  request.job = {"/bin/sh", "-c", script};
  request.use_cpu = true;
  request.environment = fake_env({{"HOME", home.root()}, {"PATH", "/usr/bin:/bin"}, {"ACCEL_FAKE_GPUS", "0"}});
  return request;
}
}  // namespace

TEST_CASE("launch flow: a dry run prints each worker's variables and the command, and starts nothing", "[config][apply]") {
  TempDir home;
  const std::string marker = home.path("started");
  LaunchRequest request = cpu_shell_job(home, "touch " + marker);
  request.num_processes = 2;
  request.dry_run = true;
  std::ostringstream out, err;
  const auto launched = accel::launch::launch_with_config(request, accel::config::kApplyConfigFile, out, err);
  CHECK(launched.exit_code == 0);
  CHECK(launched.spec.num_processes == 2);
  const std::string report = out.str();
  CHECK(report.rfind("RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 ", 0) == 0);
  CHECK(report.find("\nRANK=1 LOCAL_RANK=1 WORLD_SIZE=2 ") != std::string::npos);
  CHECK(report.substr(report.rfind('\n', report.size() - 2) + 1) == "/bin/sh -c 'touch " + marker + "'\n");
  CHECK(err.str().find("exit code") == std::string::npos);
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("launch flow: a failed job's summary goes to the error stream and its code is returned", "[config][apply][errors]") {
  TempDir home;
  LaunchRequest request = cpu_shell_job(home, "exit 3");
  request.quiet = true;
  std::ostringstream out, err;
  const auto launched = accel::launch::launch_with_config(request, accel::config::kApplyConfigFile, out, err);
  CHECK(launched.exit_code == 3);
  CHECK(out.str().empty());
  CHECK(err.str().find("exited with status 3") != std::string::npos);
  CHECK(err.str().find("accel-launch: exit code 3") != std::string::npos);
}

TEST_CASE("apply: a config built in code with a mode accelerate does not spell is refused by name", "[config][apply][errors]") {
  Config config;
  config.distributed_type = "MULTI-GPU";
  LaunchRequest request;
  CHECK_THROWS_WITH(fill_request(request, config),
                    "distributed_type 'MULTI-GPU' is not one of NO, MULTI_CPU, MULTI_GPU, MULTI_NPU, MULTI_MLU, MULTI_SDAA, "
                    "MULTI_MUSA, MULTI_XPU, MULTI_HPU, MULTI_NEURON, DEEPSPEED, FSDP, MEGATRON_LM, XLA, TPU (a config built "
                    "without the schema)");
}
