#pragma once
// What the config tests share: a scratch directory, a fake environment and a fake machine.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "accel/core/env_contract.h"
#include "accel/core/hardware.h"

namespace accel::test {

// A temporary directory per test, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "accel-config-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string path(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& contents) const {
    const std::string file = path(name);
    std::filesystem::create_directories(std::filesystem::path(file).parent_path());
    std::ofstream(file) << contents;
    return file;
  }
  const std::string& root() const { return path_; }

 private:
  std::string path_;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

inline env::Lookup fake_env(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

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
