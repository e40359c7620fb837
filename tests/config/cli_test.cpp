// The accel-launch binary's config/env/test commands, run as a user runs them.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>

#include "accel/core/text.h"
#include "support.h"

using accel::test::TempDir;
using accel::test::slurp;

namespace {

const std::string kLaunch = ACCEL_LAUNCH_EXE;

struct Ran {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// Runs accel-launch with HOME in `home`, no GPU, no inherited config variables, stdin empty.
Ran run_cli(const TempDir& home, const std::string& args, const std::string& exe = kLaunch) {
  const std::string command = "cd " + home.root() + " && env -u ACCEL_CONFIG_FILE -u XDG_CONFIG_HOME -u HF_HOME -u XDG_CACHE_HOME HOME=" +
                              home.root() + " ACCEL_FAKE_GPUS=0 " + exe + " " + args + " </dev/null 2>&1";
  Ran ran;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) ran.output.append(buffer, n);
  const int status = ::pclose(pipe);
  ran.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

// Runs `accel-launch config ARGS` on a pseudo-terminal, typing `answers`.
Ran run_on_terminal(const TempDir& home, const std::vector<std::string>& args, const std::string& answers) {
  int terminal = -1;
  const pid_t pid = ::forkpty(&terminal, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setenv("HOME", home.root().c_str(), 1);
    ::setenv("ACCEL_FAKE_GPUS", "0", 1);
    ::unsetenv("ACCEL_CONFIG_FILE");
    ::unsetenv("XDG_CONFIG_HOME");
    std::vector<char*> argv{const_cast<char*>(kLaunch.c_str())};
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(kLaunch.c_str(), argv.data());
    ::_exit(127);
  }
  // The terminal's line discipline holds typed lines until the program reads them.
  REQUIRE(::write(terminal, answers.data(), answers.size()) == static_cast<ssize_t>(answers.size()));
  Ran ran;
  for (;;) {
    pollfd poll_fd{terminal, POLLIN, 0};
    if (::poll(&poll_fd, 1, 20000) <= 0) {
      ::kill(pid, SIGKILL);  // waiting for an answer it was not given
      break;
    }
    char buffer[4096];
    const ssize_t n = ::read(terminal, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO once the program has exited
    ran.output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(terminal);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ran.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

}  // namespace

TEST_CASE("cli: config default on a machine without GPUs writes the default file once", "[config][cli]") {
  TempDir home;
  const std::string path = home.path(".config/accel-launch/default_config.yaml");
  const Ran first = run_cli(home, "config default");
  CHECK(first.code == 0);
  CHECK(first.output == "accel-launch: no GPU found: 1 CPU process, distributed_type NO, mixed_precision no\n"
                        "accel-launch: config written to " + path + "\n");
  CHECK(slurp(path) ==
        "compute_environment: LOCAL_MACHINE\ndebug: false\ndistributed_type: 'NO'\nmachine_rank: 0\nmixed_precision: 'no'\n"
        "num_machines: 1\nnum_processes: 1\nuse_cpu: true\n");

  const Ran kept = run_cli(home, "config default --mixed_precision bf16");
  CHECK(kept.code == 0);  // as accelerate: a notice, not a failure
  CHECK(kept.output == "accel-launch: " + path +
                           " already exists and was left unchanged; pass --force to replace it (a backup is kept)\n");
  CHECK(slurp(path).find("mixed_precision: 'no'") != std::string::npos);

  const Ran forced = run_cli(home, "config default --mixed_precision bf16 --force");
  CHECK(forced.code == 0);
  CHECK(forced.output.find("the previous file is kept as " + path + ".bak\n") != std::string::npos);
  CHECK(slurp(path).find("mixed_precision: bf16") != std::string::npos);
  CHECK(slurp(path + ".bak").find("mixed_precision: 'no'") != std::string::npos);
}

TEST_CASE("cli: config default --config_file picks JSON by extension, bad flags are named", "[config][cli]") {
  TempDir home;
  const Ran json = run_cli(home, "config default --config-file out/c.json");
  CHECK(json.code == 0);
  CHECK(slurp(home.path("out/c.json")).rfind("{\n  \"compute_environment\": \"LOCAL_MACHINE\",", 0) == 0);
  const Ran bad = run_cli(home, "config default --config_file x.yaml --mixed_precision fp32");
  CHECK(bad.code == 2);
  CHECK(bad.output == "accel-launch: error: --mixed_precision 'fp32': accepted: no, fp16, bf16\n");
  CHECK_FALSE(std::filesystem::exists(home.path("x.yaml")));
}

TEST_CASE("cli: the questionnaire refuses politely without a terminal", "[config][cli][errors]") {
  TempDir home;
  const Ran ran = run_cli(home, "config");
  CHECK(ran.code == 2);
  CHECK(ran.output ==
        "accel-launch: error: `accel-launch config` asks its questions on a terminal, and stdin is not one. Use "
        "`accel-launch config default` for a config guessed from this machine, or copy one of the examples in configs/\n");
}

TEST_CASE("cli: the questionnaire on a terminal writes the file, and asks before replacing it", "[config][cli][questionnaire]") {
  TempDir home;
  const std::string path = home.path("asked.yaml");
  const Ran first = run_on_terminal(home, {"config", "--config_file", path}, "multi-cpu\n\nthree\n3\nbf16\n");
  CHECK(first.code == 0);
  CHECK(first.output.find("How many CPU processes in total, over all machines? [2]: ") != std::string::npos);
  CHECK(first.output.find("'three' is not a whole number from 1 to 4096; please answer again.") != std::string::npos);
  CHECK(first.output.find("accel-launch: config written to " + path) != std::string::npos);
  CHECK(slurp(path) ==
        "compute_environment: LOCAL_MACHINE\ndebug: false\ndistributed_type: MULTI_CPU\nmachine_rank: 0\nmixed_precision: bf16\n"
        "num_machines: 1\nnum_processes: 3\nuse_cpu: true\n");

  const Ran kept = run_on_terminal(home, {"config", "--config_file", path}, "\n");
  CHECK(kept.code == 0);
  CHECK(kept.output.find(path + " exists. Replace it (the old file is kept as a backup)? (yes/no) [no]: ") != std::string::npos);
  CHECK(kept.output.find(path + " was left unchanged") != std::string::npos);

  const Ran replaced = run_on_terminal(home, {"config", "--config_file", path}, "yes\n\n\n\n");
  CHECK(replaced.code == 0);
  CHECK(slurp(path).find("distributed_type: 'NO'") != std::string::npos);
  CHECK(slurp(path + ".bak").find("distributed_type: MULTI_CPU") != std::string::npos);
}

TEST_CASE("cli: config update names a missing file", "[config][cli][errors]") {
  TempDir home;
  const Ran none = run_cli(home, "config update");
  CHECK(none.code == 2);
  CHECK(none.output == "accel-launch: error: no config file to update: there is none at the default locations; pass --config_file\n");
  const Ran missing = run_cli(home, "config update --config_file gone.yaml");
  CHECK(missing.code == 2);
  CHECK(missing.output == "accel-launch: error: gone.yaml: cannot read the config file: No such file or directory\n");
  home.write("adir/x", "");
  const Ran directory = run_cli(home, "--config_file adir /bin/true");
  CHECK(directory.code == 2);
  CHECK_THAT(directory.output, Catch::EndsWith("accel-launch: error: adir: is a directory, not a config file\n"));
}

TEST_CASE("cli: env prints the block and the config in effect", "[config][cli]") {
  TempDir home;
  home.write(".cache/huggingface/accelerate/default_config.yaml", "distributed_type: MULTI_CPU\nnum_processes: 2\n");
  const Ran ran = run_cli(home, "env");
  CHECK(ran.code == 0);
  CHECK(ran.output.rfind("Copy and paste the text below into your bug report:\n\n- accel-launch version: ", 0) == 0);
  CHECK(ran.output.find("- GPUs: none found\n") != std::string::npos);
  CHECK(ran.output.find("- Config file: " + home.path(".cache/huggingface/accelerate/default_config.yaml") +
                        " (from accelerate's default location)\n- Config:\n    distributed_type: MULTI_CPU\n    num_processes: 2\n") !=
        std::string::npos);
}

TEST_CASE("cli: test names the missing built-in job", "[config][cli][errors]") {
  TempDir home;
  const std::string copy = home.path("accel-launch");
  std::filesystem::copy_file(kLaunch, copy);
  std::filesystem::permissions(copy, std::filesystem::perms::owner_all);
  const Ran ran = run_cli(home, "test", copy);
  CHECK(ran.code == 1);
  CHECK(ran.output == "accel-launch: error: the built-in test job " + home.path("accel-test-job") +
                          " is missing or not executable; build the accel-test-job target (it belongs next to accel-launch)\n");
}

TEST_CASE("cli: a launch reads the config file and refuses a bad one before starting anything", "[config][cli][errors]") {
  TempDir home;
  home.write("bad.yaml", "distributed_type: MULTI_CPU\nnum_proceses: 2\n");
  const Ran ran = run_cli(home, "--config_file bad.yaml /bin/true");
  CHECK(ran.code == 2);
  CHECK(ran.output == "accel-launch: using config file bad.yaml (from --config_file)\n"
                      "accel-launch: error: bad.yaml:2:1: unknown key 'num_proceses' (did you mean 'num_processes'?)\n");
}

TEST_CASE("cli: command line > config file > guessed, file values are not announced as guessed", "[config][cli][apply]") {
  TempDir home;
  home.write("cpu.yaml",
             "distributed_type: MULTI_CPU\nnum_processes: 3\nmixed_precision: bf16\nnum_cpu_threads_per_process: 1\n");
  const Ran ran = run_cli(home, std::string("--config_file cpu.yaml --num_processes 2 ") + PRINT_ENV_EXE +
                                    " WORLD_SIZE ACCEL_MIXED_PRECISION ACCEL_USE_CPU OMP_NUM_THREADS");
  INFO(ran.output);
  CHECK(ran.code == 0);
  CHECK(ran.output.rfind("accel-launch: using config file cpu.yaml (from --config_file)\n", 0) == 0);
  CHECK(ran.output.find("WORLD_SIZE=2") != std::string::npos);
  CHECK(ran.output.find("WORLD_SIZE=3") == std::string::npos);
  CHECK(ran.output.find("ACCEL_MIXED_PRECISION=bf16") != std::string::npos);
  CHECK(ran.output.find("ACCEL_USE_CPU=true") != std::string::npos);
  CHECK(ran.output.find("OMP_NUM_THREADS=1") != std::string::npos);
  for (const char* flag : {"--num_processes", "--mixed_precision", "--num_cpu_threads_per_process", "--cpu"}) {
    CHECK(ran.output.find(flag) == std::string::npos);
  }
}

TEST_CASE("cli: without --config_file the default location is read and named", "[config][cli][apply]") {
  TempDir home;
  const std::string path = home.write(".config/accel-launch/default_config.yaml", "distributed_type: MULTI_CPU\nnum_processes: 2\n");
  home.write(".cache/huggingface/accelerate/default_config.yaml", "distributed_type: MULTI_CPU\nnum_processes: 4\n");
  const Ran ran = run_cli(home, std::string(PRINT_ENV_EXE) + " WORLD_SIZE");
  INFO(ran.output);
  CHECK(ran.code == 0);
  CHECK(ran.output.rfind("accel-launch: using config file " + path + " (from the default location)\n", 0) == 0);
  CHECK(ran.output.find("WORLD_SIZE=2") != std::string::npos);
}

#ifdef ACCEL_TEST_JOB_BUILT
TEST_CASE("cli: test runs the built-in job on every configured process", "[config][cli][test]") {
  TempDir home;
  home.write("cpu.yaml", "distributed_type: MULTI_CPU\nnum_processes: 3\nnum_cpu_threads_per_process: 1\n");
  const Ran ran = run_cli(home, "test --config_file cpu.yaml");
  INFO(ran.output);
  CHECK(ran.code == 0);
  const std::string last = "accel-launch test: success: 3 processes on this machine passed (world size 3)\n";
  CHECK(ran.output.size() >= last.size());
  CHECK(ran.output.substr(ran.output.size() - last.size()) == last);
}
#endif

TEST_CASE("cli: --dry_run of a real accelerate file prints each worker's variables and the command, and runs nothing",
          "[config][cli][corpus]") {
  TempDir home;
  const std::string file = std::string(ACCEL_CONFIG_CORPUS) + "/accelerate-template-multi_node.yaml";
  const Ran ran = run_cli(home, "--dry_run --config_file " + file + " sh -c 'touch started'");
  INFO(ran.output);
  CHECK(ran.code == 0);
  CHECK_FALSE(std::filesystem::exists(home.path("started")));
  std::vector<std::string> workers;
  std::string command;
  for (const auto& line : accel::text::split(ran.output, '\n')) {
    if (line.rfind("RANK=", 0) == 0) workers.push_back(line);
    if (line.rfind("sh ", 0) == 0) command = line;
  }
  REQUIRE(workers.size() == 4);  // num_processes 8 over num_machines 2
  for (int local = 0; local < 4; ++local) {
    CHECK(workers[local].rfind("RANK=" + std::to_string(local) + " LOCAL_RANK=" + std::to_string(local) + " WORLD_SIZE=8 ", 0) == 0);
    CHECK(workers[local].find(" MASTER_ADDR=1234 MASTER_PORT=9999 ") != std::string::npos);
    CHECK(workers[local].find(" ACCELERATE_MIXED_PRECISION=no ") != std::string::npos);
  }
  CHECK(command == "sh -c 'touch started'");
  CHECK(ran.output.find("warning: distributed_type MULTI_GPU asks for GPU workers but this machine has no GPU") !=
        std::string::npos);
}
