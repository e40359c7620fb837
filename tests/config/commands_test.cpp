// config default / config update / env / test, called as library functions.
#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "accel/config/commands.h"
#include "accel/config/config.h"
#include "accel/core/error.h"
#include "support.h"

using accel::config::Config;
using accel::test::fake_env;
using accel::test::machine_with_gpus;
using accel::test::TempDir;
using accel::test::slurp;

TEST_CASE("config default: no GPU gives one CPU process, never zero", "[config][default]") {
  const Config config = accel::config::default_config(machine_with_gpus(0), "no");
  CHECK(config.distributed_type == std::string("NO"));
  CHECK(config.use_cpu == true);
  CHECK(config.num_processes == 1);
  CHECK(config.mixed_precision == std::string("no"));
  CHECK_FALSE(config.gpu_ids);
}

TEST_CASE("config default: one GPU runs one process on it, several run one each", "[config][default]") {
  const Config one = accel::config::default_config(machine_with_gpus(1), "bf16");
  CHECK(one.distributed_type == std::string("NO"));
  CHECK(one.use_cpu == false);
  CHECK(one.num_processes == 1);
  CHECK(one.mixed_precision == std::string("bf16"));
  const Config four = accel::config::default_config(machine_with_gpus(4), "fp16");
  CHECK(four.distributed_type == std::string("MULTI_GPU"));
  CHECK(four.num_processes == 4);
  CHECK(four.gpu_ids == std::string("all"));
  CHECK_THROWS_WITH(accel::config::default_config(machine_with_gpus(0), "fp8"),
                    "--mixed_precision 'fp8': accepted: no, fp16, bf16");
}

TEST_CASE("config update migrates legacy keys and keeps the old file as a backup", "[config][update]") {
  TempDir dir;
  const std::string fixture = std::string(ACCEL_CONFIG_FIXTURES) + "/accelerate-0.12-legacy-fp16.yaml";
  const std::string path = dir.write("legacy.yaml", slurp(fixture));
  std::ostringstream out;
  CHECK(accel::config::run_update({path}, out) == 0);
  CHECK(out.str() == "accel-launch: " + path +
                         ": legacy key fp16: true read as mixed_precision: fp16; `accel-launch config update` rewrites the file\n"
                         "accel-launch: config written to " + path + "\n"
                         "accel-launch: the previous file is kept as " + path + ".bak\n"
                         "accel-launch: comments of the previous file are only in the backup\n");
  CHECK(slurp(path + ".bak") == slurp(fixture));
  const std::string updated = slurp(path);
  CHECK(updated.find("fp16: true") == std::string::npos);
  CHECK(updated.find("mixed_precision: fp16\n") != std::string::npos);
  CHECK(updated.find("deepspeed_config: {}\n") != std::string::npos);

  std::ostringstream again;
  CHECK(accel::config::run_update({path}, again) == 0);
  CHECK(again.str() == "accel-launch: " + path + " is up to date; nothing was written\n");
  CHECK_FALSE(std::filesystem::exists(path + ".bak.1"));
}

TEST_CASE("config update refuses a bad file and leaves it alone", "[config][update][errors]") {
  TempDir dir;
  const std::string path = dir.write("bad.yaml", "num_processes: zero\n");
  std::ostringstream out;
  CHECK_THROWS_WITH(accel::config::run_update({path}, out),
                    path + ":1:16: num_processes: the string 'zero' is not an integer; accepted: an integer from 1 to 4096 (or -1: not set)");
  CHECK(slurp(path) == "num_processes: zero\n");
  CHECK_FALSE(std::filesystem::exists(path + ".bak"));
}

TEST_CASE("env reports versions read from installed files and the config in effect", "[config][env]") {
  TempDir root;
  root.write("etc/os-release", "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n");
  root.write("usr/include/torch/csrc/api/include/torch/version.h",
             "#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 4\n#define TORCH_VERSION_PATCH 1\n");
  root.write("usr/local/cuda/version.json", "{\"cuda\": {\"name\": \"CUDA SDK\", \"version\": \"12.4.131\"}}\n");
  root.write("usr/include/nccl.h", "#define NCCL_MAJOR 2\n#define NCCL_MINOR 21\n#define NCCL_PATCH 5\n");
  root.write("usr/lib/x86_64-linux-gnu/libtorch_cpu.so", "");
  const std::string config = root.write("cfg.yaml", "distributed_type: MULTI_GPU\nnum_processes: 2\n");
  // A Python that answers the report's probe as one with torch and without accelerate would.
  const std::string python = root.write("python", "#!/bin/sh\necho python 3.11.2; echo torch 2.1.0; echo accelerate -; "
                                                  "echo torch_cuda 12.1\n");
  ::chmod(python.c_str(), 0755);

  accel::config::EnvOptions options;
  options.version = "9.9.9";
  options.root = root.root();
  options.config_file = config;
  const std::string report = accel::config::env_report(options, machine_with_gpus(2), fake_env({{"ACCEL_PYTHON", python}}));
  CHECK(report == "Copy and paste the text below into your bug report:\n\n"
                  "- accel-launch version: 9.9.9\n"
                  "- Platform: Linux 6.1.0 x86_64 (Debian GNU/Linux 12 (bookworm))\n"
                  "- CPUs: 16 usable by this process\n"
                  "- RAM: 64.0 GiB\n"
                  "- GPUs: 2\n"
                  "    0: NVIDIA H100 80GB HBM3, 80.0 GiB\n"
                  "    1: NVIDIA H100 80GB HBM3, 80.0 GiB\n"
                  "- GPU driver: 550.54.15\n"
                  "- LibTorch (C++ jobs): 2.4.1 (" + root.root() + "/usr/include/torch/csrc/api/include/torch/version.h), "
                  "CPU only (no libtorch_cuda.so beside " + root.root() + "/usr/lib/x86_64-linux-gnu/libtorch_cpu.so)\n"
                  "- Python (runs Python JOBs): " + python + ", Python 3.11.2 ($ACCEL_PYTHON)\n"
                  "- torch (that Python's): 2.1.0, built for CUDA 12.1 (from its installed metadata and torch/version.py)\n"
                  "- accelerate (that Python's): not installed for this Python\n"
                  "- CUDA toolkit (installed files): 12.4.131 (" + root.root() + "/usr/local/cuda/version.json)\n"
                  "- NCCL (installed headers): 2.21.5 (" + root.root() + "/usr/include/nccl.h)\n"
                  "- Config file: " + config + " (from --config_file)\n"
                  "- Config:\n"
                  "    distributed_type: MULTI_GPU\n"
                  "    num_processes: 2\n");
}

TEST_CASE("env on a bare machine says what it did not find, and a bad config does not stop it", "[config][env]") {
  TempDir root;
  root.write("usr/local/cuda/include/cuda.h", "#define CUDA_VERSION 11080\n");
  const std::string config = root.write("cfg.yaml", "use_cpu: perhaps\n");
  accel::config::EnvOptions options;
  options.version = "1.0";
  options.root = root.root();
  options.config_file = config;
  const std::string report = accel::config::env_report(options, machine_with_gpus(0), fake_env({{"PATH", root.root()}}));
  CHECK(report.find("- GPUs: none found\n- LibTorch (C++ jobs): not found\n"
                    "- Python: none (no python3 on PATH; a Python JOB needs one: --python PATH or $ACCEL_PYTHON)\n"
                    "- CUDA toolkit (installed files): 11.8 (" + root.root() + "/usr/local/cuda/include/cuda.h)\n"
                    "- NCCL (installed headers): not found\n") != std::string::npos);
  options.python = root.path("no-python");
  CHECK(accel::config::env_report(options, machine_with_gpus(0), fake_env({})).find(
            "- Python: --python " + root.path("no-python") + ": no such executable file;") != std::string::npos);
  CHECK(report.find("- Config: cannot be used: " + config + ":1:10: use_cpu: the string 'perhaps' is not a boolean") != std::string::npos);

  options.config_file.reset();
  TempDir home;
  const std::string none = accel::config::env_report(options, machine_with_gpus(0), fake_env({{"HOME", home.root()}}));
  CHECK(none.find("- Config file: none (command-line values and guesses only)\n") != std::string::npos);
}

TEST_CASE("test launches the job on every configured process and reports success", "[config][test]") {
  TempDir dir;
  const std::string config = dir.write("cpu.yaml", "distributed_type: MULTI_CPU\nnum_processes: 3\n");
  std::ostringstream out;
  CHECK(accel::config::run_test({config, "/bin/true"}, out) == 0);
  CHECK(out.str() == "accel-launch test: success: 3 processes on this machine passed (world size 3)\n");
}

TEST_CASE("test passes on a failure's exit code with one summary line", "[config][test][errors]") {
  TempDir dir;
  const std::string config = dir.write("cpu.json", "{\"distributed_type\": \"MULTI_CPU\", \"num_processes\": 2}");
  std::ostringstream out;
  CHECK(accel::config::run_test({config, "/bin/false"}, out) == 1);
  CHECK(out.str() == "accel-launch test: FAILED with exit code 1 (the failure summary is above)\n");
  CHECK_THROWS_WITH(accel::config::run_test({config, dir.path("no-such-job")}, out),
                    "the built-in test job " + dir.path("no-such-job") +
                        " is missing or not executable; build the accel-test-job target (it belongs next to accel-launch)");
}
