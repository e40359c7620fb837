// `accel-launch [options] JOB [JOB ARGS...]` and `accel-launch launch ...`: flags -> LaunchRequest
// -> config file -> resolve -> run. The only place that knows CLI11 for the launcher.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <type_traits>

#include "accel/config/apply.h"
#include "accel/core/error.h"
#include "accel/core/hardware.h"
#include "accel/core/text.h"
#include "accel/launch/request.h"
#include "accel/launch/resolve.h"
#include "accel/launch/supervisor.h"
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

void run_launch(const CLI::App& app, LaunchRequest request) {
  request.job = app.remaining();
  // "--" ends the launcher's options, as usual; it is not part of the job.
  if (!request.job.empty() && request.job.front() == "--") request.job.erase(request.job.begin());
  else reject_unknown_flag(app, request.job);
  config::apply_config_file(request, std::cerr);
  std::ostream silent(nullptr);
  const auto spec = launch::resolve(request, hardware::probe(), request.quiet.value_or(false) ? silent : std::cerr);
  if (const int code = launch::run(spec); code != 0) throw CLI::RuntimeError(code);
}

void setup_launch(CLI::App& app, const std::shared_ptr<LaunchRequest>& request) {
  app.prefix_command();
  app.footer(
      "JOB [JOB ARGS...]: an executable (on PATH or a path; *.py runs under python3 unless --no_python).\n"
      "Every token after JOB goes to the job unchanged.");
  add_number<int>(app, request, "--num_processes", &LaunchRequest::num_processes,
                  "Workers on this machine (default: one per GPU, or 1 CPU worker without GPU)");
  add_number<int>(app, request, "--num_machines", &LaunchRequest::num_machines, "Machines in the job (default 1)");
  add_number<int>(app, request, "--machine_rank", &LaunchRequest::machine_rank,
                  "This machine's index, 0..num_machines-1");
  add_text(app, request, "--main_process_ip", &LaunchRequest::main_process_ip,
           "Address of machine 0, where rank 0 listens (default 127.0.0.1 on one machine)", "ADDRESS");
  add_number<int>(app, request, "--main_process_port", &LaunchRequest::main_process_port,
                  "Rendezvous port (default: a free port on one machine, 29500 on several; 0: a free port)");
  add_switch(app, request, "--cpu", &LaunchRequest::use_cpu, "Run CPU workers even when GPUs exist");
  add_text(app, request, "--gpu_ids", &LaunchRequest::gpu_ids,
           "GPUs the workers may use: 'all' or a list such as 0,1 (one per process)", "IDS");
  add_number<int>(app, request, "--num_cpu_threads_per_process", &LaunchRequest::num_cpu_threads_per_process,
                  "OMP_NUM_THREADS of each worker (default: CPUs / workers)");
  add_text(app, request, "--mixed_precision", &LaunchRequest::mixed_precision, "no | fp16 | bf16 (default no)", "MODE");
  add_switch(app, request, "--debug", &LaunchRequest::debug, "Tell the workers to run with debug checks (ACCEL_DEBUG)");
  add_number<int>(app, request, "--max_restarts", &LaunchRequest::max_restarts,
                  "Restart the whole group up to N times after a failure (default 0)");
  add_number<double>(app, request, "--grace_period", &LaunchRequest::grace_period_s,
                     "Seconds between SIGTERM and SIGKILL when stopping workers (default 10)");
  add_switch(app, request, "--tee", &LaunchRequest::tee, "Also write per-rank log files (needs --log_dir)");
  add_text(app, request, "--log_dir", &LaunchRequest::log_dir,
           "Write each rank's stdout/stderr to DIR/<run id>/attempt_<n>/<local rank>/ as well as to the console", "DIR");
  add_switch(app, request, "-q,--quiet", &LaunchRequest::quiet, "No [rankN]: prefixes and no note on guessed values");
  add_text(app, request, "--role", &LaunchRequest::role, "ROLE_NAME of the workers (default 'default')", "NAME");
  add_text(app, request, "--local_ranks_filter", &LaunchRequest::local_ranks_filter,
           "Only these local ranks' output reaches the console, e.g. 0,2 (log files get all)", "RANKS");
  add_switch(app, request, "--no_python,--no-python", &LaunchRequest::no_python, "Run a *.py JOB directly, not under python3");
  add_switch(app, request, "-m,--module", &LaunchRequest::python_module, "JOB is a Python module: run python3 -m JOB");
  app.add_flag_callback(
      "--multi_gpu,--multi-gpu", [request] { request->use_cpu = false; },
      "GPU workers (accelerate's spelling; the default when GPUs exist)");
  // accelerate/torchrun flags that change nothing here are accepted, so their users' commands run.
  app.add_flag("--same_network,--same-network", "Accepted for accelerate compatibility; no effect");
  app.add_option("--monitor_interval,--monitor-interval",
                 "Accepted for torchrun compatibility; no effect (worker exits are noticed at once, not polled)")
      ->type_name("SECONDS");
  app.add_option_function<std::string>(
         "--rdzv_backend,--rdzv-backend",
         [](const std::string& value) {
           if (value != "static") {
             throw UsageError("--rdzv_backend " + value +
                              ": only 'static' is supported (rank 0's host runs the store at --main_process_ip)");
           }
         },
         "Rendezvous backend: static (the only one)")
      ->type_name("NAME");
  add_text(app, request, "--config_file", &LaunchRequest::config_file,
           "Config file to take unset values from (default: the default config file, when it exists)", "FILE");
}

}  // namespace

void add_launch_commands(CLI::App& app) {
  // One request per command; flag callbacks fill it while parsing, run_launch reads it after.
  auto launch_request = std::make_shared<LaunchRequest>();
  CLI::App* launch_app = app.add_subcommand("launch", "Launch JOB on several processes (same as without 'launch')");
  setup_launch(*launch_app, launch_request);
  launch_app->callback([launch_app, launch_request] { run_launch(*launch_app, *launch_request); });

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
  setup_launch(app, direct_request);
  app.callback([&app, direct_request] {
    if (app.get_subcommands().empty()) run_launch(app, *direct_request);
  });
}

}  // namespace accel::cli
