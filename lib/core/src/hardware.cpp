#include "accel/core/hardware.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sched.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "accel/core/error.h"
#include "accel/core/text.h"

namespace accel::hardware {
namespace {

// The few NVML entry points we need, resolved at run time so nothing links CUDA.
struct NvmlMemory {
  unsigned long long total, free, used;
};
using NvmlDevice = void*;

class Nvml {
 public:
  Nvml() {
    handle_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!handle_) return;
    init_ = reinterpret_cast<int (*)()>(dlsym(handle_, "nvmlInit_v2"));
    shutdown_ = reinterpret_cast<int (*)()>(dlsym(handle_, "nvmlShutdown"));
    count_ = reinterpret_cast<int (*)(unsigned*)>(dlsym(handle_, "nvmlDeviceGetCount_v2"));
    by_index_ = reinterpret_cast<int (*)(unsigned, NvmlDevice*)>(dlsym(handle_, "nvmlDeviceGetHandleByIndex_v2"));
    name_ = reinterpret_cast<int (*)(NvmlDevice, char*, unsigned)>(dlsym(handle_, "nvmlDeviceGetName"));
    memory_ = reinterpret_cast<int (*)(NvmlDevice, NvmlMemory*)>(dlsym(handle_, "nvmlDeviceGetMemoryInfo"));
    driver_ = reinterpret_cast<int (*)(char*, unsigned)>(dlsym(handle_, "nvmlSystemGetDriverVersion"));
    // Optional: drivers without it still list GPUs, only without their local CPUs.
    affinity_ = reinterpret_cast<int (*)(NvmlDevice, unsigned, unsigned long*)>(dlsym(handle_, "nvmlDeviceGetCpuAffinity"));
    ready_ = init_ && shutdown_ && count_ && by_index_ && name_ && memory_ && driver_ && init_() == 0;
  }
  ~Nvml() {
    if (ready_) shutdown_();
    if (handle_) dlclose(handle_);
  }
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  bool ready() const { return ready_; }

  void fill(Machine& machine) const {
    char buffer[96] = {};
    if (driver_(buffer, sizeof buffer) == 0) machine.gpu_driver = buffer;
    unsigned count = 0;
    if (count_(&count) != 0) return;
    for (unsigned i = 0; i < count; ++i) {
      NvmlDevice device = nullptr;
      if (by_index_(i, &device) != 0) continue;
      Gpu gpu;
      gpu.index = static_cast<int>(i);
      if (name_(device, buffer, sizeof buffer) == 0) gpu.name = buffer;
      NvmlMemory memory{};
      if (memory_(device, &memory) == 0) gpu.memory_bytes = memory.total;
      gpu.local_cpus = local_cpus(device);
      machine.gpus.push_back(gpu);
    }
  }

 private:
  void* handle_ = nullptr;
  bool ready_ = false;
  int (*init_)() = nullptr;
  int (*shutdown_)() = nullptr;
  int (*count_)(unsigned*) = nullptr;
  int (*by_index_)(unsigned, NvmlDevice*) = nullptr;
  int (*name_)(NvmlDevice, char*, unsigned) = nullptr;
  int (*memory_)(NvmlDevice, NvmlMemory*) = nullptr;
  int (*driver_)(char*, unsigned) = nullptr;
  int (*affinity_)(NvmlDevice, unsigned, unsigned long*) = nullptr;

  // NVML's ideal CPU affinity: a bit mask of the CPUs on the GPU's NUMA node.
  std::vector<int> local_cpus(NvmlDevice device) const {
    std::vector<int> cpus;
    if (!affinity_) return cpus;
    constexpr unsigned kBitsPerWord = 8 * sizeof(unsigned long);
    const long configured = std::max(1L, sysconf(_SC_NPROCESSORS_CONF));
    std::vector<unsigned long> mask((static_cast<unsigned long>(configured) + kBitsPerWord - 1) / kBitsPerWord);
    if (affinity_(device, static_cast<unsigned>(mask.size()), mask.data()) != 0) return cpus;
    for (std::size_t word = 0; word < mask.size(); ++word) {
      for (unsigned bit = 0; bit < kBitsPerWord; ++bit) {
        if (mask[word] >> bit & 1UL) cpus.push_back(static_cast<int>(word * kBitsPerWord + bit));
      }
    }
    return cpus;
  }
};

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return text::trim(line);
}

// The output of `nvidia-smi -L`, or "" when it is not installed or fails. PATH is searched here
// first: on the many machines without it, no shell is started (the launcher probes at startup,
// and every millisecond before it handles signals is one where a Ctrl-C could be lost).
std::string run_nvidia_smi_list(const env::Lookup& environment) {
  std::string found;
  for (const auto& dir : text::split(environment("PATH").value_or(""), ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/nvidia-smi";
    if (::access(candidate.c_str(), X_OK) == 0) {
      found = candidate;
      break;
    }
  }
  if (found.empty() || found.find('\'') != std::string::npos) return "";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(("'" + found + "' -L 2>/dev/null").c_str(), "r"), ::pclose);
  if (!pipe) return "";
  std::string output;
  char buffer[512];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) output.append(buffer, n);
  return output;
}

// ACCEL_FAKE_GPUS: the allowed CPUs dealt out in equal consecutive runs (wrapping around when
// there are more GPUs than CPUs), so CPU-affinity paths can be tested on any machine.
std::vector<Gpu> fake_gpus(long long count, const cpu_set_t& allowed) {
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
  std::vector<Gpu> gpus;
  if (cpus.empty()) cpus.push_back(0);
  const std::size_t per_gpu = std::max<std::size_t>(1, cpus.size() / static_cast<std::size_t>(std::max(1LL, count)));
  for (long long i = 0; i < count; ++i) {
    Gpu gpu{static_cast<int>(i), "Fake GPU", 0, "", {}};
    for (std::size_t k = 0; k < per_gpu; ++k) {
      gpu.local_cpus.push_back(cpus[(static_cast<std::size_t>(i) * per_gpu + k) % cpus.size()]);
    }
    std::sort(gpu.local_cpus.begin(), gpu.local_cpus.end());
    gpus.push_back(gpu);
  }
  return gpus;
}

}  // namespace

std::vector<int> parse_cpu_list(const std::string& list) {
  std::vector<int> cpus;
  const auto bad = [&list]() {
    return Error("cannot read the CPU list '" + list + "': expected CPU numbers and ranges such as 0-3,8,10-11");
  };
  const std::string trimmed = text::trim(list);
  if (trimmed.empty()) return cpus;
  for (const auto& part : text::split(trimmed, ',')) {
    const auto dash = part.find('-');
    const auto first = text::parse_integer(text::trim(part.substr(0, dash)));
    const auto last = dash == std::string::npos ? first : text::parse_integer(text::trim(part.substr(dash + 1)));
    if (!first || !last || *first < 0 || *last < *first || *last >= CPU_SETSIZE) throw bad();
    for (long long cpu = *first; cpu <= *last; ++cpu) cpus.push_back(static_cast<int>(cpu));
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string format_cpu_list(const std::vector<int>& cpus) {
  std::vector<std::string> ranges;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    ranges.push_back(j == i ? std::to_string(cpus[i]) : std::to_string(cpus[i]) + "-" + std::to_string(cpus[j]));
    i = j + 1;
  }
  return text::join(ranges, ",");
}

std::vector<Gpu> gpus_from_proc(const std::string& proc_root, const std::string& sys_root) {
  const std::string root = proc_root + "/driver/nvidia/gpus";
  std::vector<Gpu> gpus;
  DIR* dir = opendir(root.c_str());
  if (!dir) return gpus;
  std::vector<std::string> bus_ids;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') bus_ids.emplace_back(entry->d_name);
  }
  closedir(dir);
  std::sort(bus_ids.begin(), bus_ids.end());  // PCI bus order, as CUDA's default enumeration
  for (std::size_t i = 0; i < bus_ids.size(); ++i) {
    Gpu gpu;
    gpu.index = static_cast<int>(i);
    std::ifstream info(root + "/" + bus_ids[i] + "/information");
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("Model:", 0) == 0) gpu.name = text::trim(line.substr(6));
    }
    // sysfs spells the bus id in lower case; the driver's /proc entry may not.
    std::string sysfs_id = bus_ids[i];
    std::transform(sysfs_id.begin(), sysfs_id.end(), sysfs_id.begin(), [](unsigned char c) { return std::tolower(c); });
    try {
      gpu.local_cpus = parse_cpu_list(read_first_line(sys_root + "/bus/pci/devices/" + sysfs_id + "/local_cpulist"));
    } catch (const Error&) {
      gpu.local_cpus.clear();  // unknown, as when the file is missing
    }
    gpus.push_back(gpu);
  }
  return gpus;
}

std::vector<Gpu> gpus_from_nvidia_smi(const std::string& listing) {
  std::vector<Gpu> gpus;
  std::istringstream lines(listing);
  for (std::string line; std::getline(lines, line);) {
    // "GPU 0: NVIDIA H200 (UUID: GPU-5f2c...)"; MIG devices are indented lines below their GPU.
    if (line.rfind("GPU ", 0) != 0) continue;
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    const auto index = text::parse_integer(line.substr(4, colon - 4));
    if (!index) continue;
    std::string name = line.substr(colon + 2);
    if (const auto uuid = name.rfind(" (UUID:"); uuid != std::string::npos) name.erase(uuid);
    gpus.push_back({static_cast<int>(gpus.size()), text::trim(name), 0, "", {}});
  }
  return gpus;
}

std::vector<Gpu> visible_gpus(const std::vector<Gpu>& all, const std::string& visible) {
  std::vector<Gpu> kept;
  for (const auto& raw : text::split(visible, ',')) {
    const std::string token = text::trim(raw);
    Gpu gpu;
    if (const auto index = text::parse_integer(token); index && *index >= 0 && *index < static_cast<long long>(all.size())) {
      gpu = all[static_cast<std::size_t>(*index)];
    } else if (token.rfind("GPU-", 0) == 0 || token.rfind("MIG-", 0) == 0) {
      gpu.name = token;  // a UUID: CUDA resolves it; we only pass it on
    } else {
      break;
    }
    gpu.index = static_cast<int>(kept.size());
    gpu.cuda_id = token;
    kept.push_back(gpu);
  }
  return kept;
}

Machine probe(const env::Lookup& environment) {
  Machine machine;
  cpu_set_t set;
  CPU_ZERO(&set);
  machine.cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                           : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  machine.cpus = std::max(1, machine.cpus);
  struct sysinfo info {};
  if (sysinfo(&info) == 0) machine.memory_bytes = static_cast<std::uint64_t>(info.totalram) * info.mem_unit;
  struct utsname name {};
  if (uname(&name) == 0) machine.os = std::string(name.sysname) + " " + name.release + " " + name.machine;

  if (const auto fake = environment(env::kFakeGpus)) {
    const auto count = text::parse_integer(*fake).value_or(0);
    machine.gpus = fake_gpus(count, set);
    machine.gpu_driver = count > 0 ? "fake" : "";
  } else if (Nvml nvml; nvml.ready()) {
    nvml.fill(machine);
  } else if (machine.gpus = gpus_from_proc("/proc", "/sys"); !machine.gpus.empty()) {
    machine.gpu_driver = read_first_line("/proc/driver/nvidia/version");
  } else {
    machine.gpus = gpus_from_nvidia_smi(run_nvidia_smi_list(environment));
  }
  for (auto& gpu : machine.gpus) gpu.cuda_id = std::to_string(gpu.index);
  if (const auto visible = environment(env::kCudaVisibleDevices)) machine.gpus = visible_gpus(machine.gpus, *visible);
  return machine;
}

}  // namespace accel::hardware
