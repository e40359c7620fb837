#pragma once
// What this machine offers, found without linking CUDA: NVML through dlopen when the driver
// library is present, else the NVIDIA driver's /proc entries.
#include <cstdint>
#include <string>
#include <vector>

namespace accel::hardware {

struct Gpu {
  int index = 0;
  std::string name;
  std::uint64_t memory_bytes = 0;  // 0 when unknown
};

struct Machine {
  int cpus = 1;                  // CPUs this process may run on (affinity mask)
  std::uint64_t memory_bytes = 0;
  std::string os;                // e.g. "Linux 6.1.0 x86_64"
  std::string gpu_driver;        // empty when no NVIDIA driver
  std::vector<Gpu> gpus;
};

// Honours ACCEL_FAKE_GPUS=N (tests only: pretend N GPUs exist) so GPU paths of the launcher
// can be tested on machines without one.
Machine probe();

}  // namespace accel::hardware
