#pragma once
// What `accelerate launch` tells a job through its environment, so a Python job that uses
// accelerate configures itself under accel-launch exactly as under `accelerate launch`
// (accelerate's src/accelerate/utils/launch.py is the reference). accel-launch does not run
// FSDP, DeepSpeed, Megatron-LM, dynamo or fp8 itself: it hands their settings to the job.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "accel/core/distributed_type.h"
#include "accel/core/precision.h"

namespace accel::launch::accelerate {

// accelerate's argument name (e.g. "fsdp_offload_params", "zero_stage") -> the value as
// Python's str() spells it ("True", "1", "FULL_SHARD"). Filled from `accelerate launch`'s flags
// (options.h, Group::PassedToJob) and from the sections of a config file (fsdp_config, ...).
using JobSettings = std::map<std::string, std::string>;
using Variables = std::vector<std::pair<std::string, std::string>>;

struct JobEnvironmentInput {
  DistributedType distributed_type = DistributedType::kNo;
  bool use_cpu = true;
  MixedPrecision mixed_precision = MixedPrecision::kNo;
  bool debug = false;
  JobSettings settings;
};

// accelerate's variables for every worker: ACCELERATE_USE_CPU, ACCELERATE_MIXED_PRECISION,
// ACCELERATE_DEBUG_MODE, ACCELERATE_DYNAMO_*, KMP_* on CPU, ACCELERATE_CPU_AFFINITY,
// ACCELERATE_FP8_* for fp8, and the mode's own (ACCELERATE_USE_FSDP + FSDP_*, ...). Values are
// spelled as accelerate spells them. Throws accel::UsageError naming the setting for a value
// accelerate would refuse (an unknown dynamo backend).
Variables job_environment(const JobEnvironmentInput& input);

// Python's str() of a boolean written as text: "true"/"True"/"1"/"yes" -> "True", ...; other
// text is returned unchanged (accelerate passes it through too).
std::string python_bool(const std::string& value);

}  // namespace accel::launch::accelerate
