#pragma once
// accelerate's DistributedType, one definition for the config files, the launcher and the
// runtime. The set is closed: text is parsed where it enters (a config key, a flag), anything
// else is refused there, and past that point the mode travels as this enum.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accel {

enum class DistributedType {
  kNo, kMultiCpu, kMultiGpu, kMultiNpu, kMultiMlu, kMultiSdaa, kMultiMusa, kMultiXpu, kMultiHpu, kMultiNeuron,
  kDeepspeed, kFsdp, kMegatronLm, kXla, kTpu,
};

// accelerate's spelling ("NO", "MULTI_GPU", "MEGATRON_LM", ...), exactly so; nothing otherwise.
std::optional<DistributedType> parse_distributed_type(std::string_view text);

// The spelling parse_distributed_type() accepts, as accelerate prints it.
const char* to_string(DistributedType type);

// Every spelling, in the enum's order, for error messages and choices.
std::vector<std::string> distributed_type_names();

// Modes that want one accelerator per worker: MULTI_* except MULTI_CPU, and the modes below.
bool wants_accelerators(DistributedType type);

// FSDP, DEEPSPEED, MEGATRON_LM: modes whose settings reach the job as accelerate's variables.
bool passes_mode_settings(DistributedType type);

}  // namespace accel
