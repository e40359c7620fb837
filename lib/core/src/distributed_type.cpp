#include "accel/core/distributed_type.h"

#include <array>

namespace accel {
namespace {

// Indexed by the enum's value, in its order.
constexpr std::array<const char*, 15> kDistributedTypeNames = {
    "NO",        "MULTI_CPU", "MULTI_GPU",   "MULTI_NPU", "MULTI_MLU", "MULTI_SDAA", "MULTI_MUSA", "MULTI_XPU",
    "MULTI_HPU", "MULTI_NEURON", "DEEPSPEED", "FSDP",      "MEGATRON_LM", "XLA",     "TPU"};

}  // namespace

std::optional<DistributedType> parse_distributed_type(std::string_view text) {
  for (std::size_t i = 0; i < kDistributedTypeNames.size(); ++i) {
    if (text == kDistributedTypeNames[i]) return static_cast<DistributedType>(i);
  }
  return std::nullopt;
}

const char* to_string(DistributedType type) { return kDistributedTypeNames.at(static_cast<std::size_t>(type)); }

std::vector<std::string> distributed_type_names() {
  return {kDistributedTypeNames.begin(), kDistributedTypeNames.end()};
}

bool passes_mode_settings(DistributedType type) {
  return type == DistributedType::kDeepspeed || type == DistributedType::kFsdp || type == DistributedType::kMegatronLm;
}

bool wants_accelerators(DistributedType type) {
  switch (type) {
    case DistributedType::kNo:
    case DistributedType::kMultiCpu:
    case DistributedType::kXla:
    case DistributedType::kTpu:
      return false;
    default:
      return true;
  }
}

}  // namespace accel
