#include <catch2/catch.hpp>

#include "accel/core/distributed_type.h"

using accel::DistributedType;

TEST_CASE("distributed types read and print accelerate's spellings", "[core][distributed_type]") {
  const auto names = accel::distributed_type_names();
  CHECK(names.size() == 15);
  for (const auto& name : names) {
    CAPTURE(name);
    const auto parsed = accel::parse_distributed_type(name);
    REQUIRE(parsed);
    CHECK(accel::to_string(*parsed) == name);
  }
  CHECK(accel::parse_distributed_type("MEGATRON_LM") == DistributedType::kMegatronLm);
  for (const char* unknown : {"", "no", "multi_gpu", "MULTI-GPU", " NO", "GPU"}) {
    CAPTURE(unknown);
    CHECK_FALSE(accel::parse_distributed_type(unknown));
  }
}

TEST_CASE("distributed types that want accelerators and those whose settings go to the job", "[core][distributed_type]") {
  for (const char* name : {"MULTI_GPU", "MULTI_XPU", "MULTI_NEURON", "FSDP", "DEEPSPEED", "MEGATRON_LM"}) {
    CAPTURE(name);
    CHECK(accel::wants_accelerators(*accel::parse_distributed_type(name)));
  }
  for (const char* name : {"NO", "MULTI_CPU", "XLA", "TPU"}) {
    CAPTURE(name);
    CHECK_FALSE(accel::wants_accelerators(*accel::parse_distributed_type(name)));
  }
  for (const auto& name : accel::distributed_type_names()) {
    CAPTURE(name);
    CHECK(accel::passes_mode_settings(*accel::parse_distributed_type(name)) ==
          (name == "FSDP" || name == "DEEPSPEED" || name == "MEGATRON_LM"));
  }
}
