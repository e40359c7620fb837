#include <catch2/catch.hpp>
#include <map>

#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "support/fake_env.h"

using accel::env::detect_world;

using accel::test::fake_env;

TEST_CASE("no launcher variables: a single process", "[core][env]") {
  auto w = detect_world(fake_env({}));
  CHECK(w.world_size == 1);
  CHECK(w.rank == 0);
  CHECK_FALSE(w.distributed());
  CHECK(w.launcher == "none");
}

TEST_CASE("torchrun / accel-launch variables", "[core][env]") {
  auto w = detect_world(fake_env({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                              {"GROUP_RANK", "1"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "1234"}}));
  CHECK(w.rank == 3);
  CHECK(w.local_rank == 1);
  CHECK(w.node_rank == 1);
  CHECK(w.num_nodes == 2);
  CHECK(w.master_addr == "10.0.0.1");
  CHECK(w.master_port == 1234);
  CHECK(w.launcher == "torchrun");
  auto ours = detect_world(fake_env({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"ACCEL_LAUNCHER", "accel-launch"}}));
  CHECK(ours.launcher == "accel-launch");
}

TEST_CASE("OpenMPI variables, single node defaults", "[core][env]") {
  auto w = detect_world(fake_env({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                              {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}));
  CHECK(w.launcher == "OpenMPI");
  CHECK(w.rank == 1);
  CHECK(w.master_addr == "127.0.0.1");
  CHECK(w.master_port == 29500);
}

TEST_CASE("MPICH multi-node without MASTER_ADDR is a clear error", "[core][env]") {
  auto lookup = fake_env({{"PMI_RANK", "0"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "0"}, {"MPI_LOCALNRANKS", "2"}});
  CHECK_THROWS_WITH(detect_world(lookup), Catch::Contains("MASTER_ADDR is not set"));
}

TEST_CASE("SLURM derives MASTER_ADDR from the compressed node list", "[core][env]") {
  auto w = detect_world(fake_env({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"},
                              {"SLURM_NTASKS_PER_NODE", "2(x2)"}, {"SLURM_NODEID", "1"},
                              {"SLURM_JOB_NODELIST", "gnode[010-012,20],login"}}));
  CHECK(w.launcher == "SLURM");
  CHECK(w.master_addr == "gnode010");
  CHECK(w.node_rank == 1);
  CHECK(w.local_world_size == 2);
  CHECK(accel::env::first_slurm_host("a1,b[1-2]") == "a1");
}

TEST_CASE("malformed values name the variable", "[core][env]") {
  CHECK_THROWS_WITH(detect_world(fake_env({{"RANK", "x"}, {"WORLD_SIZE", "2"}})), Catch::Contains("RANK='x'"));
  CHECK_THROWS_WITH(detect_world(fake_env({{"RANK", "2"}, {"WORLD_SIZE", "2"}})),
                    Catch::Contains("must be smaller than WORLD_SIZE=2"));
  CHECK_THROWS_WITH(detect_world(fake_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}})),
                    Catch::Contains("MASTER_PORT=70000"));
}

TEST_CASE("boolean variables accept the usual spellings and name a bad value", "[core][env]") {
  using accel::env::read_flag;
  CHECK(read_flag(fake_env({{"ACCEL_USE_CPU", "True"}}), "ACCEL_USE_CPU", false));
  CHECK(read_flag(fake_env({{"ACCEL_USE_CPU", "1"}}), "ACCEL_USE_CPU", false));
  CHECK_FALSE(read_flag(fake_env({{"ACCEL_USE_CPU", "no"}}), "ACCEL_USE_CPU", true));
  CHECK(read_flag(fake_env({}), "ACCEL_USE_CPU", true));
  CHECK(read_flag(fake_env({{"ACCEL_USE_CPU", ""}}), "ACCEL_USE_CPU", true));
  CHECK_THROWS_WITH(read_flag(fake_env({{"ACCEL_USE_CPU", "maybe"}}), "ACCEL_USE_CPU", false),
                    "environment variable ACCEL_USE_CPU='maybe' is not a boolean; expected true or false");
}

TEST_CASE("ACCEL_TIMEOUT_S reads seconds and rejects junk", "[core][env]") {
  using accel::env::read_timeout;
  using std::chrono::milliseconds;
  CHECK(read_timeout(fake_env({}), milliseconds(7)) == milliseconds(7));
  CHECK(read_timeout(fake_env({{"ACCEL_TIMEOUT_S", "30"}}), milliseconds(7)) == milliseconds(30000));
  CHECK(read_timeout(fake_env({{"ACCEL_TIMEOUT_S", "0.25"}}), milliseconds(7)) == milliseconds(250));
  for (const char* bad : {"0", "-3", "ten", "5s", "", "inf"}) {
    CHECK_THROWS_WITH(read_timeout(fake_env({{"ACCEL_TIMEOUT_S", bad}}), milliseconds(7)),
                      Catch::Contains(std::string("ACCEL_TIMEOUT_S='") + bad + "' is not a valid timeout"));
  }
}

TEST_CASE("torchrun's agent store and restart count are read", "[core][env]") {
  auto w = detect_world(fake_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                              {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  CHECK(w.launcher_hosts_store);
  CHECK(w.restart_count == 2);
  CHECK_FALSE(detect_world(fake_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}})).launcher_hosts_store);
}

TEST_CASE("SLURM without --ntasks-per-node reads SLURM_TASKS_PER_NODE", "[core][env]") {
  auto w = detect_world(fake_env({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "5"}, {"SLURM_LOCALID", "0"},
                              {"SLURM_TASKS_PER_NODE", "2(x1),3"}, {"SLURM_NODEID", "1"}, {"SLURM_JOB_NUM_NODES", "2"},
                              {"SLURM_JOB_NODELIST", "n[1-2]"}}));
  CHECK(w.local_world_size == 3);
  CHECK(w.num_nodes == 2);
  CHECK(w.node_rank == 1);
  CHECK(w.master_addr == "n1");
  CHECK_THROWS_WITH(detect_world(fake_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_TASKS_PER_NODE", "2(x"},
                                       {"SLURM_NODEID", "0"}, {"SLURM_JOB_NODELIST", "n1"}})),
                    Catch::Contains("SLURM_TASKS_PER_NODE='2(x'"));
}

TEST_CASE("SLURM host lists expand in full syntax, zero padding kept", "[core][env]") {
  using accel::env::expand_slurm_hostlist;
  using V = std::vector<std::string>;
  CHECK(expand_slurm_hostlist("L", "gpu-a[07-08,10],cpu-b3") == V{"gpu-a07", "gpu-a08", "gpu-a10", "cpu-b3"});
  CHECK(expand_slurm_hostlist("L", "n[8-11]") == V{"n8", "n9", "n10", "n11"});
  CHECK(expand_slurm_hostlist("L", "n[098-100]") == V{"n098", "n099", "n100"});
  CHECK(expand_slurm_hostlist("L", "rack[1-2]-n[01-02].ib") == V{"rack1-n01.ib", "rack1-n02.ib", "rack2-n01.ib", "rack2-n02.ib"});
  CHECK(expand_slurm_hostlist("L", "login") == V{"login"});
  CHECK(accel::env::first_slurm_host("[3-4]x,a") == "3x");
}

TEST_CASE("malformed SLURM host lists name the variable and the fault", "[core][env]") {
  using accel::env::expand_slurm_hostlist;
  CHECK_THROWS_WITH(expand_slurm_hostlist("SLURM_JOB_NODELIST", "n[1-2"),
                    Catch::Contains("SLURM_JOB_NODELIST='n[1-2'") && Catch::Contains("not closed"));
  CHECK_THROWS_WITH(expand_slurm_hostlist("L", "n[5-3]"), Catch::Contains("'5-3' runs backwards"));
  CHECK_THROWS_WITH(expand_slurm_hostlist("L", "n[a-b]"), Catch::Contains("'a-b' is not a number"));
  CHECK_THROWS_WITH(expand_slurm_hostlist("L", "n[[1]]"), Catch::Contains("cannot nest"));
  CHECK_THROWS_WITH(expand_slurm_hostlist("L", "a,,b"), Catch::Contains("empty name"));
  CHECK_THROWS_WITH(expand_slurm_hostlist("L", "n1]"), Catch::Contains("']' has no '['"));
  CHECK_THROWS_WITH(expand_slurm_hostlist("L", "n[0-99999999]"), Catch::Contains("more than 100000 hosts"));
}
