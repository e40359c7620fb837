// Files written by several accelerate versions, and every example shipped in configs/.
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "accel/config/config.h"
#include "accel/core/error.h"

using accel::config::Config;
using accel::config::load_config;

namespace {
const std::string kFixtures = ACCEL_CONFIG_FIXTURES;
const std::string kExamples = ACCEL_EXAMPLE_CONFIGS;
}  // namespace

TEST_CASE("accelerate 0.12: legacy fp16 becomes mixed_precision", "[config][fixtures]") {
  const std::string path = kFixtures + "/accelerate-0.12-legacy-fp16.yaml";
  const auto loaded = load_config(path);
  CHECK(loaded.config.mixed_precision == std::string("fp16"));
  CHECK(loaded.config.distributed_type == std::string("NO"));
  CHECK_FALSE(loaded.config.main_process_ip);
  REQUIRE(loaded.notes.size() == 1);
  CHECK(loaded.notes[0] == path + ": legacy key fp16: true read as mixed_precision: fp16; `accel-launch config update` rewrites the file");
}

TEST_CASE("accelerate 0.17: dynamo_backend moves into dynamo_config, downcast_bf16 'no'", "[config][fixtures]") {
  const std::string path = kFixtures + "/accelerate-0.17-multi-gpu.yaml";
  const auto loaded = load_config(path);
  CHECK(loaded.config.distributed_type == std::string("MULTI_GPU"));
  CHECK(loaded.config.num_processes == 2);
  CHECK(loaded.config.gpu_ids == std::string("all"));
  CHECK(loaded.config.downcast_bf16 == false);
  REQUIRE(loaded.config.ignored.count("dynamo_config") == 1);
  const auto& dynamo = loaded.config.ignored.at("dynamo_config");
  REQUIRE(dynamo.entries.size() == 1);
  CHECK(dynamo.entries[0].key == "dynamo_backend");
  CHECK(dynamo.entries[0].value.text == "NO");
  REQUIRE(loaded.notes.size() == 1);
  CHECK(loaded.notes[0] == path + ": legacy key dynamo_backend belongs in dynamo_config; `accel-launch config update` rewrites the file");
}

TEST_CASE("accelerate 0.28: the second of two machines", "[config][fixtures]") {
  const auto loaded = load_config(kFixtures + "/accelerate-0.28-two-machines.yaml");
  CHECK(loaded.config.machine_rank == 1);
  CHECK(loaded.config.num_machines == 2);
  CHECK(loaded.config.main_process_ip == std::string("10.1.2.3"));
  CHECK(loaded.config.main_process_port == 29501);
  CHECK(loaded.config.gpu_ids == std::string("0,1"));
  CHECK(loaded.config.mixed_precision == std::string("bf16"));
  CHECK(loaded.notes.empty());
}

TEST_CASE("accelerate 1.2: multi-CPU with an mpirun section", "[config][fixtures]") {
  const std::string path = kFixtures + "/accelerate-1.2-multi-cpu.yaml";
  const auto loaded = load_config(path);
  CHECK(loaded.config.distributed_type == std::string("MULTI_CPU"));
  CHECK(loaded.config.num_processes == 4);
  CHECK(loaded.config.use_cpu == true);
  CHECK(loaded.config.ignored.at("mpirun_config").entries.at(1).value.text == "/home/user/hostfile");
  CHECK(loaded.notes.empty());
}

TEST_CASE("accelerate's `config default` writes JSON into a .yaml file", "[config][fixtures]") {
  const auto loaded = load_config(kFixtures + "/accelerate-1.x-config-default.yaml");
  CHECK(loaded.config.distributed_type == std::string("NO"));
  CHECK(loaded.config.use_cpu == true);
  CHECK(loaded.config.num_processes == 1);
  CHECK(loaded.notes.empty());
}

TEST_CASE("accelerate 1.x JSON multi-GPU", "[config][fixtures]") {
  const std::string path = kFixtures + "/accelerate-1.x-multi-gpu.json";
  const auto loaded = load_config(path);
  CHECK(loaded.config.gpu_ids == std::string("0,1,2,3"));
  CHECK(loaded.config.num_processes == 4);
  CHECK(loaded.config.enable_cpu_affinity == true);
  CHECK(loaded.config.ignored.count("dynamo_config") == 1);
  CHECK(loaded.notes.empty());
}

TEST_CASE("accelerate 1.x FSDP loads, its section kept for the job", "[config][fixtures]") {
  const auto loaded = load_config(kFixtures + "/accelerate-1.x-fsdp.yaml");
  CHECK(loaded.config.distributed_type == std::string("FSDP"));
  CHECK(loaded.config.ignored.at("fsdp_config").kind == accel::config::Node::Kind::Map);
  CHECK(loaded.notes.empty());
}

TEST_CASE("every accelerate fixture survives a rewrite in both formats", "[config][fixtures][roundtrip]") {
  for (const auto& entry : std::filesystem::directory_iterator(kFixtures)) {
    const std::string path = entry.path().string();
    INFO(path);
    const Config config = load_config(path).config;
    for (const auto format : {accel::config::Format::Yaml, accel::config::Format::Json}) {
      CHECK(accel::config::parse_config(to_text(config, format), format, "rewritten").config == config);
    }
  }
}

TEST_CASE("every example in configs/ loads, and each YAML file equals its JSON twin", "[config][examples]") {
  std::set<std::string> stems;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples)) {
    if (entry.is_directory()) continue;  // configs/slurm/ holds batch scripts, not config files
    INFO(entry.path().string());
    const auto loaded = load_config(entry.path().string());
    CHECK(loaded.notes.empty());
    CHECK(loaded.config.distributed_type);
    stems.insert(entry.path().stem().string());
  }
  CHECK(stems == std::set<std::string>{"single-cpu", "multi-cpu", "single-gpu", "multi-gpu", "two-machines"});
  for (const auto& stem : stems) {
    INFO(stem);
    CHECK(load_config(kExamples + "/" + stem + ".yaml").config == load_config(kExamples + "/" + stem + ".json").config);
  }
}
