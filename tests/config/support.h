#pragma once
// What the config tests share besides tests/support: a fake machine.
#include <map>
#include <optional>
#include <string>

#include "accel/core/env_contract.h"
#include "accel/core/hardware.h"
#include "support/fake_env.h"
#include "support/temp_dir.h"

namespace accel::test {

inline hardware::Machine machine_with_gpus(int n) {
  hardware::Machine machine;
  machine.cpus = 16;
  machine.memory_bytes = 64ull << 30;
  machine.os = "Linux 6.1.0 x86_64";
  for (int i = 0; i < n; ++i) machine.gpus.push_back({i, "NVIDIA H100 80GB HBM3", 80ull << 30, std::to_string(i)});
  if (n > 0) machine.gpu_driver = "550.54.15";
  return machine;
}

}  // namespace accel::test
