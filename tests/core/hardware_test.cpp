#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "accel/core/error.h"
#include "accel/core/hardware.h"
#include "support/fake_env.h"

namespace fs = std::filesystem;
using accel::hardware::Gpu;
using accel::test::fake_env;

namespace {
fs::path temporary_directory() {
  char pattern[] = "/tmp/accel-hardware-test-XXXXXX";
  return ::mkdtemp(pattern);
}

void write(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << content;
}
}  // namespace

TEST_CASE("CPU lists read and write the kernel's range syntax", "[core][hardware]") {
  using accel::hardware::format_cpu_list;
  using accel::hardware::parse_cpu_list;
  CHECK(parse_cpu_list("0-3,8,10-11\n") == std::vector<int>{0, 1, 2, 3, 8, 10, 11});
  CHECK(parse_cpu_list("5") == std::vector<int>{5});
  CHECK(parse_cpu_list("").empty());
  CHECK(parse_cpu_list("3,1-2,2") == std::vector<int>{1, 2, 3});
  CHECK(format_cpu_list({0, 1, 2, 3, 8, 10, 11}) == "0-3,8,10-11");
  CHECK(format_cpu_list({}).empty());
  for (const char* bad : {"a", "3-1", "1,,2", "-1", "0-", "99999"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH(parse_cpu_list(bad), Catch::Contains(std::string("'") + bad + "'") &&
                                               Catch::Contains("0-3,8,10-11"));
  }
}

TEST_CASE("GPUs from the driver's /proc entries, in bus order, with sysfs local CPUs", "[core][hardware]") {
  const fs::path root = temporary_directory();
  const fs::path gpus = root / "proc/driver/nvidia/gpus";
  write(gpus / "0000:B1:00.0/information", "Model: \t NVIDIA H200\nIRQ: 12\n");
  write(gpus / "0000:3B:00.0/information", "Model: \t NVIDIA A100-SXM4-80GB\n");
  write(root / "sys/bus/pci/devices/0000:3b:00.0/local_cpulist", "0-7,16-23\n");
  // The second GPU has no sysfs entry (a container without /sys): its local CPUs are unknown.

  const auto found = accel::hardware::gpus_from_proc((root / "proc").string(), (root / "sys").string());
  REQUIRE(found.size() == 2);
  CHECK(found[0].index == 0);
  CHECK(found[0].name == "NVIDIA A100-SXM4-80GB");
  CHECK(found[0].local_cpus == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23});
  CHECK(found[1].index == 1);
  CHECK(found[1].name == "NVIDIA H200");
  CHECK(found[1].local_cpus.empty());

  CHECK(accel::hardware::gpus_from_proc((root / "missing").string(), (root / "sys").string()).empty());
  fs::remove_all(root);
}

TEST_CASE("GPUs from nvidia-smi -L, MIG lines and noise skipped", "[core][hardware]") {
  const auto found = accel::hardware::gpus_from_nvidia_smi(
      "GPU 0: NVIDIA H200 (UUID: GPU-5f2c1a3e-0000-1111-2222-333344445555)\n"
      "  MIG 1g.18gb     Device  0: (UUID: MIG-1b2c3d4e-0000-1111-2222-333344445555)\n"
      "GPU 1: Tesla T4 (UUID: GPU-0a0b0c0d-0000-1111-2222-333344445555)\n"
      "No devices were found\n");
  REQUIRE(found.size() == 2);
  CHECK(found[0].name == "NVIDIA H200");
  CHECK(found[1].index == 1);
  CHECK(found[1].name == "Tesla T4");
  CHECK(accel::hardware::gpus_from_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate\n").empty());
}

TEST_CASE("probe falls back to nvidia-smi -L when neither NVML nor /proc has GPUs", "[core][hardware]") {
  // Only meaningful where the real driver is absent (CI, developer machines without a GPU).
  if (fs::exists("/proc/driver/nvidia/gpus") || fs::exists("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")) {
    WARN("this machine has an NVIDIA driver; the nvidia-smi fallback is not reached");
    return;
  }
  const fs::path bin = temporary_directory();
  write(bin / "nvidia-smi", "#!/bin/sh\n[ \"$1\" = -L ] && echo 'GPU 0: Fake Listed GPU (UUID: GPU-1234)'\n");
  fs::permissions(bin / "nvidia-smi", fs::perms::owner_all);
  const auto machine = accel::hardware::probe(fake_env({{"PATH", bin.string() + ":/usr/bin:/bin"}}));
  REQUIRE(machine.gpus.size() == 1);
  CHECK(machine.gpus[0].name == "Fake Listed GPU");
  CHECK(machine.gpus[0].cuda_id == "0");
  fs::remove_all(bin);
}

TEST_CASE("fake GPUs share out the allowed CPUs as their local CPUs", "[core][hardware]") {
  const auto machine = accel::hardware::probe(fake_env({{"ACCEL_FAKE_GPUS", "2"}}));
  REQUIRE(machine.gpus.size() == 2);
  const auto per_gpu = static_cast<std::size_t>(std::max(1, machine.cpus / 2));
  CHECK(machine.gpus[0].local_cpus.size() == per_gpu);
  CHECK(machine.gpus[1].local_cpus.size() == per_gpu);
  if (machine.cpus >= 2) CHECK(machine.gpus[0].local_cpus.back() < machine.gpus[1].local_cpus.front());
}

TEST_CASE("probe reads CUDA_VISIBLE_DEVICES from the environment it is given", "[core][hardware]") {
  const auto machine = accel::hardware::probe(fake_env({{"ACCEL_FAKE_GPUS", "3"}, {"CUDA_VISIBLE_DEVICES", "2,0"}}));
  REQUIRE(machine.gpus.size() == 2);
  CHECK(machine.gpus[0].cuda_id == "2");
  CHECK(machine.gpus[1].cuda_id == "0");
  CHECK(machine.gpus[1].index == 1);
  CHECK(accel::hardware::probe(fake_env({{"ACCEL_FAKE_GPUS", "3"}})).gpus.size() == 3);
}
