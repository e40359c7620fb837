// `accel-launch [options] JOB [JOB ARGS...]` and `accel-launch launch ...`: flags -> LaunchRequest,
// then config::launch_with_config(). The only place that knows CLI11 for the launcher.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <type_traits>

#include "accel/config/apply.h"
#include "accel/core/distributed_type.h"
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/launch/accelerate_env.h"
#include "accel/launch/request.h"
#include "commands.h"

namespace accel::cli {
namespace {

using launch::LaunchRequest;

// "--num_processes" -> "--num_processes,--num-processes": accelerate accepts both spellings.
std::string both_spellings(const std::string& flag) {
  std::string dashed = flag;
  for (std::size_t i = 2; i < dashed.size(); ++i) {
    if (dashed[i] == '_') dashed[i] = '-';
  }
  return dashed == flag ? flag : flag + "," + dashed;
}

// Numbers are taken as text and checked here so a bad value gets the same one-line message,
// naming the flag, whatever CLI11 would have said.
template <typename Number>
Number parse_number(const std::string& flag, const std::string& value);

template <>
int parse_number<int>(const std::string& flag, const std::string& value) {
  const auto parsed = text::parse_integer(value);
  if (!parsed || *parsed < -1'000'000'000 || *parsed > 1'000'000'000) {
    throw UsageError(flag + " '" + value + "': not an integer");
  }
  return static_cast<int>(*parsed);
}

template <>
double parse_number<double>(const std::string& flag, const std::string& value) {
  std::size_t used = 0;
  double parsed = 0;
  try {
    parsed = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size()) throw UsageError(flag + " '" + value + "': not a number of seconds");
  return parsed;
}

template <typename Number>
void add_number(CLI::App& app, const std::shared_ptr<LaunchRequest>& request, const std::string& flag,
                std::optional<Number> LaunchRequest::*field, const std::string& help) {
  app.add_option_function<std::string>(
         both_spellings(flag),
         [request, flag, field](const std::string& value) { (*request).*field = parse_number<Number>(flag, value); },
         help)
      ->type_name(std::is_integral_v<Number> ? "N" : "SECONDS");
}

void add_text(CLI::App& app, const std::shared_ptr<LaunchRequest>& request, const std::string& flag,
              std::optional<std::string> LaunchRequest::*field, const std::string& help,
              const std::string& type = "TEXT") {
  app.add_option_function<std::string>(
         both_spellings(flag), [request, field](const std::string& value) { (*request).*field = value; }, help)
      ->type_name(type);
}

void add_switch(CLI::App& app, const std::shared_ptr<LaunchRequest>& request, const std::string& flags,
                std::optional<bool> LaunchRequest::*field, const std::string& help) {
  app.add_flag_callback(flags, [request, field] { (*request).*field = true; }, help);
}

std::vector<std::string> flag_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    for (const auto& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

// CLI11's prefix mode hands every token it does not know to the job, so a mistyped flag in
// front of JOB would become the job's name; it is caught here instead.
void reject_unknown_flag(const CLI::App& app, const std::vector<std::string>& job) {
  if (job.empty() || job.front().size() < 2 || job.front()[0] != '-') return;
  const std::string flag = job.front().substr(0, job.front().find('='));
  std::string message = "unknown flag " + flag;
  if (const auto close = text::closest_match(flag, flag_names(app))) message += "; did you mean " + *close + "?";
  else message += "; see accel-launch --help";
  throw UsageError(message);
}

// torchrun's spellings, kept apart until parsing ends because --nproc_per_node counts the
// workers of one machine and accelerate's --num_processes counts all of them.
struct TorchrunFlags {
  std::optional<int> nproc_per_node;
  std::optional<int> nnodes;
};

void apply_torchrun_flags(const TorchrunFlags& torchrun, LaunchRequest& request) {
  if (torchrun.nnodes) {
    if (request.num_machines && *request.num_machines != *torchrun.nnodes) {
      throw UsageError("--nnodes " + std::to_string(*torchrun.nnodes) + " contradicts --num_machines " +
                       std::to_string(*request.num_machines) + "; pass one of them");
    }
    request.num_machines = torchrun.nnodes;
  }
  if (torchrun.nproc_per_node) {
    const int total = *torchrun.nproc_per_node * request.num_machines.value_or(1);
    if (request.num_processes && *request.num_processes != total) {
      throw UsageError("--nproc_per_node " + std::to_string(*torchrun.nproc_per_node) + " contradicts --num_processes " +
                       std::to_string(*request.num_processes) + " (the total over all machines); pass one of them");
    }
    request.num_processes = total;
  }
}

void run_launch(const CLI::App& app, LaunchRequest request, const TorchrunFlags& torchrun) {
  request.job = app.remaining();
  // "--" ends the launcher's options, as usual; it is not part of the job.
  if (!request.job.empty() && request.job.front() == "--") request.job.erase(request.job.begin());
  else reject_unknown_flag(app, request.job);
  apply_torchrun_flags(torchrun, request);
  // --quiet drops the notes on guessed values and the file in use, never a warning.
  const int exit_code = config::launch_with_config(request, std::cout, std::cerr).exit_code;
  if (exit_code != 0) throw CLI::RuntimeError(exit_code);
}

// --multi_gpu, --use_fsdp, --use_deepspeed, --use_megatron_lm, --tpu: one mode, as accelerate.
void add_mode(CLI::App& app, const std::shared_ptr<LaunchRequest>& request, const std::string& flags,
              DistributedType mode, const std::string& help) {
  app.add_flag_callback(
      flags,
      [request, mode, flags] {
        if (request->use_cpu || (request->distributed_type && *request->distributed_type != mode)) {
          throw UsageError("only one of --cpu, --multi_gpu, --tpu, --use_deepspeed, --use_fsdp, --use_megatron_lm may be given");
        }
        request->distributed_type = mode;
      },
      help);
}

// Flags of accelerate that configure its cloud launchers; accel-launch refuses them with the reason.
void add_refused(CLI::App& app, const std::string& flags, bool takes_value, const std::string& reason) {
  const std::string name = flags.substr(0, flags.find(','));
  if (takes_value) {
    app.add_option_function<std::string>(
           flags, [name, reason](const std::string&) { throw UsageError(name + ": " + reason); }, "Refused: " + reason)
        ->type_name("VALUE");
  } else {
    app.add_flag_callback(flags, [name, reason] { throw UsageError(name + ": " + reason); }, "Refused: " + reason);
  }
}

void setup_launch(CLI::App& app, const std::shared_ptr<LaunchRequest>& request,
                  const std::shared_ptr<TorchrunFlags>& torchrun) {
  app.prefix_command();
  app.footer(
      "JOB [JOB ARGS...]: an executable (on PATH or a path) runs directly; a *.py file or a file that is not\n"
      "executable (and not a shell script) runs under Python (--python) unless --no_python. Every token after\n"
      "JOB goes to the job unchanged.\n"
      "accelerate's FSDP, DeepSpeed, Megatron-LM, dynamo and fp8 flags are passed to the job as accelerate's\n"
      "variables (see docs/config.md).");
  add_number<int>(app, request, "--num_processes", &LaunchRequest::num_processes,
                  "Workers in total over all machines, as in accelerate (default: one per GPU, or 1 CPU worker without GPU)");
  add_number<int>(app, request, "--num_machines", &LaunchRequest::num_machines, "Machines in the job (default 1)");
  add_number<int>(app, request, "--machine_rank", &LaunchRequest::machine_rank,
                  "This machine's index, 0..num_machines-1");
  add_text(app, request, "--main_process_ip", &LaunchRequest::main_process_ip,
           "Address of machine 0, where rank 0 listens (default 127.0.0.1 on one machine)", "ADDRESS");
  add_number<int>(app, request, "--main_process_port", &LaunchRequest::main_process_port,
                  "Rendezvous port (default: a free port on one machine, 29500 on several; 0: a free port)");
  app.add_flag_callback(
      "--cpu",
      [request] {
        if (request->distributed_type) {
          throw UsageError("only one of --cpu, --multi_gpu, --tpu, --use_deepspeed, --use_fsdp, --use_megatron_lm may be given");
        }
        request->use_cpu = true;
      },
      "Run CPU workers even when GPUs exist");
  add_mode(app, request, "--multi_gpu,--multi-gpu", DistributedType::kMultiGpu,
           "GPU workers (the default when GPUs exist)");
  add_mode(app, request, "--use_fsdp,--use-fsdp", DistributedType::kFsdp,
           "FSDP: the --fsdp_* settings go to the job (ACCELERATE_USE_FSDP, FSDP_*)");
  add_mode(app, request, "--use_deepspeed,--use-deepspeed", DistributedType::kDeepspeed,
           "DeepSpeed: its settings go to the job (ACCELERATE_USE_DEEPSPEED, ACCELERATE_DEEPSPEED_*)");
  add_mode(app, request, "--use_megatron_lm,--use-megatron-lm", DistributedType::kMegatronLm,
           "Megatron-LM: the --megatron_lm_* settings go to the job (ACCELERATE_USE_MEGATRON_LM, MEGATRON_LM_*)");
  add_mode(app, request, "--tpu", DistributedType::kXla, "Refused: accel-launch runs jobs on local machines only");
  add_text(app, request, "--gpu_ids", &LaunchRequest::gpu_ids,
           "GPUs the workers may use: 'all' or a list such as 0,1 (one per process)", "IDS");
  add_number<int>(app, request, "--num_cpu_threads_per_process", &LaunchRequest::num_cpu_threads_per_process,
                  "OMP_NUM_THREADS of each worker (default: CPUs / workers)");
  add_text(app, request, "--mixed_precision", &LaunchRequest::mixed_precision, "no | fp16 | bf16 | fp8 (default no)", "MODE");
  add_switch(app, request, "--debug", &LaunchRequest::debug,
             "Tell the workers to run with debug checks (ACCEL_DEBUG, ACCELERATE_DEBUG_MODE)");
  add_number<int>(app, request, "--max_restarts", &LaunchRequest::max_restarts,
                  "Restart the whole group up to N times after a failure (default 0)");
  add_number<double>(app, request, "--grace_period", &LaunchRequest::grace_period_s,
                     "Seconds between SIGTERM and SIGKILL when stopping workers (default 10)");
  app.add_option_function<std::string>(
         "-t,--tee",
         [request](const std::string& value) {
           // torchrun's values: 0 none, 1 stdout, 2 stderr, 3 both (accel-launch's files hold both).
           if (value != "0" && value != "1" && value != "2" && value != "3") {
             throw UsageError("--tee '" + value + "': expected 0 (none), 1 (stdout), 2 (stderr) or 3 (both)");
           }
           request->tee = value != "0";
         },
         "Also write per-rank log files under --log_dir: 0 none, 1 stdout, 2 stderr, 3 both")
      ->type_name("0-3");
  add_number<double>(app, request, "--join_timeout", &LaunchRequest::join_timeout_s,
                     "Several machines: seconds to wait for all of them to join, also before a restart (default 600)");
  add_text(app, request, "--log_dir", &LaunchRequest::log_dir,
           "Write each rank's stdout/stderr to DIR/<run id>/attempt_<n>/<local rank>/ as well as to the console", "DIR");
  add_switch(app, request, "-q,--quiet", &LaunchRequest::quiet,
             "No [rankN]: prefixes and no notes on guessed values or the config file in use (warnings stay)");
  add_text(app, request, "--role", &LaunchRequest::role, "ROLE_NAME of the workers (default 'default')", "NAME");
  add_text(app, request, "--local_ranks_filter", &LaunchRequest::local_ranks_filter,
           "Only these local ranks' output reaches the console, e.g. 0,2 (log files get all)", "RANKS");
  add_switch(app, request, "--no_python,--no-python", &LaunchRequest::no_python, "Run JOB directly, never under python3");
  add_switch(app, request, "-m,--module", &LaunchRequest::python_module, "JOB is a Python module: run python3 -m JOB");
  add_text(app, request, "--python", &LaunchRequest::python,
           "Python interpreter for a Python JOB (default: $ACCEL_PYTHON, else the first python3 on PATH)", "PATH");
  app.add_flag_callback(
      "--dry_run,--dry-run", [request] { request->dry_run = true; },
      "Print each worker's variables and the command line, start nothing");
  // accelerate/torchrun flags that change nothing here are accepted, so their users' commands run.
  // A std::string: under C++20 a string literal also matches CLI11's add_flag(name, T& variable).
  const std::string no_effect = "Accepted for accelerate compatibility; no effect";
  app.add_flag("--same_network,--same-network", no_effect);
  app.add_option("--monitor_interval,--monitor-interval",
                 "Accepted for torchrun compatibility; no effect (worker exits are noticed at once, not polled)")
      ->type_name("SECONDS");
  app.add_option("--rdzv_conf,--rdzv-conf", "Accepted for torchrun compatibility; no effect with static rendezvous")
      ->type_name("K=V,...");
  app.add_option("--rdzv_id,--rdzv-id", "Accepted for torchrun compatibility; the run id is derived from the address")
      ->type_name("ID");
  app.add_option("--main_training_function,--main-training-function", "Accepted; only accelerate's TPU launcher uses it")
      ->type_name("NAME");
  const std::string tpu_only = "Accepted; only accelerate's TPU launcher uses it";
  app.add_flag("--downcast_bf16,--downcast-bf16", tpu_only);
  app.add_option_function<std::string>(
         "--rdzv_backend,--rdzv-backend",
         [](const std::string& value) {
           if (value != "static" && value != "c10d") {
             throw UsageError("--rdzv_backend " + value +
                              ": accepted: static, c10d (rank 0's host runs the store at --main_process_ip)");
           }
         },
         "Rendezvous backend: static, or c10d (the same on one machine)")
      ->type_name("NAME");
  add_text(app, request, "--mpirun_hostfile", &LaunchRequest::mpirun_hostfile,
           "Start the job through mpirun with this hostfile (CPU jobs; Open MPI, MPICH or Intel MPI)", "FILE");
  add_text(app, request, "--config_file", &LaunchRequest::config_file,
           "Config file to take unset values from (default: the default config file, when it exists)", "FILE");

  // accelerate's settings that only the job reads: FSDP, DeepSpeed, Megatron-LM, dynamo, fp8.
  for (const auto& option : launch::accelerate::job_options()) {
    const std::string name = option.name;
    const std::string help = "accelerate " + std::string(option.group) + " setting, passed to the job";
    if (option.takes_value) {
      app.add_option_function<std::string>(
             both_spellings("--" + name), [request, name](const std::string& value) { request->job_settings[name] = value; },
             help)
          ->type_name("VALUE");
    } else {
      app.add_flag_callback(both_spellings("--" + name), [request, name] { request->job_settings[name] = "True"; }, help);
    }
  }

  // torchrun's spellings.
  app.add_option_function<std::string>(
         "--nproc_per_node,--nproc-per-node",
         [torchrun](const std::string& value) { torchrun->nproc_per_node = parse_number<int>("--nproc_per_node", value); },
         "torchrun's spelling: workers per machine (--num_processes counts all machines)")
      ->type_name("N");
  app.add_option_function<std::string>(
         "--nnodes", [torchrun](const std::string& value) { torchrun->nnodes = parse_number<int>("--nnodes", value); },
         "torchrun's spelling of --num_machines")
      ->type_name("N");
  add_number<int>(app, request, "--node_rank", &LaunchRequest::machine_rank, "torchrun's spelling of --machine_rank");
  add_text(app, request, "--master_addr", &LaunchRequest::main_process_ip, "torchrun's spelling of --main_process_ip",
           "ADDRESS");
  add_number<int>(app, request, "--master_port", &LaunchRequest::main_process_port,
                  "torchrun's spelling of --main_process_port");
  app.add_flag_callback(
      "--standalone",
      [request] {
        request->num_machines = 1;
        request->main_process_port = 0;
      },
      "torchrun's single-machine mode: one machine, a free port");
  app.add_option_function<std::string>(
         "--rdzv_endpoint,--rdzv-endpoint",
         [request](const std::string& value) {
           const auto colon = value.rfind(':');
           if (colon == std::string::npos || colon == 0) {
             throw UsageError("--rdzv_endpoint '" + value + "': expected HOST:PORT");
           }
           request->main_process_ip = value.substr(0, colon);
           request->main_process_port = parse_number<int>("--rdzv_endpoint port", value.substr(colon + 1));
         },
         "torchrun's HOST:PORT of the rendezvous: --main_process_ip and --main_process_port")
      ->type_name("HOST:PORT");

  // accelerate's cloud launchers.
  const std::string local_only = "accel-launch runs jobs on local machines only; use `accelerate launch` for TPU pods";
  add_refused(app, "--tpu_cluster,--tpu-cluster", false, local_only);
  add_refused(app, "--no_tpu_cluster,--no-tpu-cluster", false, local_only);
  add_refused(app, "--tpu_use_sudo,--tpu-use-sudo", false, local_only);
  add_refused(app, "--vm", true, local_only);
  add_refused(app, "--env", true, local_only);
  const std::string no_sagemaker = "accel-launch runs jobs on local machines only; use `accelerate launch` for SageMaker";
  add_refused(app, "--aws_access_key_id,--aws-access-key-id", true, no_sagemaker);
  add_refused(app, "--aws_secret_access_key,--aws-secret-access-key", true, no_sagemaker);
}

}  // namespace

void add_launch_commands(CLI::App& app) {
  // One request per command; flag callbacks fill it while parsing, run_launch reads it after.
  auto launch_request = std::make_shared<LaunchRequest>();
  auto launch_torchrun = std::make_shared<TorchrunFlags>();
  CLI::App* launch_app = app.add_subcommand("launch", "Launch JOB on several processes (same as without 'launch')");
  setup_launch(*launch_app, launch_request, launch_torchrun);
  launch_app->callback(
      [launch_app, launch_request, launch_torchrun] { run_launch(*launch_app, *launch_request, *launch_torchrun); });

  // Launch options before a command word ('launch', 'config', 'env', 'test') belong to the top
  // level, which then does nothing with them: refuse rather than lose them.
  for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
    command->parse_complete_callback([&app, command] {
      for (const CLI::Option* option : app.get_options()) {
        if (option->count() > 0) {
          throw UsageError(option->get_name() + " is given before '" + command->get_name() +
                           "'; put options after the command: accel-launch " + command->get_name() + " [options] ...");
        }
      }
    });
  }

  auto direct_request = std::make_shared<LaunchRequest>();
  auto direct_torchrun = std::make_shared<TorchrunFlags>();
  setup_launch(app, direct_request, direct_torchrun);
  app.callback([&app, direct_request, direct_torchrun] {
    if (app.get_subcommands().empty()) run_launch(app, *direct_request, *direct_torchrun);
  });
}

}  // namespace accel::cli
