#include <catch2/catch.hpp>
#include <sched.h>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel/core/error.h"
#include "accel/core/text.h"
#include "support/fake_env.h"
#include "support/listener.h"
#include "support/temp_dir.h"
#include "accel/launch/resolve.h"

using accel::launch::LaunchRequest;
using accel::launch::resolve;

namespace {

accel::hardware::Machine machine(int cpus, int gpus) {
  accel::hardware::Machine m;
  m.cpus = cpus;
  for (int i = 0; i < gpus; ++i) m.gpus.push_back({i, "Test GPU", 0, std::to_string(i)});
  return m;
}

// The launcher's environment without OMP_NUM_THREADS and PYTHONUNBUFFERED, so the guessed
// thread count and the variables added are the same wherever the tests run.
accel::env::Lookup environment_with(std::map<std::string, std::optional<std::string>> overrides) {
  overrides.emplace("OMP_NUM_THREADS", std::nullopt);
  overrides.emplace("PYTHONUNBUFFERED", std::nullopt);
  return accel::test::process_environment_with(std::move(overrides));
}

LaunchRequest job(std::vector<std::string> argv = {"sh", "-c", "true"}) {
  LaunchRequest request;
  request.job = std::move(argv);
  request.environment = environment_with({});
  return request;
}

std::string usage_error(const LaunchRequest& request, const accel::hardware::Machine& m = machine(4, 0)) {
  std::ostringstream notes;
  try {
    resolve(request, m, notes);
  } catch (const accel::UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

std::map<std::string, std::string> env_of(const accel::launch::LaunchSpec& spec, int local_rank) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : worker_environment(spec, {local_rank, 1, "/tmp/e.json"})) out[name] = value;
  return out;
}


}  // namespace

TEST_CASE("launch resolve: a CPU-only machine gets one worker with all cores, announced in one line") {
  std::ostringstream notes;
  const auto spec = resolve(job(), machine(8, 0), notes);
  CHECK(spec.num_processes == 1);
  CHECK(spec.use_cpu);
  CHECK(spec.omp_threads == 8);
  CHECK(spec.master_addr == "127.0.0.1");
  CHECK(spec.master_port > 0);
  CHECK(spec.executable.substr(spec.executable.size() - 3) == "/sh");
  const std::string text = notes.str();
  CHECK(text.find("--num_processes 1 (no GPU in use: one CPU worker)") != std::string::npos);
  CHECK(text.find("--num_cpu_threads_per_process 8 (8 CPUs / 1 worker)") != std::string::npos);
  CHECK(text.find("--main_process_port " + std::to_string(spec.master_port) + " (free)") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
}

TEST_CASE("launch resolve: values given explicitly are never announced") {
  auto request = job();
  request.num_processes = 3;
  request.num_cpu_threads_per_process = 2;
  request.main_process_port = 0;  // 0 = "a free port", chosen by the user
  std::ostringstream notes;
  const auto spec = resolve(request, machine(8, 0), notes);
  CHECK(spec.num_processes == 3);
  CHECK(spec.omp_threads == 2);
  CHECK(notes.str().empty());
}


TEST_CASE("launch resolve: an inherited OMP_NUM_THREADS is left alone") {
  auto request = job();
  request.num_processes = 2;
  request.environment = environment_with({{"OMP_NUM_THREADS", "5"}});
  std::ostringstream notes;
  const auto spec = resolve(request, machine(8, 0), notes);
  CHECK_FALSE(spec.omp_threads);
  CHECK(env_of(spec, 0).count("OMP_NUM_THREADS") == 0);
  CHECK(notes.str().find("threads") == std::string::npos);
}

TEST_CASE("launch resolve: JOB is looked up on the PATH of the request's environment") {
  accel::test::TempDir dir("resolve-path");
  const std::string program = dir.write("bin/my-job", "#!/bin/sh\n");
  ::chmod(program.c_str(), 0755);
  auto request = job({"my-job", "--flag"});
  request.environment = environment_with({{"PATH", "/nonexistent:" + dir.path("bin")}});
  std::ostringstream notes;
  const auto spec = resolve(request, machine(4, 0), notes);
  CHECK(spec.executable == program);
  CHECK(spec.argv == std::vector<std::string>{"my-job", "--flag"});

  request.environment = environment_with({{"PATH", "/nonexistent"}});
  CHECK(usage_error(request) == "JOB my-job: not found on PATH (give a path such as ./my-job)");
}

TEST_CASE("launch resolve: GPUs give one worker per GPU, --cpu overrides") {
  std::ostringstream notes;
  auto spec = resolve(job(), machine(16, 4), notes);
  CHECK(spec.num_processes == 4);
  CHECK_FALSE(spec.use_cpu);
  CHECK(spec.omp_threads == 4);
  CHECK(notes.str().find("--num_processes 4 (one per GPU)") != std::string::npos);
  CHECK(env_of(spec, 0).count("CUDA_VISIBLE_DEVICES") == 0);

  auto cpu = job();
  cpu.use_cpu = true;
  spec = resolve(cpu, machine(16, 4), notes);
  CHECK(spec.num_processes == 1);
  CHECK(env_of(spec, 0)["ACCEL_USE_CPU"] == "true");
}

TEST_CASE("launch resolve: --gpu_ids sets the process count and CUDA_VISIBLE_DEVICES") {
  auto request = job();
  request.gpu_ids = "2,0";
  std::ostringstream notes;
  const auto spec = resolve(request, machine(8, 4), notes);
  CHECK(spec.num_processes == 2);
  CHECK(env_of(spec, 1)["CUDA_VISIBLE_DEVICES"] == "2,0");
  CHECK(env_of(spec, 1)["ACCEL_USE_CPU"] == "false");
}

TEST_CASE("launch resolve: --enable_cpu_affinity binds each worker to its GPU's CPUs that the launcher may use") {
  cpu_set_t allowed;
  REQUIRE(::sched_getaffinity(0, sizeof allowed, &allowed) == 0);
  std::vector<int> ours;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) ours.push_back(cpu);
  }
  REQUIRE(!ours.empty());
  const int not_ours = CPU_SETSIZE - 1;
  REQUIRE(!CPU_ISSET(not_ours, &allowed));
  auto m = machine(8, 3);
  m.gpus[0].local_cpus = {ours.front(), not_ours};
  m.gpus[1].local_cpus = ours;
  // GPU 2's local CPUs are unknown (no NVML, no sysfs).

  auto request = job();
  request.job_settings["enable_cpu_affinity"] = "true";
  request.gpu_ids = "1,0,2";
  std::ostringstream notes;
  const auto spec = resolve(request, m, notes);
  REQUIRE(spec.cpu_affinity.size() == 3);
  CHECK(spec.cpu_affinity[0] == ours);
  CHECK(spec.cpu_affinity[1] == std::vector<int>{ours.front()});
  CHECK(spec.cpu_affinity[2].empty());
  const std::string announced = "accel-launch: CPU affinity: rank 0 on CPUs " + accel::hardware::format_cpu_list(ours) +
                                " (GPU 1), rank 1 on CPUs " + std::to_string(ours.front()) +
                                " (GPU 0), rank 2 not bound (GPU 2's local CPUs are unknown or not ours)\n";
  CHECK(notes.str().find(announced) != std::string::npos);

  // CPU workers have no GPU to be near: nothing is bound, as in accelerate.
  request.gpu_ids.reset();
  request.use_cpu = true;
  std::ostringstream cpu_notes;
  CHECK(resolve(request, m, cpu_notes).cpu_affinity.empty());
  CHECK(cpu_notes.str().find("CPU affinity") == std::string::npos);

  request.use_cpu.reset();
  request.job_settings["enable_cpu_affinity"] = "False";
  CHECK(resolve(request, m, notes).cpu_affinity.empty());
}

TEST_CASE("launch resolve: --gpu_ids under an inherited CUDA_VISIBLE_DEVICES name the launcher's GPUs") {
  auto m = machine(8, 4);
  m.gpus = accel::hardware::visible_gpus(m.gpus, "3,1");  // the launcher itself sees physical GPUs 3 and 1
  auto request = job();
  request.gpu_ids = "1";
  std::ostringstream notes;
  const auto spec = resolve(request, m, notes);
  CHECK(env_of(spec, 0)["CUDA_VISIBLE_DEVICES"] == "1");
  request.gpu_ids = "0,1";
  CHECK(env_of(resolve(request, m, notes), 0)["CUDA_VISIBLE_DEVICES"] == "3,1");
  request.gpu_ids = "2";
  CHECK(usage_error(request, m) == "--gpu_ids 2: GPU 2 does not exist; this machine has 2 GPU(s), numbered 0..1");
}

TEST_CASE("launch resolve: more GPU workers than GPUs are refused before any starts") {
  auto request = job();
  request.num_processes = 4;
  CHECK(usage_error(request, machine(8, 1)) ==
        "--num_processes 4 needs 4 GPU(s) per machine but 1 GPU(s) are available; pass --num_processes 1 or less, "
        "or --cpu for CPU workers");
  request.gpu_ids = "all";
  CHECK(usage_error(request, machine(8, 2)) ==
        "--num_processes 4 needs 4 GPU(s) per machine but 2 GPU(s) are available; pass --num_processes 2 or less, "
        "or --cpu for CPU workers");
  request.gpu_ids.reset();
  request.use_cpu = true;
  std::ostringstream notes;
  CHECK(resolve(request, machine(8, 1), notes).num_processes == 4);
}

TEST_CASE("launch resolve: bad --gpu_ids are refused naming the GPU and the count") {
  auto request = job();
  request.gpu_ids = "0,5";
  CHECK(usage_error(request, machine(8, 2)) ==
        "--gpu_ids 0,5: GPU 5 does not exist; this machine has 2 GPU(s), numbered 0..1");
  request.gpu_ids = "0,x";
  CHECK(usage_error(request, machine(8, 2)) ==
        "--gpu_ids '0,x': 'x' is not an index; expected a comma-separated list such as 0,1");
  request.gpu_ids = "1,1";
  CHECK(usage_error(request, machine(8, 2)) == "--gpu_ids '1,1': 1 is listed twice");
  request.gpu_ids = "0";
  request.num_processes = 2;
  CHECK(usage_error(request, machine(8, 2)) ==
        "--gpu_ids 0 names 1 GPU(s) but each machine runs 2 process(es) (--num_processes 2 in total); give one GPU per process");
}

TEST_CASE("launch resolve: gpu_ids on a CPU run are ignored with one warning, as accelerate runs them") {
  auto request = job();
  request.gpu_ids = "0,1";
  request.num_processes = 2;
  std::ostringstream no_gpu;
  auto spec = resolve(request, machine(8, 0), no_gpu);
  CHECK(spec.num_processes == 2);
  CHECK(spec.use_cpu);
  CHECK(spec.cuda_visible_devices.empty());
  CHECK(no_gpu.str().find("accel-launch: warning: gpu_ids 0,1 ignored: this machine has no GPU, the workers run on CPU\n") !=
        std::string::npos);
  request.use_cpu = true;
  std::ostringstream cpu;
  spec = resolve(request, machine(8, 2), cpu);
  CHECK(spec.use_cpu);
  CHECK(env_of(spec, 0).count("CUDA_VISIBLE_DEVICES") == 0);
  CHECK(cpu.str().find("accel-launch: warning: gpu_ids 0,1 ignored: the workers run on CPU (--cpu or use_cpu)\n") !=
        std::string::npos);
}

TEST_CASE("launch resolve: gpu_ids all restricts nothing and is never warned about, from a file or the command line") {
  auto request = job();
  request.gpu_ids = "all";
  for (const bool from_file : {false, true}) {
    if (from_file) request.origins["gpu_ids"] = "cpu.yaml:4: gpu_ids";
    std::ostringstream cpu_notes;
    CHECK(resolve(request, machine(8, 0), cpu_notes).use_cpu);
    CHECK(cpu_notes.str().find("gpu_ids") == std::string::npos);
    std::ostringstream gpu_notes;
    const auto spec = resolve(request, machine(8, 2), gpu_notes);
    CHECK(spec.num_processes == 2);
    CHECK(spec.cuda_visible_devices.empty());
    CHECK(gpu_notes.str().find("ignored") == std::string::npos);
  }
}

TEST_CASE("launch resolve: a GPU mode on a machine without GPUs runs CPU workers with one warning") {
  for (const char* mode : {"MULTI_GPU", "FSDP", "DEEPSPEED", "MEGATRON_LM", "MULTI_XPU"}) {
    INFO(mode);
    auto request = job();
    request.distributed_type = accel::parse_distributed_type(mode);
    request.num_processes = 3;
    std::ostringstream notes;
    const auto spec = resolve(request, machine(6, 0), notes);
    CHECK(spec.num_processes == 3);
    CHECK(spec.use_cpu);
    CHECK(notes.str().find(std::string("accel-launch: warning: distributed_type ") + mode +
                           " asks for GPU workers but this machine has no GPU; running CPU workers instead (as accelerate does)\n") !=
          std::string::npos);
  }
  auto request = job();
  request.distributed_type = accel::DistributedType::kMultiCpu;
  std::ostringstream notes;
  CHECK(resolve(request, machine(6, 0), notes).use_cpu);
  CHECK(notes.str().find("warning") == std::string::npos);
}

TEST_CASE("launch resolve: num_processes counts every machine's workers, as in accelerate") {
  auto request = job();
  request.num_machines = 4;
  request.machine_rank = 2;
  request.main_process_ip = "10.0.0.1";
  request.num_processes = 16;
  request.dry_run = true;
  std::ostringstream notes;
  const auto spec = resolve(request, machine(8, 0), notes);
  CHECK(spec.num_processes == 4);
  CHECK(spec.world_size() == 16);
  CHECK(env_of(spec, 3)["RANK"] == "11");
  request.num_processes = 6;
  CHECK(usage_error(request) ==
        "--num_processes 6 is the total over all machines and must divide evenly by --num_machines 4; pass a multiple of 4");
  request.num_processes = 0;
  CHECK(usage_error(request) == "--num_processes 0: expected an integer >= 1");
  request.num_machines = 8;
  request.num_processes = 4;
  CHECK(usage_error(request) ==
        "--num_processes 4 is the total over all machines: with --num_machines 8 it leaves machines without a worker; pass "
        "at least 8");
}

TEST_CASE("launch resolve: errors about values a config file gave name the file and line") {
  auto request = job();
  request.origins = {{"num_machines", "job.yaml:2: num_machines"}, {"num_processes", "job.yaml:3: num_processes"},
                     {"tee", "job.yaml:4: tee"}, {"role", "job.yaml:5: role"}, {"grace_period", "job.yaml:6: grace_period"}};
  request.num_machines = 4;
  request.machine_rank = 0;
  request.main_process_ip = "10.0.0.1";
  request.dry_run = true;
  request.num_processes = 6;
  CHECK(usage_error(request) == "job.yaml:3: num_processes 6 is the total over all machines and must divide evenly by "
                                "job.yaml:2: num_machines 4; pass a multiple of 4");
  request.num_processes = 2;
  CHECK(usage_error(request) == "job.yaml:3: num_processes 2 is the total over all machines: with job.yaml:2: "
                                "num_machines 4 it leaves machines without a worker; pass at least 4");
  request.num_processes = 4;
  request.role = "two words";
  CHECK(usage_error(request) == "job.yaml:5: role 'two words': expected a non-empty name without spaces");
  request.role.reset();
  request.grace_period = -1;
  CHECK(usage_error(request) == "job.yaml:6: grace_period -1: expected seconds >= 0");
}

TEST_CASE("launch resolve: XLA/TPU is refused in one line") {
  auto request = job();
  request.distributed_type = accel::DistributedType::kXla;
  CHECK(usage_error(request) ==
        "distributed_type XLA (TPU) is not run: accel-launch runs jobs on local machines only; launch TPU jobs with "
        "`accelerate launch`");
}

TEST_CASE("launch resolve: counts out of range name the flag") {
  auto request = job();
  request.num_processes = 0;
  CHECK(usage_error(request) == "--num_processes 0: expected an integer >= 1");
  request = job();
  request.num_cpu_threads_per_process = -2;
  CHECK(usage_error(request) == "--num_cpu_threads_per_process -2: expected an integer >= 1");
  request = job();
  request.max_restarts = -1;
  CHECK(usage_error(request) == "--max_restarts -1: expected an integer >= 0");
  request = job();
  request.grace_period = -1.5;
  CHECK(usage_error(request) == "--grace_period -1.5: expected seconds >= 0");
  request = job();
  request.num_machines = 0;
  CHECK(usage_error(request) == "--num_machines 0: expected an integer >= 1");
}

TEST_CASE("launch resolve: multi-node flags are checked together") {
  auto request = job();
  request.num_machines = 2;
  CHECK(usage_error(request) == "--num_machines 2 needs --machine_rank: give each machine its index 0..1");
  request.machine_rank = 2;
  CHECK(usage_error(request) ==
        "--machine_rank 2 must be smaller than --num_machines 2 (machines are numbered 0..1)");
  request.machine_rank = 1;
  CHECK(usage_error(request) ==
        "--num_machines 2 needs --main_process_ip: the address of machine 0, where rank 0 listens");
  request.main_process_ip = "10.0.0.1";
  request.main_process_port = 0;
  CHECK(usage_error(request) ==
        "--main_process_port 0 (a free port) only works on one machine: every machine must be given the same port");
  request.main_process_port = 70000;
  CHECK(usage_error(request) == "--main_process_port 70000: out of range; expected 1..65535 (or 0 for a free port on one machine)");
}

TEST_CASE("launch resolve: an IPv6 address loses torchrun's brackets, and what cannot be connected to is refused") {
  auto request = job();
  request.num_machines = 2;
  request.machine_rank = 1;
  request.num_processes = 2;
  std::ostringstream notes;
  // torchrun's --rdzv_endpoint [::1]:29402 reaches resolve() as [::1] and port 29402.
  for (const std::string given : {"[::1]", "::1"}) {
    request.main_process_ip = given;
    const auto spec = resolve(request, machine(2, 0), notes);
    CHECK(spec.master_addr == "::1");
    CHECK(env_of(spec, 0)["MASTER_ADDR"] == "::1");
  }
  request.main_process_ip = "[fe80::1%eth0]";
  CHECK(resolve(request, machine(2, 0), notes).master_addr == "fe80::1%eth0");
  request.main_process_ip = "node-7.cluster_a";
  CHECK(resolve(request, machine(2, 0), notes).master_addr == "node-7.cluster_a");
  const std::string expected =
      ": expected the address of machine 0 without a port: a host name, an IPv4 address such as 10.0.0.1, or an IPv6 "
      "address such as ::1 or [::1] (give the port with --main_process_port)";
  for (const std::string bad : {"[::1]:29500", "[::1", "::1]", "two words", "http://10.0.0.1", ""}) {
    request.main_process_ip = bad;
    CHECK(usage_error(request) == "--main_process_ip '" + bad + "'" + expected);
  }
  for (const std::string bad : {"10.0.0.1:29500", "localhost:29500", "::g"}) {
    request.main_process_ip = bad;
    CHECK(usage_error(request) == "--main_process_ip '" + bad + "': not an IPv6 address" + expected);
  }
}

TEST_CASE("launch resolve: ranks on the second machine follow machine_rank * num_processes + local_rank") {
  auto request = job();
  request.num_machines = 2;
  request.machine_rank = 1;
  request.num_processes = 6;
  request.main_process_ip = "10.0.0.1";
  std::ostringstream notes;
  const auto spec = resolve(request, machine(6, 0), notes);
  CHECK(spec.master_port == 29500);
  CHECK(notes.str().find("--main_process_port 29500") != std::string::npos);
  auto env = env_of(spec, 2);
  CHECK(env["RANK"] == "5");
  CHECK(env["LOCAL_RANK"] == "2");
  CHECK(env["WORLD_SIZE"] == "6");
  CHECK(env["LOCAL_WORLD_SIZE"] == "3");
  CHECK(env["GROUP_RANK"] == "1");
  CHECK(env["GROUP_WORLD_SIZE"] == "2");
  CHECK(env["MASTER_ADDR"] == "10.0.0.1");
  CHECK(env["MASTER_PORT"] == "29500");
  CHECK(env["TORCHELASTIC_RUN_ID"] == "accel-10.0.0.1-29500");
}

TEST_CASE("launch worker_environment: torchrun's contract plus ACCEL_* for every rank") {
  auto request = job();
  request.num_processes = 2;
  request.mixed_precision = "bf16";
  request.debug = true;
  request.role = "trainer";
  request.max_restarts = 3;
  std::ostringstream notes;
  const auto spec = resolve(request, machine(4, 0), notes);
  const std::map<std::string, std::string> expected = {
      {"RANK", "1"},
      {"LOCAL_RANK", "1"},
      {"WORLD_SIZE", "2"},
      {"LOCAL_WORLD_SIZE", "2"},
      {"GROUP_RANK", "0"},
      {"GROUP_WORLD_SIZE", "1"},
      {"ROLE_NAME", "trainer"},
      {"ROLE_RANK", "1"},
      {"ROLE_WORLD_SIZE", "2"},
      {"MASTER_ADDR", "127.0.0.1"},
      {"MASTER_PORT", std::to_string(spec.master_port)},
      {"TORCHELASTIC_RUN_ID", "accel-127.0.0.1-" + std::to_string(spec.master_port)},
      {"TORCHELASTIC_RESTART_COUNT", "1"},
      {"TORCHELASTIC_MAX_RESTARTS", "3"},
      {"TORCHELASTIC_ERROR_FILE", "/tmp/e.json"},
      {"ACCEL_LAUNCHER", "accel-launch"},
      {"ACCEL_USE_CPU", "true"},
      {"ACCEL_MIXED_PRECISION", "bf16"},
      {"ACCEL_DEBUG", "true"},
      {"OMP_NUM_THREADS", "2"},
      {"PYTHONUNBUFFERED", "1"},
      {"ACCELERATE_USE_CPU", "True"},
      {"ACCELERATE_DEBUG_MODE", "true"},
      {"KMP_AFFINITY", "granularity=fine,compact,1,0"},
      {"KMP_BLOCKTIME", "1"},
      {"ACCELERATE_MIXED_PRECISION", "bf16"},
      {"ACCELERATE_DYNAMO_BACKEND", "NO"},
      {"ACCELERATE_DYNAMO_MODE", "default"},
      {"ACCELERATE_DYNAMO_USE_FULLGRAPH", "False"},
      {"ACCELERATE_DYNAMO_USE_DYNAMIC", "False"},
      {"ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION", "False"},
  };
  CHECK(env_of(spec, 1) == expected);
}

TEST_CASE("launch worker_environment: PYTHONUNBUFFERED=1 unless the launcher's environment sets it") {
  auto request = job();
  std::ostringstream notes;
  request.environment = environment_with({{"PYTHONUNBUFFERED", std::nullopt}});
  CHECK(env_of(resolve(request, machine(4, 0), notes), 0)["PYTHONUNBUFFERED"] == "1");
  // The user's own choice is inherited unchanged, even an empty value (buffered output).
  for (const std::string value : {"", "0", "yes"}) {
    request.environment = environment_with({{"PYTHONUNBUFFERED", value}});
    CHECK(env_of(resolve(request, machine(4, 0), notes), 0).count("PYTHONUNBUFFERED") == 0);
  }
}

TEST_CASE("launch worker_environment: accelerate's settings reach the job in accelerate's spellings, with one note") {
  auto request = job();
  request.num_processes = 2;
  request.distributed_type = accel::DistributedType::kFsdp;
  request.job_settings = {{"fsdp_offload_params", "True"}, {"dynamo_backend", "inductor"}, {"enable_cpu_affinity", "True"}};
  std::ostringstream notes;
  auto env = env_of(resolve(request, machine(4, 2), notes), 0);
  CHECK(env["ACCELERATE_USE_FSDP"] == "true");
  CHECK(env["FSDP_OFFLOAD_PARAMS"] == "true");
  CHECK(env["FSDP_SHARDING_STRATEGY"] == "FULL_SHARD");
  CHECK(env["ACCELERATE_DYNAMO_BACKEND"] == "INDUCTOR");
  CHECK(env["ACCELERATE_CPU_AFFINITY"] == "1");
  CHECK(env["ACCELERATE_USE_CPU"] == "False");
  CHECK(env.count("KMP_AFFINITY") == 0);
  CHECK(notes.str().find("accel-launch: note: the FSDP, dynamo_backend, enable_cpu_affinity settings are passed to the job as "
                         "accelerate's variables; accel-launch itself only starts the workers\n") != std::string::npos);
  // --cpu: accelerate's simple launcher, without the FSDP variables.
  request.use_cpu = true;
  env = env_of(resolve(request, machine(4, 2), notes), 0);
  CHECK(env.count("ACCELERATE_USE_FSDP") == 0);
  CHECK(env["ACCELERATE_USE_CPU"] == "True");
  request.use_cpu.reset();
  request.job_settings = {{"dynamo_backend", "turbo"}};
  CHECK(usage_error(request) ==
        "dynamo_backend 'turbo' is not a backend accelerate knows; accepted: no, eager, aot_eager, inductor, "
        "aot_ts_nvfuser, nvprims_nvfuser, cudagraphs, ofi, fx2trt, onnxrt, tensorrt, aot_torchxla_trace_once, "
        "torchxla_trace_once, tvm, hpu_backend, neuron");
  request.job_settings = {{"fsdp_sync_module_states", "False"}};
  CHECK(usage_error(request) ==
        "fsdp_cpu_ram_efficient_loading is true but fsdp_sync_module_states is not; accelerate requires "
        "fsdp_sync_module_states: true with it");
}

TEST_CASE("launch dry_run_report: one line of variables per worker, then the command, nothing bound") {
  auto request = job({"sh", "-c", "echo it's"});
  request.num_processes = 2;
  request.dry_run = true;
  std::ostringstream notes;
  const auto spec = resolve(request, machine(4, 0), notes);
  CHECK(spec.master_port == 0);
  CHECK_FALSE(spec.port_reservation);
  const auto lines = accel::text::split(dry_run_report(spec), '\n');
  REQUIRE(lines.size() == 4);  // two workers, the command, the empty rest after the last newline
  CHECK(lines[0].rfind("RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 ", 0) == 0);
  CHECK(lines[1].rfind("RANK=1 LOCAL_RANK=1 WORLD_SIZE=2 ", 0) == 0);
  CHECK(lines[1].find(" MASTER_ADDR=127.0.0.1 MASTER_PORT=0 ") != std::string::npos);
  CHECK(lines[1].find(" KMP_AFFINITY=granularity=fine,compact,1,0 ") != std::string::npos);
  CHECK(lines[1].find("TORCHELASTIC_ERROR_FILE") == std::string::npos);
  CHECK(lines[2] == "sh -c 'echo it'\\''s'");
}

TEST_CASE("launch resolve: one worker's output is unprefixed, prefixes start at two workers") {
  std::ostringstream notes;
  auto request = job();
  CHECK(resolve(request, machine(4, 0), notes).quiet);
  request.num_processes = 2;
  CHECK_FALSE(resolve(request, machine(4, 0), notes).quiet);
}

TEST_CASE("launch resolve: a busy --main_process_port on one machine gives way to a free one with a warning") {
  const accel::test::LoopbackListener listener;
  const int port = listener.port();
  auto request = job();
  request.main_process_port = port;
  std::ostringstream notes;
  const auto spec = resolve(request, machine(4, 0), notes);
  CHECK(spec.master_port != port);
  CHECK(spec.master_port > 0);
  CHECK(notes.str().find("accel-launch: warning: ") != std::string::npos);
  CHECK(notes.str().find("; using the free port " + std::to_string(spec.master_port) + " instead (one machine)\n") !=
        std::string::npos);
  request.num_machines = 2;
  request.machine_rank = 0;
  request.main_process_ip = "127.0.0.1";
  request.num_processes = 2;
  CHECK(usage_error(request).find(std::to_string(port)) != std::string::npos);
}

namespace {

// A directory holding a fake mpirun that answers --version like `version`, and a launcher
// environment whose PATH finds it first.
struct FakeMpirun {
  explicit FakeMpirun(const std::string& version) : dir(scratch.root()) {
    ::chmod(scratch.write("mpirun", "#!/bin/sh\necho '" + version + "'\n").c_str(), 0755);
    scratch.write("hosts", "node1 slots=2\nnode2 slots=2\n");
  }
  accel::env::Lookup environment() const {
    return environment_with({{"PATH", dir + ":" + accel::env::process_environment()("PATH").value_or("")}});
  }
  const accel::test::TempDir scratch{"mpirun"};
  const std::string dir;
};

}  // namespace

TEST_CASE("launch resolve: mpirun_config runs mpirun with the hostfile, in Open MPI's or MPICH's spelling") {
  for (const auto& [version, options] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"mpirun (Open MPI) 4.1.4", {"--hostfile", "HOSTS", "--npernode", "2", "-n", "4", "--bind-to", "socket"}},
           {"HYDRA build details: Version: 4.0.2", {"-f", "HOSTS", "-ppn", "2", "-n", "4"}}}) {
    INFO(version);
    FakeMpirun mpirun(version);
    auto request = job({"sh", "-c", "true"});
    request.distributed_type = accel::DistributedType::kMultiCpu;
    request.use_cpu = true;
    request.num_machines = 2;
    request.machine_rank = 0;
    request.main_process_ip = "10.0.0.1";
    request.main_process_port = 29555;
    request.num_processes = 4;
    request.mpirun_hostfile = mpirun.dir + "/hosts";
    request.environment = mpirun.environment();
    request.dry_run = true;
    std::ostringstream notes;
    const auto spec = resolve(request, machine(8, 0), notes);
    std::vector<std::string> argv = {mpirun.dir + "/mpirun"};
    for (const auto& option : options) argv.push_back(option == "HOSTS" ? mpirun.dir + "/hosts" : option);
    argv.insert(argv.end(), {"sh", "-c", "true"});
    CHECK(spec.executable == mpirun.dir + "/mpirun");
    CHECK(spec.argv == argv);
    CHECK(spec.num_processes == 1);  // this launcher runs mpirun alone
    auto env = env_of(spec, 0);
    CHECK(env.count("RANK") == 0);  // the ranks read MPI's variables
    CHECK(env.count("WORLD_SIZE") == 0);
    CHECK(env["MASTER_ADDR"] == "10.0.0.1");
    CHECK(env["MASTER_PORT"] == "29555");
    CHECK(env["ACCELERATE_USE_CPU"] == "True");
    CHECK(env["OMP_NUM_THREADS"] == "4");
  }
}

TEST_CASE("launch resolve: mpirun_config starts the job through mpirun with the hostfile") {
  auto request = job();
  request.use_cpu = true;
  request.num_processes = 4;
  request.mpirun_hostfile = "/no/such/hostfile";
  request.dry_run = true;
  CHECK(usage_error(request) ==
        "mpirun_hostfile /no/such/hostfile: no such readable file; mpirun needs it to know the hosts (write one host per "
        "line, or remove mpirun_config / --mpirun_hostfile to let accel-launch start the workers on this machine)");
}

TEST_CASE("launch resolve: --tee or -r without --log_dir write to a new temporary directory, as torchrun") {
  accel::test::TempDir tmp;
  for (const bool tee : {true, false}) {
    auto request = job();
    request.environment = environment_with({{"TMPDIR", tmp.root()}});
    if (tee) request.tee = true;
    else request.redirects = 3;
    std::ostringstream notes;
    const auto spec = resolve(request, machine(4, 0), notes);
    CHECK(spec.log_dir.rfind(tmp.root() + "/accel-launch-logs-", 0) == 0);
    CHECK(spec.redirects == (tee ? 0 : 3));
    struct stat info {};
    CHECK((::stat(spec.log_dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode)));
  }
  auto request = job();
  request.tee = true;
  request.environment = environment_with({{"TMPDIR", "/proc/no-such-dir"}});
  CHECK(usage_error(request) == "--tee without --log_dir: cannot create a directory for the log files in /proc/no-such-dir "
                                "(No such file or directory); pass --log_dir DIR");
  request.dry_run = true;  // a dry run creates nothing
  std::ostringstream notes;
  CHECK(resolve(request, machine(4, 0), notes).log_dir.empty());
}

TEST_CASE("launch resolve: other bad values are one clear message each") {
  auto request = job();
  request.mixed_precision = "fp32";
  CHECK(usage_error(request) == "--mixed_precision fp32: expected one of no, fp16, bf16, fp8");
  request = job();
  request.role = "two words";
  CHECK(usage_error(request) == "--role 'two words': expected a non-empty name without spaces");
  request = job();
  request.num_processes = 2;
  request.local_ranks_filter = "0,2";
  CHECK(usage_error(request) ==
        "--local_ranks_filter 0,2: local rank 2 does not exist with 2 process(es) per machine");
}

TEST_CASE("launch resolve: the job must exist and be executable") {
  CHECK(usage_error(job({})) == "missing JOB: usage: accel-launch [options] JOB [JOB ARGS...]");
  CHECK(usage_error(job({"no-such-program-xyz"})) ==
        "JOB no-such-program-xyz: not found on PATH (give a path such as ./no-such-program-xyz)");
  CHECK(usage_error(job({"./no/such/file"})) == "JOB ./no/such/file: no such file");
  CHECK(usage_error(job({"/tmp"})) == "JOB /tmp: not a regular file");
  char path[] = "/tmp/accel-launch-test-XXXXXX";
  const int fd = ::mkstemp(path);
  ::close(fd);
  auto request = job({path});
  request.no_python = true;
  CHECK(usage_error(request) ==
        std::string("JOB ") + path + ": not executable (chmod +x it, or drop --no_python to run it under python3)");
  // Without --no_python a file that is not executable runs under python3, as accelerate runs every JOB.
  std::ostringstream notes;
  CHECK(resolve(job({path, "x"}), machine(2, 0), notes).argv == std::vector<std::string>{"python3", path, "x"});
  ::unlink(path);
  CHECK(usage_error(job({"/no/script.py"})) == "JOB /no/script.py: no such readable Python script");
}

TEST_CASE("launch resolve: --python, then $ACCEL_PYTHON, then python3 on PATH runs a Python job") {
  accel::test::TempDir dir;
  const std::string script = dir.write("job.py", "print(1)\n");
  const std::string chosen = dir.write("venv-python", "#!/bin/sh\n");
  ::chmod(chosen.c_str(), 0755);
  std::ostringstream notes;
  auto request = job({script, "--flag"});
  request.environment = environment_with({{"ACCEL_PYTHON", chosen}});
  auto spec = resolve(request, machine(2, 0), notes);
  CHECK(spec.executable == chosen);
  CHECK(spec.argv == std::vector<std::string>{chosen, script, "--flag"});  // a venv's python finds its prefix
  request.python = "/no/such/python";
  CHECK(usage_error(request) == "--python /no/such/python: no such executable file; name a Python interpreter such as "
                                "/usr/bin/python3 or a virtual environment's bin/python");
  request.python.reset();
  request.environment = environment_with({{"ACCEL_PYTHON", dir.path("missing")}});
  CHECK(usage_error(request) == "$ACCEL_PYTHON " + dir.path("missing") + ": no such executable file; name a Python "
                                "interpreter such as /usr/bin/python3 or a virtual environment's bin/python");
  request.environment = environment_with({{"ACCEL_PYTHON", std::nullopt}, {"PATH", dir.root()}});
  CHECK(usage_error(request) == "JOB " + script + " is a Python script but python3 is not on PATH; install it, name an "
                                "interpreter with --python PATH or $ACCEL_PYTHON, or pass --no_python");
  auto module = job({"http.server"});
  module.python_module = true;
  module.python = chosen;
  CHECK(resolve(module, machine(2, 0), notes).argv == std::vector<std::string>{chosen, "-m", "http.server"});
}

TEST_CASE("launch resolve: a script that is not executable runs under Python only if it can be Python") {
  accel::test::TempDir dir;
  std::ostringstream notes;
  const std::string shell = dir.write("job.sh", "#!/bin/bash\necho hi\n");
  CHECK(usage_error(job({shell})) == "JOB " + shell + " is not executable and is not run under Python: its #! line runs "
                                     "/bin/bash, not Python; chmod +x " + shell + " to run it");
  const std::string named = dir.write("plain.sh", "echo hi\n");
  CHECK(usage_error(job({named})) == "JOB " + named + " is not executable and is not run under Python: it is named as "
                                     "a shell script (.sh); chmod +x " + named + " to run it");
  const std::string python = dir.write("train", "#!/usr/bin/env python3\nprint(1)\n");
  CHECK(resolve(job({python}), machine(2, 0), notes).argv == std::vector<std::string>{"python3", python});
}

TEST_CASE("launch resolve: a *.py job runs under python3 unless --no_python") {
  char path[] = "/tmp/accel-launch-test-XXXXXX.py";
  const int fd = ::mkstemps(path, 3);
  ::close(fd);
  std::ostringstream notes;
  auto request = job({path, "--flag"});
  const auto spec = resolve(request, machine(2, 0), notes);
  CHECK(spec.argv == std::vector<std::string>{"python3", path, "--flag"});
  CHECK(spec.executable.size() > 8);
  CHECK(spec.executable.substr(spec.executable.size() - 8) == "/python3");
  request.no_python = true;
  CHECK(usage_error(request) == std::string("JOB ") + path + ": not executable (chmod +x it, or drop --no_python to run it under python3)");
  ::unlink(path);
}
