#pragma once
// What this machine offers, found without linking CUDA: NVML through dlopen when the driver
// library is present, else the NVIDIA driver's /proc entries.
#include <cstdint>
#include <string>
#include <vector>

namespace accel::hardware {

struct Gpu {
  int index = 0;                   // as CUDA numbers it for this process (after CUDA_VISIBLE_DEVICES)
  std::string name;
  std::uint64_t memory_bytes = 0;  // 0 when unknown
  std::string cuda_id;             // how to name it in a child's CUDA_VISIBLE_DEVICES
};

struct Machine {
  int cpus = 1;                  // CPUs this process may run on (affinity mask)
  std::uint64_t memory_bytes = 0;
  std::string os;                // e.g. "Linux 6.1.0 x86_64"
  std::string gpu_driver;        // empty when no NVIDIA driver
  std::vector<Gpu> gpus;
};

// Honours ACCEL_FAKE_GPUS=N (tests only: pretend N GPUs exist) so GPU paths of the launcher
// can be tested on machines without one. An inherited CUDA_VISIBLE_DEVICES limits and renumbers
// the GPUs as CUDA would (listed order; parsing stops at the first id that names no GPU).
Machine probe();

// The GPUs that CUDA_VISIBLE_DEVICES=`visible` leaves of `all` (numbered by physical index).
std::vector<Gpu> visible_gpus(const std::vector<Gpu>& all, const std::string& visible);

}  // namespace accel::hardware
