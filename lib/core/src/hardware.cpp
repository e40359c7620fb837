#include "accel/core/hardware.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sched.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

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
};

// Fallback when NVML is missing: one directory per GPU under /proc/driver/nvidia/gpus.
void fill_from_proc(Machine& machine) {
  const std::string root = "/proc/driver/nvidia/gpus";
  DIR* dir = opendir(root.c_str());
  if (!dir) return;
  std::vector<std::string> entries;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') entries.emplace_back(entry->d_name);
  }
  closedir(dir);
  std::sort(entries.begin(), entries.end());  // PCI bus order, as CUDA's default enumeration
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Gpu gpu;
    gpu.index = static_cast<int>(i);
    std::ifstream info(root + "/" + entries[i] + "/information");
    for (std::string line; std::getline(info, line);) {
      if (line.rfind("Model:", 0) == 0) gpu.name = text::trim(line.substr(6));
    }
    machine.gpus.push_back(gpu);
  }
  std::ifstream version("/proc/driver/nvidia/version");
  std::string line;
  if (std::getline(version, line)) machine.gpu_driver = text::trim(line);
}

}  // namespace

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

Machine probe() {
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

  if (const char* fake = std::getenv("ACCEL_FAKE_GPUS")) {
    const auto count = text::parse_integer(fake).value_or(0);
    for (long long i = 0; i < count; ++i) machine.gpus.push_back({static_cast<int>(i), "Fake GPU", 0, ""});
    machine.gpu_driver = count > 0 ? "fake" : "";
  } else if (Nvml nvml; nvml.ready()) {
    nvml.fill(machine);
  } else {
    fill_from_proc(machine);
  }
  for (auto& gpu : machine.gpus) gpu.cuda_id = std::to_string(gpu.index);
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES")) machine.gpus = visible_gpus(machine.gpus, visible);
  return machine;
}

}  // namespace accel::hardware
