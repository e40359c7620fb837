#pragma once
// What this machine offers, found without linking CUDA: NVML through dlopen when the driver
// library is present, else the NVIDIA driver's /proc entries, else `nvidia-smi -L`.
#include <cstdint>
#include <string>
#include <vector>

#include "accel/core/env_contract.h"

namespace accel::hardware {

struct Gpu {
  int index = 0;                   // as CUDA numbers it for this process (after CUDA_VISIBLE_DEVICES)
  std::string name;
  std::uint64_t memory_bytes = 0;  // 0 when unknown
  std::string cuda_id;             // how to name it in a child's CUDA_VISIBLE_DEVICES
  std::vector<int> local_cpus;     // the CPUs nearest to it (NVML or sysfs); empty when unknown
};

struct Machine {
  int cpus = 1;                  // CPUs this process may run on (affinity mask)
  std::uint64_t memory_bytes = 0;
  std::string os;                // e.g. "Linux 6.1.0 x86_64"
  std::string gpu_driver;        // empty when no NVIDIA driver
  std::vector<Gpu> gpus;
};

// Reads ACCEL_FAKE_GPUS, CUDA_VISIBLE_DEVICES and PATH (where nvidia-smi is looked for) through
// `environment`. ACCEL_FAKE_GPUS=N (tests only) pretends N GPUs exist, the CPUs this process may
// use dealt out between them in equal consecutive runs as their local CPUs, so GPU paths of the
// launcher can be tested on machines without one. CUDA_VISIBLE_DEVICES limits and renumbers the
// GPUs as CUDA would (listed order; parsing stops at the first id that names no GPU).
Machine probe(const env::Lookup& environment = env::process_environment());

// The GPUs that CUDA_VISIBLE_DEVICES=`visible` leaves of `all` (numbered by physical index).
std::vector<Gpu> visible_gpus(const std::vector<Gpu>& all, const std::string& visible);

// The parts of probe() that read the driver's outputs, exposed so tests can feed them files.
// GPUs under <proc_root>/driver/nvidia/gpus (one directory per PCI bus id, in bus order), their
// local CPUs from <sys_root>/bus/pci/devices/<bus id>/local_cpulist.
std::vector<Gpu> gpus_from_proc(const std::string& proc_root, const std::string& sys_root);
// GPUs from the output of `nvidia-smi -L` ("GPU 0: NVIDIA H200 (UUID: GPU-...)" lines).
std::vector<Gpu> gpus_from_nvidia_smi(const std::string& listing);
// A Linux CPU list ("0-3,8,10-11") as CPU numbers, ascending; throws accel::Error naming the
// list on anything else.
std::vector<int> parse_cpu_list(const std::string& list);
// The inverse, compressed into ranges: {0,1,2,3,8} -> "0-3,8".
std::string format_cpu_list(const std::vector<int>& cpus);

}  // namespace accel::hardware
