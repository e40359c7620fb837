#include "accel/launch/accelerate_env.h"

#include <algorithm>
#include <cctype>

#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "accel/core/precision.h"
#include "accel/core/text.h"

namespace accel::launch::accelerate {
namespace {

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}
std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// How accelerate's launcher turns one setting into one variable: str(args.x), lowered or not,
// with the flag's default; or, without a default, only when the setting was given.
struct Rule {
  const char* variable;
  const char* setting;
  const char* fallback;  // nullptr: set only when given
  bool lowered;
};

// Reads settings with accelerate's defaults (the `default=` of each `accelerate launch` flag)
// and writes variables in the order accelerate sets them.
class Writer {
 public:
  explicit Writer(const JobSettings& settings) : settings_(settings) {}

  const std::string* find(const std::string& name) const {
    const auto it = settings_.find(name);
    return it == settings_.end() ? nullptr : &it->second;
  }
  std::string get(const std::string& name, const std::string& fallback) const {
    const std::string* value = find(name);
    return value ? *value : fallback;
  }
  void set(const std::string& key, const std::string& value) { vars_.emplace_back(key, value); }
  // str(args.x) with a default.
  void value(const std::string& key, const std::string& name, const std::string& fallback) { set(key, get(name, fallback)); }
  // str(args.x).lower() with a default.
  void lowered(const std::string& key, const std::string& name, const std::string& fallback) {
    set(key, lower(get(name, fallback)));
  }
  // Set only when the setting was given (accelerate's `if args.x is not None`).
  void optional(const std::string& key, const std::string& name, bool lowercase = false) {
    if (const std::string* v = find(name)) set(key, lowercase ? lower(*v) : *v);
  }
  // One variable per rule, in the rules' order.
  template <std::size_t N>
  void apply(const Rule (&rules)[N]) {
    for (const Rule& rule : rules) {
      if (!rule.fallback) optional(rule.variable, rule.setting, rule.lowered);
      else if (rule.lowered) lowered(rule.variable, rule.setting, rule.fallback);
      else value(rule.variable, rule.setting, rule.fallback);
    }
  }

  Variables take() { return std::move(vars_); }

 private:
  const JobSettings& settings_;
  Variables vars_;
};

void add_dynamo(Writer& w) {
  const std::string backend = upper(w.get("dynamo_backend", "no"));
  static const std::vector<std::string> backends = {
      "NO",          "EAGER", "AOT_EAGER", "INDUCTOR", "AOT_TS_NVFUSER", "NVPRIMS_NVFUSER", "CUDAGRAPHS", "OFI",
      "FX2TRT",      "ONNXRT", "TENSORRT", "AOT_TORCHXLA_TRACE_ONCE", "TORCHXLA_TRACE_ONCE", "TVM", "HPU_BACKEND",
      "NEURON"};
  if (std::find(backends.begin(), backends.end(), backend) == backends.end()) {
    throw UsageError("dynamo_backend '" + w.get("dynamo_backend", "") + "' is not a backend accelerate knows; accepted: " +
                     lower(text::join(backends, ", ")));
  }
  w.set("ACCELERATE_DYNAMO_BACKEND", backend);
  w.value("ACCELERATE_DYNAMO_MODE", "dynamo_mode", "default");
  w.set("ACCELERATE_DYNAMO_USE_FULLGRAPH", python_bool(w.get("dynamo_use_fullgraph", "False")));
  w.set("ACCELERATE_DYNAMO_USE_DYNAMIC", python_bool(w.get("dynamo_use_dynamic", "False")));
  w.set("ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION", python_bool(w.get("dynamo_use_regional_compilation", "False")));
}

// accelerate's setup_fp8_env: every fp8_* argument that is not None, as ACCELERATE_FP8_*.
void add_fp8(Writer& w, const JobSettings& settings) {
  JobSettings fp8 = {
      {"fp8_use_autocast_during_eval", "False"}, {"fp8_margin", "0"},
      {"fp8_interval", "1"},                     {"fp8_format", "HYBRID"},
      {"fp8_amax_history_len", "1024"},          {"fp8_amax_compute_algo", "most_recent"},
      {"fp8_opt_level", "O2"},                   {"fp8_enable_fsdp_float8_all_gather", "1"},
      {"fp8_pad_inner_dim", "1"},                {"fp8_override_linear_precision", "(False, False, False)"},
  };
  for (const auto& [name, value] : settings) {
    if (name.rfind("fp8_", 0) == 0) fp8[name] = value;
  }
  for (const auto& [name, value] : fp8) {
    if (name != "fp8_override_linear_precision") {
      w.set("ACCELERATE_" + upper(name), value);
      continue;
    }
    // "(false, true, false)" -> FPROP, DGRAD, WGRAD.
    std::string inner = value;
    inner.erase(std::remove_if(inner.begin(), inner.end(), [](char c) { return c == '(' || c == ')' || c == '[' || c == ']'; }),
                inner.end());
    const auto parts = text::split(inner, ',');
    if (parts.size() != 3) {
      throw UsageError("fp8_override_linear_precision '" + value + "': expected three booleans such as (false, false, false)");
    }
    const char* names[] = {"ACCELERATE_FP8_OVERRIDE_FPROP", "ACCELERATE_FP8_OVERRIDE_DGRAD", "ACCELERATE_FP8_OVERRIDE_WGRAD"};
    for (int i = 0; i < 3; ++i) w.set(names[i], python_bool(text::trim(parts[i])));
  }
}

void add_fsdp(Writer& w) {
  w.set("ACCELERATE_USE_FSDP", "true");
  if (lower(w.get("fsdp_cpu_ram_efficient_loading", "true")) == "true" &&
      lower(w.get("fsdp_sync_module_states", "true")) != "true") {
    throw UsageError("fsdp_cpu_ram_efficient_loading is true but fsdp_sync_module_states is not; "
                     "accelerate requires fsdp_sync_module_states: true with it");
  }
  static const Rule rules[] = {
      {"FSDP_VERSION", "fsdp_version", "1", false},
      {"FSDP_SHARDING_STRATEGY", "fsdp_sharding_strategy", "FULL_SHARD", false},
      {"FSDP_RESHARD_AFTER_FORWARD", "fsdp_reshard_after_forward", "true", true},
      {"FSDP_OFFLOAD_PARAMS", "fsdp_offload_params", "false", true},
      {"FSDP_MIN_NUM_PARAMS", "fsdp_min_num_params", "100000000", false},
      {"FSDP_AUTO_WRAP_POLICY", "fsdp_auto_wrap_policy", nullptr, false},
      {"FSDP_TRANSFORMER_CLS_TO_WRAP", "fsdp_transformer_layer_cls_to_wrap", nullptr, false},
      {"FSDP_BACKWARD_PREFETCH", "fsdp_backward_prefetch", nullptr, false},
      {"FSDP_STATE_DICT_TYPE", "fsdp_state_dict_type", nullptr, false},
      {"FSDP_FORWARD_PREFETCH", "fsdp_forward_prefetch", "false", true},
      {"FSDP_USE_ORIG_PARAMS", "fsdp_use_orig_params", "true", true},
      {"FSDP_CPU_RAM_EFFICIENT_LOADING", "fsdp_cpu_ram_efficient_loading", "true", true},
      {"FSDP_SYNC_MODULE_STATES", "fsdp_sync_module_states", "true", true},
      {"FSDP_ACTIVATION_CHECKPOINTING", "fsdp_activation_checkpointing", "false", true},
      {"FSDP_IGNORED_MODULES", "fsdp_ignored_modules", nullptr, false},
  };
  w.apply(rules);
}

void add_megatron(Writer& w, const JobSettings& settings) {
  w.set("ACCELERATE_USE_MEGATRON_LM", "true");
  // The settings accelerate always sets (their flags default to a value, not None).
  const std::vector<std::pair<std::string, std::string>> always = {
      {"tp_degree", "1"},
      {"use_custom_fsdp", "False"},
      {"no_load_optim", "False"},
      {"eod_mask_loss", "False"},
      {"no_save_optim", "False"},
      {"optimizer_cpu_offload", "False"},
      {"use_precision_aware_optimizer", "False"},
      {"overlap_cpu_optimizer_d2h_h2d", "False"},
      {"pp_degree", "1"},
      {"gradient_clipping", "1.0"},
  };
  for (const auto& [suffix, fallback] : always) w.value("MEGATRON_LM_" + upper(suffix), "megatron_lm_" + suffix, fallback);
  for (const auto& [name, value] : settings) {
    if (name.rfind("megatron_lm_", 0) != 0) continue;
    const std::string suffix = name.substr(std::string("megatron_lm_").size());
    const bool done = std::any_of(always.begin(), always.end(), [&](const auto& entry) { return entry.first == suffix; });
    if (!done) w.set("MEGATRON_LM_" + upper(suffix), value);
  }
}

void add_deepspeed(Writer& w) {
  w.set("ACCELERATE_CONFIG_DS_FIELDS", lower(w.get("deepspeed_fields_from_accelerate_config", "")));
  w.set("ACCELERATE_USE_DEEPSPEED", "true");
  static const Rule rules[] = {
      {"ACCELERATE_DEEPSPEED_ZERO_STAGE", "zero_stage", nullptr, false},
      {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "gradient_accumulation_steps", nullptr, false},
      {"ACCELERATE_GRADIENT_CLIPPING", "gradient_clipping", nullptr, true},
      {"ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "offload_optimizer_device", nullptr, true},
      {"ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "offload_param_device", nullptr, true},
      {"ACCELERATE_DEEPSPEED_ZERO3_INIT", "zero3_init_flag", nullptr, true},
      {"ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL", "zero3_save_16bit_model", nullptr, true},
      {"ACCELERATE_DEEPSPEED_CONFIG_FILE", "deepspeed_config_file", nullptr, false},
      {"ACCELERATE_DEEPSPEED_MOE_LAYER_CLS_NAMES", "deepspeed_moe_layer_cls_names", nullptr, false},
  };
  w.apply(rules);
}

void add_parallelism_config(Writer& w) {
  const std::string prefix = "PARALLELISM_CONFIG_";
  w.set("ACCELERATE_USE_PARALLELISM_CONFIG", "true");
  w.value(prefix + "DP_REPLICATE_SIZE", "parallelism_config_dp_replicate_size", "1");
  w.value(prefix + "DP_SHARD_SIZE", "parallelism_config_dp_shard_size", "1");
  w.value(prefix + "TP_SIZE", "parallelism_config_tp_size", "1");
  w.value(prefix + "CP_SIZE", "parallelism_config_cp_size", "1");
  w.value(prefix + "CP_BACKEND", "parallelism_config_cp_backend", "torch");
  w.value(prefix + "SP_SIZE", "parallelism_config_sp_size", "1");
  w.value(prefix + "SP_BACKEND", "parallelism_config_sp_backend", "deepspeed");
  const auto above_one = [&](const std::string& name) {
    const auto size = text::parse_integer(w.get(name, "1"));
    return size && *size > 1;
  };
  if (above_one("parallelism_config_cp_size")) {
    w.value(prefix + "CP_COMM_STRATEGY", "parallelism_config_cp_comm_strategy", "allgather");
  }
  if (above_one("parallelism_config_sp_size")) {
    w.value(prefix + "SP_SEQ_LENGTH", "parallelism_config_sp_seq_length", "None");
    w.value(prefix + "SP_SEQ_LENGTH_IS_VARIABLE", "parallelism_config_sp_seq_length_is_variable", "True");
    w.value(prefix + "SP_ATTN_IMPLEMENTATION", "parallelism_config_sp_attn_implementation", "sdpa");
  }
}

}  // namespace

std::string python_bool(const std::string& value) {
  const std::string word = lower(text::trim(value));
  if (word == "true" || word == "1" || word == "yes" || word == "y" || word == "t" || word == "on") return "True";
  if (word == "false" || word == "0" || word == "no" || word == "n" || word == "f" || word == "off") return "False";
  return value;
}

Variables job_environment(const JobEnvironmentInput& input) {
  Writer w(input.settings);
  w.set(env::kAccelerateUseCpu, input.use_cpu ? "True" : "False");
  if (input.debug) w.set(env::kAccelerateDebugMode, "true");
  if (input.use_cpu) {
    w.set("KMP_AFFINITY", "granularity=fine,compact,1,0");
    w.set("KMP_BLOCKTIME", "1");
  }
  w.set(env::kAccelerateMixedPrecision, to_string(input.mixed_precision));
  if (input.mixed_precision == MixedPrecision::kFp8) add_fp8(w, input.settings);
  add_dynamo(w);
  if (python_bool(w.get("enable_cpu_affinity", "False")) == "True") w.set("ACCELERATE_CPU_AFFINITY", "1");
  if (input.distributed_type == DistributedType::kFsdp) add_fsdp(w);
  if (input.distributed_type == DistributedType::kMegatronLm) add_megatron(w, input.settings);
  if (input.distributed_type == DistributedType::kDeepspeed) add_deepspeed(w);
  if (wants_accelerators(input.distributed_type) && python_bool(w.get("use_parallelism_config", "False")) == "True") {
    add_parallelism_config(w);
  }
  return w.take();
}

}  // namespace accel::launch::accelerate
