#include "accel/launch/options.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <initializer_list>

#include "accel/core/error.h"
#include "accel/core/precision.h"
#include "accel/core/text.h"

namespace accel::launch {
namespace {

// torchrun's rendezvous port when --rdzv_endpoint names none.
constexpr int kTorchrunRendezvousPort = 29400;

const char* const kOneMode = "only one of --cpu, --multi_gpu, --tpu, --use_deepspeed, --use_fsdp, --use_megatron_lm may be given";

// Numbers are taken as text and checked here so a bad value gets the same one-line message,
// naming the flag; ranges are resolve()'s, which names the file line when a file gave the value.
int parse_int(const std::string& flag, const std::string& value) {
  const auto parsed = text::parse_integer(value);
  if (!parsed || *parsed < -1'000'000'000 || *parsed > 1'000'000'000) {
    throw UsageError(flag + " '" + value + "': not an integer");
  }
  return static_cast<int>(*parsed);
}

double parse_seconds(const std::string& flag, const std::string& value) {
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

// A request member, filled from the flag's value by its type (a switch's member becomes true).
template <typename Field>
void assign(Field& field, const std::string& flag, const std::string& value) {
  if constexpr (std::is_same_v<Field, bool> || std::is_same_v<Field, std::optional<bool>>) field = true;
  if constexpr (std::is_same_v<Field, std::optional<int>>) field = parse_int(flag, value);
  if constexpr (std::is_same_v<Field, std::optional<double>>) field = parse_seconds(flag, value);
  if constexpr (std::is_same_v<Field, std::optional<std::string>>) field = value;
}

// A command-line-only row's member.
template <auto member>
void store(const LaunchOption&, const std::string& flag, const std::string& value, LaunchRequest& request) {
  assign(request.*member, flag, value);
}

// A keyed row's member.
void store_setting(const LaunchOption& option, const std::string& flag, const std::string& value, LaunchRequest& request) {
  std::visit(
      [&](auto member) {
        if constexpr (!std::is_same_v<decltype(member), std::monostate>) assign(request.*member, flag, value);
      },
      option.member);
}

void set_cpu(const LaunchOption&, const std::string&, const std::string&, LaunchRequest& request) {
  if (request.distributed_type) throw UsageError(kOneMode);
  request.use_cpu = true;
}

// --multi_gpu, --use_fsdp, --use_deepspeed, --use_megatron_lm, --tpu: one mode, as accelerate.
template <DistributedType mode>
void set_mode(const LaunchOption&, const std::string&, const std::string&, LaunchRequest& request) {
  if (request.use_cpu || (request.distributed_type && *request.distributed_type != mode)) throw UsageError(kOneMode);
  request.distributed_type = mode;
}

// torchrun's stream selection: 0 none, 1 stdout, 2 stderr, 3 both.
int parse_streams(const std::string& flag, const std::string& value) {
  if (value != "0" && value != "1" && value != "2" && value != "3") {
    throw UsageError(flag + " '" + value + "': expected 0 (none), 1 (stdout), 2 (stderr) or 3 (both)");
  }
  return value[0] - '0';
}

// accel-launch's log files hold both streams whichever torchrun asked for.
void set_tee(const LaunchOption&, const std::string& flag, const std::string& value, LaunchRequest& request) {
  request.tee = parse_streams(flag, value) != 0;
}

void set_redirects(const LaunchOption&, const std::string& flag, const std::string& value, LaunchRequest& request) {
  request.redirects = parse_streams(flag, value);
}

void set_rdzv_backend(const LaunchOption&, const std::string& flag, const std::string& value, LaunchRequest& request) {
  if (value != "static" && value != "c10d") {
    throw UsageError(flag + " " + value + ": accepted: static, c10d (rank 0's host runs the store at --main_process_ip)");
  }
  request.rdzv_backend = value;
}

void set_standalone(const LaunchOption&, const std::string&, const std::string&, LaunchRequest& request) {
  request.num_machines = 1;
  request.main_process_port = 0;
}

// torchrun's HOST[:PORT], PORT 29400 when left out; an IPv6 host is written in brackets.
void set_rdzv_endpoint(const LaunchOption&, const std::string& flag, const std::string& value, LaunchRequest& request) {
  const auto bracket = value.rfind(']');
  const auto colon = value.rfind(':');
  const bool has_port = colon != std::string::npos && (bracket == std::string::npos ? value.find(':') == colon : colon > bracket);
  const std::string host = has_port ? value.substr(0, colon) : value;
  if (host.empty() || (value.find(':') != colon && bracket == std::string::npos)) {
    throw UsageError(flag + " '" + value + "': expected HOST or HOST:PORT ([ADDRESS]:PORT for IPv6)");
  }
  request.main_process_ip = host;
  request.main_process_port = has_port ? parse_int(flag + " port", value.substr(colon + 1)) : kTorchrunRendezvousPort;
}

// torchrun's N or MIN:MAX; accel-launch's machines are a fixed set, so MIN must equal MAX.
void set_nnodes(const LaunchOption&, const std::string& flag, const std::string& value, LaunchRequest& request) {
  const auto colon = value.find(':');
  const int low = parse_int(flag, value.substr(0, colon));
  if (colon != std::string::npos && parse_int(flag, value.substr(colon + 1)) != low) {
    throw UsageError(flag + " " + value + ": an elastic range of machines is not supported: accel-launch's rendezvous "
                     "is static, so machines cannot join or leave a running job; pass a fixed count such as --nnodes " +
                     value.substr(colon + 1));
  }
  request.num_machines = low;
}

void set_nproc_per_node(const LaunchOption&, const std::string& flag, const std::string& value, LaunchRequest& request) {
  if (value == "cpu") set_cpu({}, flag, value, request);
  if (value != "auto" && value != "cpu" && value != "gpu" && !text::parse_integer(value)) {
    throw UsageError(flag + " '" + value + "': expected a number of workers per machine, auto, cpu or gpu");
  }
  request.nproc_per_node = value;
}

void ignore(const LaunchOption&, const std::string&, const std::string&, LaunchRequest&) {}

void refuse(const LaunchOption& option, const std::string&, const std::string&, LaunchRequest&) {
  throw UsageError(option.primary_flag() + ": " + option.help);
}

void pass_to_job(const LaunchOption& option, const std::string&, const std::string& value, LaunchRequest& request) {
  const std::string name = option.primary_flag().substr(2);
  request.job_settings[name] = option.takes_value() ? value : "True";
}

std::vector<std::string> precision_choices() { return mixed_precision_names(true); }
std::vector<std::string> backend_choices() { return {"static", "c10d", "etcd", "etcd-v2"}; }

using G = Group;
using O = Owner;
using T = ValueType;
using S = LaunchSettings;
using R = LaunchRequest;

LaunchOption keyed(const char* key, const char* flags, T type, O owner, G group, const char* value_name,
                   SettingMember member, const char* help, double min = 0, double max = 0) {
  return {key, flags, type, owner, group, value_name, help, member, nullptr, min, max};
}

LaunchOption flag_only(const char* flags, O owner, G group, const char* value_name, ApplyOption apply, const char* help) {
  return {nullptr, flags, value_name ? T::Text : T::Switch, owner, group, value_name, help, {}, apply};
}

LaunchOption with_apply(LaunchOption option, ApplyOption apply) {
  option.apply = apply;
  return option;
}

const char* const kLocalOnly = "accel-launch runs jobs on local machines only; use `accelerate launch` for TPU pods";
const char* const kNoSagemaker = "accel-launch runs jobs on local machines only; use `accelerate launch` for SageMaker";
const char* const kNoEffect = "Accepted for accelerate compatibility; no effect";
const char* const kTpuOnly = "Accepted; only accelerate's TPU launcher uses it";

// The rows with a config key come in the order a file's keys are listed in messages.
std::vector<LaunchOption> settings_rows() {
  auto choice = [](LaunchOption option, std::vector<std::string> (*choices)()) {
    option.choices = choices;
    return option;
  };
  auto all_or_ids = [](LaunchOption option) {
    option.allow_all = true;
    return option;
  };
  return {
      choice(keyed("mixed_precision", "--mixed_precision", T::Choice, O::Accelerate, G::Devices, "MODE", &S::mixed_precision,
                   "no | fp16 | bf16 | fp8 (default no)"),
             precision_choices),
      with_apply(keyed("use_cpu", "--cpu", T::Switch, O::Accelerate, G::Devices, nullptr, &S::use_cpu,
                       "Run CPU workers even when GPUs exist"),
                 set_cpu),
      keyed("debug", "--debug", T::Switch, O::Accelerate, G::Devices, nullptr, &S::debug,
            "Tell the workers to run with debug checks (ACCEL_DEBUG, ACCELERATE_DEBUG_MODE)"),
      keyed("num_processes", "--num_processes", T::Integer, O::Accelerate, G::Processes, "N", &S::num_processes,
            "Workers in total over all machines, as in accelerate (default: one per GPU, or 1 CPU worker without GPU)", 1,
            4096),
      keyed("num_machines", "--num_machines", T::Integer, O::Accelerate, G::Processes, "N", &S::num_machines,
            "Machines in the job (default 1)", 1, 65536),
      keyed("machine_rank", "--machine_rank,--node_rank", T::Integer, O::Accelerate, G::Processes, "N", &S::machine_rank,
            "This machine's index, 0..num_machines-1", 0, 65535),
      all_or_ids(keyed("gpu_ids", "--gpu_ids", T::Ids, O::Accelerate, G::Devices, "IDS", &S::gpu_ids,
                       "GPUs the workers may use: 'all' or a list such as 0,1 (one per process)")),
      keyed("main_process_ip", "--main_process_ip,--master_addr", T::Text, O::Accelerate, G::Processes, "ADDRESS",
            &S::main_process_ip, "Address of machine 0, where rank 0 listens (default 127.0.0.1 on one machine)"),
      keyed("main_process_port", "--main_process_port,--master_port", T::Integer, O::Accelerate, G::Processes, "PORT",
            &S::main_process_port,
            "Rendezvous port (default: a free port on one machine, 29500 on several; 0: a free port)", 0, 65535),
      with_apply(choice(keyed("rdzv_backend", "--rdzv_backend", T::Choice, O::Accelerate, G::Processes, "NAME",
                              &S::rdzv_backend, "Rendezvous backend: static, or c10d (the same on one machine)"),
                        backend_choices),
                 set_rdzv_backend),
      keyed("same_network", "--same_network", T::Switch, O::Accelerate, G::Compatibility, nullptr, &S::same_network,
            kNoEffect),
      keyed("main_training_function", "--main_training_function", T::Text, O::Accelerate, G::Compatibility, "NAME",
            &S::main_training_function, kTpuOnly),
      with_apply(keyed("enable_cpu_affinity", "--enable_cpu_affinity", T::Switch, O::Accelerate, G::Devices, nullptr,
                       &S::enable_cpu_affinity,
                       "Bind each GPU worker to the CPUs nearest its GPU; the job gets ACCELERATE_CPU_AFFINITY=1"),
                 pass_to_job),
      keyed("downcast_bf16", "--downcast_bf16", T::Switch, O::Accelerate, G::Compatibility, nullptr, &S::downcast_bf16,
            kTpuOnly),
      keyed("num_cpu_threads_per_process", "--num_cpu_threads_per_process", T::Integer, O::Ours, G::Devices, "N",
            &S::num_cpu_threads_per_process, "OMP_NUM_THREADS of each worker (default: CPUs / workers)", 1, 4096),
      keyed("log_dir", "--log_dir", T::Text, O::Ours, G::Supervision, "DIR", &S::log_dir,
            "Write each rank's stdout/stderr to DIR/<run id>/attempt_<n>/<local rank>/ as well as to the console"),
      with_apply(keyed("tee", "-t,--tee", T::Switch, O::Ours, G::Supervision, "0-3", &S::tee,
                       "Also write per-rank log files: 0 none, 1 stdout, 2 stderr, 3 both (under --log_dir, else a "
                       "new temporary directory, named)"),
                 set_tee),
      keyed("max_restarts", "--max_restarts", T::Integer, O::Ours, G::Supervision, "N", &S::max_restarts,
            "Restart the whole group up to N times after a failure (default 0)", 0, 1000),
      keyed("grace_period", "--grace_period", T::Seconds, O::Ours, G::Supervision, "SECONDS", &S::grace_period,
            "Seconds between SIGTERM and SIGKILL when stopping workers (default 10)", 0, 3600),
      keyed("role", "--role", T::Text, O::Ours, G::Supervision, "NAME", &S::role, "ROLE_NAME of the workers (default 'default')"),
      keyed("local_ranks_filter", "--local_ranks_filter", T::Ids, O::Ours, G::Supervision, "RANKS", &S::local_ranks_filter,
            "Only these local ranks' output reaches the console, e.g. 0,2 (log files get all)"),
  };
}

std::vector<LaunchOption> command_line_rows() {
  return {
      flag_only("--multi_gpu", O::Accelerate, G::Devices, nullptr, set_mode<DistributedType::kMultiGpu>,
                "GPU workers (the default when GPUs exist)"),
      flag_only("--use_fsdp", O::Accelerate, G::Devices, nullptr, set_mode<DistributedType::kFsdp>,
                "FSDP: the --fsdp_* settings go to the job (ACCELERATE_USE_FSDP, FSDP_*)"),
      flag_only("--use_deepspeed", O::Accelerate, G::Devices, nullptr, set_mode<DistributedType::kDeepspeed>,
                "DeepSpeed: its settings go to the job (ACCELERATE_USE_DEEPSPEED, ACCELERATE_DEEPSPEED_*)"),
      flag_only("--use_megatron_lm", O::Accelerate, G::Devices, nullptr, set_mode<DistributedType::kMegatronLm>,
                "Megatron-LM: the --megatron_lm_* settings go to the job (ACCELERATE_USE_MEGATRON_LM, MEGATRON_LM_*)"),
      flag_only("--tpu", O::Accelerate, G::Refused, nullptr, set_mode<DistributedType::kXla>, kLocalOnly),
      flag_only("--join_timeout", O::Ours, G::Supervision, "SECONDS", store<&R::join_timeout>,
                "Several machines: seconds to wait for all of them to join, also before a restart (default 600)"),
      flag_only("-q,--quiet", O::Accelerate, G::Supervision, nullptr, store<&R::quiet>,
                "No [rankN]: prefixes and no notes on guessed values or the config file in use (warnings stay)"),
      flag_only("--dry_run", O::Ours, G::Supervision, nullptr, store<&R::dry_run>,
                "Print each worker's variables and the command line, start nothing"),
      flag_only("--config_file", O::Accelerate, G::Job, "FILE", store<&R::config_file>,
                "Config file to take unset values from (default: the default config file, when it exists)"),
      flag_only("--no_python", O::Accelerate, G::Job, nullptr, store<&R::no_python>, "Run JOB directly, never under python3"),
      flag_only("-m,--module", O::Accelerate, G::Job, nullptr, store<&R::python_module>,
                "JOB is a Python module: run python3 -m JOB"),
      flag_only("--mpirun_hostfile", O::Accelerate, G::Job, "FILE", store<&R::mpirun_hostfile>,
                "Start the job through mpirun with this hostfile (CPU jobs; Open MPI, MPICH or Intel MPI)"),
      flag_only("--nproc_per_node", O::Torchrun, G::Torchrun, "N|auto|cpu|gpu", set_nproc_per_node,
                "Workers per machine (--num_processes counts all machines); auto: one per GPU, else one per CPU"),
      flag_only("--nnodes", O::Torchrun, G::Torchrun, "N", set_nnodes, "--num_machines (N or N:N; no elastic range)"),
      flag_only("--standalone", O::Torchrun, G::Torchrun, nullptr, set_standalone, "One machine, a free port"),
      flag_only("--rdzv_endpoint", O::Torchrun, G::Torchrun, "HOST[:PORT]", set_rdzv_endpoint,
                "--main_process_ip and --main_process_port (port 29400 when left out, as torchrun)"),
      flag_only("-r,--redirects", O::Torchrun, G::Torchrun, "0-3", set_redirects,
                "Send these streams to the per-rank log files only, not the console: 0 none, 1 stdout, 2 stderr, 3 both"),
      flag_only("--rdzv_id", O::Torchrun, G::Torchrun, "ID", ignore, "Accepted; the run id is derived from the address"),
      flag_only("--rdzv_conf", O::Torchrun, G::Torchrun, "K=V,...", ignore, "Accepted; no effect with static rendezvous"),
      flag_only("--monitor_interval", O::Torchrun, G::Torchrun, "SECONDS", ignore,
                "Accepted; no effect (worker exits are noticed at once, not polled)"),
      flag_only("--tpu_cluster", O::Accelerate, G::Refused, nullptr, refuse, kLocalOnly),
      flag_only("--no_tpu_cluster", O::Accelerate, G::Refused, nullptr, refuse, kLocalOnly),
      flag_only("--tpu_use_sudo", O::Accelerate, G::Refused, nullptr, refuse, kLocalOnly),
      flag_only("--vm", O::Accelerate, G::Refused, "VALUE", refuse, kLocalOnly),
      flag_only("--env", O::Accelerate, G::Refused, "VALUE", refuse, kLocalOnly),
      flag_only("--aws_access_key_id", O::Accelerate, G::Refused, "VALUE", refuse, kNoSagemaker),
      flag_only("--aws_secret_access_key", O::Accelerate, G::Refused, "VALUE", refuse, kNoSagemaker),
  };
}

// accelerate's settings that only the job reads (FSDP, DeepSpeed, Megatron-LM, dynamo, fp8,
// parallelism config): each reaches the job as accelerate's variable (accelerate_env.h).
void add_passed_to_job(std::vector<LaunchOption>& rows) {
  // Each name lives as long as the program: the table is built once.
  static std::vector<std::string> flags;
  const auto add = [&rows](const char* group, bool takes_value, std::initializer_list<const char*> names) {
    for (const char* name : names) {
      flags.push_back(std::string("--") + name);
      rows.push_back(flag_only(nullptr, O::Accelerate, G::PassedToJob, takes_value ? "VALUE" : nullptr, pass_to_job, group));
    }
  };
  add("Dynamo", true, {"dynamo_backend", "dynamo_mode"});
  add("Dynamo", false, {"dynamo_use_fullgraph", "dynamo_use_dynamic", "dynamo_use_regional_compilation"});
  add("Training Paradigm", false, {"use_parallelism_config"});
  add("FP8", false, {"fp8_use_autocast_during_eval"});
  add("DeepSpeed", true,
      {"deepspeed_config_file", "zero_stage", "offload_optimizer_device", "offload_param_device", "offload_optimizer_nvme_path",
       "offload_param_nvme_path", "gradient_accumulation_steps", "gradient_clipping", "zero3_init_flag",
       "zero3_save_16bit_model", "deepspeed_hostfile", "deepspeed_exclusion_filter", "deepspeed_inclusion_filter",
       "deepspeed_multinode_launcher", "deepspeed_moe_layer_cls_names"});
  add("FSDP", true,
      {"fsdp_version", "fsdp_offload_params", "fsdp_min_num_params", "fsdp_sharding_strategy", "fsdp_reshard_after_forward",
       "fsdp_auto_wrap_policy", "fsdp_transformer_layer_cls_to_wrap", "fsdp_backward_prefetch", "fsdp_state_dict_type",
       "fsdp_forward_prefetch", "fsdp_use_orig_params", "fsdp_cpu_ram_efficient_loading", "fsdp_sync_module_states",
       "fsdp_activation_checkpointing"});
  add("Megatron-LM", true,
      {"megatron_lm_tp_degree", "megatron_lm_use_custom_fsdp", "megatron_lm_no_load_optim", "megatron_lm_eod_mask_loss",
       "megatron_lm_overlap_cpu_optimizer_d2h_h2d", "megatron_lm_no_save_optim", "megatron_lm_optimizer_cpu_offload",
       "megatron_lm_use_precision_aware_optimizer", "megatron_lm_decoder_last_pipeline_num_layers", "megatron_lm_pp_degree",
       "megatron_lm_num_micro_batches", "megatron_lm_sequence_parallelism", "megatron_lm_recompute_activations",
       "megatron_lm_use_distributed_optimizer", "megatron_lm_gradient_clipping", "megatron_lm_recompute_granularity",
       "megatron_lm_recompute_method", "megatron_lm_recompute_num_layers", "megatron_lm_attention_backend",
       "megatron_lm_expert_model_parallel_size", "megatron_lm_context_parallel_size", "megatron_lm_attention_dropout",
       "megatron_lm_hidden_dropout", "megatron_lm_attention_softmax_in_fp32", "megatron_lm_expert_tensor_parallel_size",
       "megatron_lm_calculate_per_token_loss", "megatron_lm_use_rotary_position_embeddings"});
  add("FP8", true,
      {"fp8_backend", "fp8_margin", "fp8_interval", "fp8_format", "fp8_amax_history_len", "fp8_amax_compute_algo",
       "fp8_override_linear_precision", "fp8_opt_level", "fp8_enable_fsdp_float8_all_gather", "fp8_pad_inner_dim"});
  add("Parallelism Config", true,
      {"parallelism_config_dp_replicate_size", "parallelism_config_dp_shard_size", "parallelism_config_tp_size",
       "parallelism_config_cp_size", "parallelism_config_cp_backend", "parallelism_config_cp_comm_strategy",
       "parallelism_config_sp_size", "parallelism_config_sp_backend", "parallelism_config_sp_seq_length",
       "parallelism_config_sp_seq_length_is_variable", "parallelism_config_sp_attn_implementation"});
  const std::size_t first = rows.size() - flags.size();
  for (std::size_t i = 0; i < flags.size(); ++i) rows[first + i].flags = flags[i].c_str();
}

// "--num-processes" -> "--num_processes": accelerate accepts both spellings.
std::string underscored(std::string flag) {
  if (flag.rfind("--", 0) == 0) std::replace(flag.begin() + 2, flag.end(), '-', '_');
  return flag;
}

}  // namespace

const LaunchOption* find_launch_option_by_flag(const std::string& typed) {
  const std::string flag = underscored(typed);
  for (const LaunchOption& option : launch_options()) {
    for (const auto& spelling : text::split(option.flags, ',')) {
      if (spelling == flag) return &option;
    }
  }
  return nullptr;
}

namespace {

// Every spelling of every row, for "did you mean" hints.
std::vector<std::string> launch_flag_spellings() {
  std::vector<std::string> spellings;
  for (const LaunchOption& option : launch_options()) {
    for (const auto& spelling : text::split(option.flags, ',')) {
      spellings.push_back(spelling);
      if (spelling.find('_') != std::string::npos) {
        std::string dashed = spelling;
        std::replace(dashed.begin() + 2, dashed.end(), '_', '-');
        spellings.push_back(dashed);
      }
    }
  }
  return spellings;
}

// torchrun's --nproc_per_node N counts one machine; accelerate's --num_processes counts all.
void finish_torchrun(LaunchRequest& request) {
  if (!request.nproc_per_node) return;
  const std::string& value = *request.nproc_per_node;
  const auto per_machine = text::parse_integer(value);
  if (!per_machine) {
    if (request.num_processes) {
      throw UsageError("--nproc_per_node " + value + " contradicts --num_processes " + std::to_string(*request.num_processes) +
                       "; pass one of them");
    }
    return;  // auto, cpu, gpu: counted by resolve() from the machine
  }
  const int total = parse_int("--nproc_per_node", value) * request.num_machines.value_or(1);
  if (request.num_processes && *request.num_processes != total) {
    throw UsageError("--nproc_per_node " + value + " contradicts --num_processes " + std::to_string(*request.num_processes) +
                     " (the total over all machines); pass one of them");
  }
  request.num_processes = total;
  request.nproc_per_node.reset();
}

std::string option_line(const LaunchOption& option) {
  std::string names = text::join(text::split(option.flags, ','), ", ");
  if (option.takes_value()) names += std::string(" ") + option.value_name;
  return help_line(names, option.group == Group::Refused ? std::string("Refused: ") + option.help : option.help);
}

const char* group_title(Group group) {
  switch (group) {
    case Group::Processes: return "Processes, machines and rendezvous";
    case Group::Devices: return "Devices and what the workers are told";
    case Group::Supervision: return "Supervision and output";
    case Group::Job: return "The job and the config file";
    case Group::Torchrun: return "torchrun's spellings";
    case Group::Compatibility: return "Accepted for accelerate compatibility";
    case Group::Refused: return "accelerate's cloud launchers";
    case Group::PassedToJob: break;
  }
  return "accelerate's settings passed to the job";
}

}  // namespace

std::string help_line(const std::string& names, const std::string& help) {
  const std::size_t column = 36;
  return "  " + names + (names.size() + 2 < column ? std::string(column - names.size() - 2, ' ') : "\n" + std::string(column, ' ')) +
         help + "\n";
}

std::string LaunchOption::primary_flag() const {
  const std::string all = flags;
  const auto comma = all.find(',');
  const std::string first = all.substr(0, comma);
  // "-t,--tee": the long spelling names the option in messages.
  return first.rfind("--", 0) == 0 || comma == std::string::npos ? first : all.substr(comma + 1, all.find(',', comma + 1) - comma - 1);
}

const std::vector<LaunchOption>& launch_options() {
  static const std::vector<LaunchOption> table = [] {
    std::vector<LaunchOption> rows = settings_rows();
    for (auto& row : command_line_rows()) rows.push_back(row);
    add_passed_to_job(rows);
    return rows;
  }();
  return table;
}

const std::vector<std::string>& command_words() {
  static const std::vector<std::string> words = {"launch", "config", "env", "test"};
  return words;
}

std::string unknown_flag_message(const std::string& flag, const std::vector<std::string>& known,
                                 const std::string& help_command) {
  std::optional<std::string> hint;
  for (const auto& spelling : known) {
    if (flag.size() > 2 && spelling.size() > flag.size() && spelling.rfind(flag, 0) == 0) {
      if (hint && underscored(*hint) != underscored(spelling)) {
        hint.reset();
        break;
      }
      if (!hint) hint = spelling;
    }
  }
  if (!hint) hint = text::closest_match(flag, known);
  return "unknown flag " + flag + (hint ? "; did you mean " + *hint + "?" : "; see " + help_command);
}

LaunchArguments parse_launch_arguments(const std::vector<std::string>& args, bool top_level) {
  LaunchArguments parsed;
  LaunchRequest& request = parsed.request;
  std::optional<std::string> first_given;
  std::size_t next = 0;
  for (; next < args.size(); ++next) {
    const std::string& word = args[next];
    if (word == "--") {
      ++next;
      break;
    }
    if (word.size() < 2 || word[0] != '-') break;
    if (word == "-h" || word == "--help") {
      parsed.help = true;
      return parsed;
    }
    // "--flag=value", "-t3": a value joined to its flag.
    const bool long_flag = word[1] == '-';
    const auto equals = long_flag ? word.find('=') : (word.size() > 2 ? std::size_t{2} : std::string::npos);
    const std::string typed = word.substr(0, equals);
    const std::string flag = underscored(typed);
    const LaunchOption* option = find_launch_option_by_flag(flag);
    if (!option) throw UsageError(unknown_flag_message(typed, launch_flag_spellings(), "accel-launch --help"));
    // Messages name an option by its long spelling ("-t x" is "--tee 'x'").
    const std::string name = long_flag ? flag : option->primary_flag();
    std::string value;
    if (option->takes_value()) {
      if (equals != std::string::npos) value = word.substr(equals + (long_flag ? 1 : 0));
      else if (next + 1 < args.size()) value = args[++next];
      else throw UsageError(name + " needs a value: " + option->value_name);
    } else if (equals != std::string::npos) {
      throw UsageError(name + " takes no value; pass " + name + " alone");
    }
    if (!first_given) first_given = option->primary_flag();
    (option->apply ? option->apply : store_setting)(*option, name, value, request);
  }
  request.job.assign(args.begin() + static_cast<std::ptrdiff_t>(next), args.end());
  const auto& words = command_words();
  if (top_level && first_given && !request.job.empty() &&
      std::find(words.begin(), words.end(), request.job.front()) != words.end()) {
    const std::string& command = request.job.front();
    throw UsageError(*first_given + " is given before '" + command + "'; put options after the command: accel-launch " +
                     command + " [options] ...");
  }
  finish_torchrun(request);
  return parsed;
}

std::string launch_help(const std::string& program, const std::string& commands) {
  std::string help = "accel-launch: launch and supervise distributed LibTorch jobs\n";
  help += "Usage: " + program + " [OPTIONS] JOB [JOB ARGS...]\n";
  if (!commands.empty()) help += "   or: " + program + " COMMAND [OPTIONS] ...\n\nCommands:\n" + commands;
  help += "\n" + help_line("-h, --help", "Print this help and exit");
  if (!commands.empty()) help += help_line("--version", "Print the version and exit");
  std::vector<std::string> passed;
  for (Group group : {Group::Processes, Group::Devices, Group::Supervision, Group::Job, Group::Torchrun,
                      Group::Compatibility, Group::Refused}) {
    help += std::string("\n") + group_title(group) + ":\n";
    for (const LaunchOption& option : launch_options()) {
      if (option.group == group) help += option_line(option);
    }
  }
  for (const LaunchOption& option : launch_options()) {
    if (option.group == Group::PassedToJob && std::find(passed.begin(), passed.end(), option.help) == passed.end()) {
      passed.emplace_back(option.help);
    }
  }
  help += std::string("\n") + group_title(Group::PassedToJob) + ":\n  The options of accelerate's " +
          text::join(passed, ", ") + " groups\n  (--dynamo_*, --zero_stage, --fsdp_*, --megatron_lm_*, --fp8_*, ...) "
          "are accepted and reach the job as\n  accelerate's variables; see docs/config.md.\n";
  help += "\nJOB [JOB ARGS...]: an executable (on PATH or a path) runs directly; a *.py file or a file that is not\n"
          "executable runs under python3 unless --no_python. Every token after JOB goes to the job unchanged.\n";
  return help;
}

}  // namespace accel::launch
