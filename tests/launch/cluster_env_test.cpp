#include <catch2/catch.hpp>
#include <map>

#include "accel/core/error.h"
#include "cluster_env.h"
#include "support/fake_env.h"

using accel::launch::apply_cluster_layout;
using accel::launch::detect_cluster;
using accel::launch::LaunchRequest;

namespace {

using Vars = std::map<std::string, std::string>;

// srun --nodes=2 --ntasks-per-node=1 on the second node of job 4242.
Vars slurm_step(Vars extra = {}) {
  Vars vars{{"SLURM_JOB_ID", "4242"},       {"SLURM_STEP_ID", "0"},          {"SLURM_NODEID", "1"},
            {"SLURM_STEP_NUM_NODES", "2"},  {"SLURM_STEP_NUM_TASKS", "2"},   {"SLURM_NNODES", "2"},
            {"SLURM_NTASKS", "2"},          {"SLURM_JOB_NODELIST", "gpu-a[07-08]"},
            {"SLURM_STEP_NODELIST", "gpu-a[07-08]"}, {"SLURM_PROCID", "1"}};
  for (auto& [name, value] : extra) vars[name] = value;
  return vars;
}

std::string usage_error(const Vars& vars) {
  try {
    detect_cluster(accel::test::fake_env(vars));
  } catch (const accel::UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("cluster env: no engine variables guess nothing") {
  CHECK_FALSE(detect_cluster(accel::test::fake_env({})));
  // A batch script or salloc shell is not a launcher per node: no step, no guess.
  CHECK_FALSE(detect_cluster(accel::test::fake_env({{"SLURM_JOB_ID", "7"}, {"SLURM_NNODES", "4"}, {"SLURM_NODEID", "0"}})));
  // Inside an accel-launch or torchrun worker, RANK/WORLD_SIZE describe the worker, not a machine.
  CHECK_FALSE(detect_cluster(accel::test::fake_env({{"MASTER_ADDR", "h"}, {"WORLD_SIZE", "4"}, {"RANK", "1"}, {"LOCAL_RANK", "1"}})));
}

TEST_CASE("cluster env: an srun step gives count, rank, first host and a port from the job id") {
  const auto layout = detect_cluster(accel::test::fake_env(slurm_step()));
  REQUIRE(layout);
  CHECK(layout->engine == "SLURM job 4242");
  CHECK(layout->num_machines->value == 2);
  CHECK(layout->machine_rank->value == 1);
  CHECK(layout->main_process_ip->value == "gpu-a07");
  CHECK(layout->main_process_port->value == accel::launch::slurm_job_port(4242));

  LaunchRequest request;
  const std::string note = apply_cluster_layout(*layout, request);
  CHECK(request.num_machines == 2);
  CHECK(request.machine_rank == 1);
  CHECK(request.main_process_ip == "gpu-a07");
  CHECK(note.find("from SLURM job 4242: --num_machines 2 (SLURM_STEP_NUM_NODES), --machine_rank 1 (SLURM_NODEID), "
                  "--main_process_ip gpu-a07 (first of SLURM_STEP_NODELIST)") != std::string::npos);
  CHECK(std::count(note.begin(), note.end(), '\n') == 1);
}

TEST_CASE("cluster env: SLURM job ports differ between jobs and stay below the ephemeral range") {
  CHECK(accel::launch::slurm_job_port(4242) != accel::launch::slurm_job_port(4243));
  for (long long id : {0LL, 1LL, 5999LL, 123456789LL}) {
    const int port = accel::launch::slurm_job_port(id);
    CHECK(port % 2 == 0);
    CHECK(port >= 20000);
    CHECK(port + 1 < 32768);
  }
}

TEST_CASE("cluster env: SLURM falls back to job variables, takes GPUs per node and exported MASTER_ADDR") {
  const auto layout = detect_cluster(accel::test::fake_env({{"SLURM_JOB_ID", "9"}, {"SLURM_STEP_ID", "1"}, {"SLURM_NODEID", "0"},
                                           {"SLURM_JOB_NUM_NODES", "3"}, {"SLURM_NTASKS", "3"},
                                           {"SLURM_JOB_NODELIST", "c[1-3]"}, {"SLURM_GPUS_ON_NODE", "4"},
                                           {"MASTER_ADDR", "10.1.2.3"}}));
  REQUIRE(layout);
  CHECK(layout->num_machines->value == 3);
  CHECK(layout->main_process_ip->value == "10.1.2.3");
  LaunchRequest gpus;
  apply_cluster_layout(*layout, gpus);
  CHECK(gpus.num_processes == 12);  // the total: 4 GPUs on each of 3 machines
  LaunchRequest cpu;
  cpu.use_cpu = true;
  apply_cluster_layout(*layout, cpu);
  CHECK_FALSE(cpu.num_processes);
}

TEST_CASE("cluster env: srun starting a launcher per task is refused with the right srun line") {
  const auto message = usage_error(slurm_step({{"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_STEP_NUM_NODES", "2"}}));
  CHECK_THAT(message, Catch::Contains("srun started accel-launch 8 times on 2 node(s)"));
  CHECK_THAT(message, Catch::Contains("srun --nodes=2 --ntasks-per-node=1 accel-launch --num_processes 8"));
}

TEST_CASE("cluster env: malformed engine variables name the variable") {
  CHECK_THAT(usage_error(slurm_step({{"SLURM_NODEID", "x"}})), Catch::Contains("SLURM_NODEID='x'"));
  CHECK_THAT(usage_error(slurm_step({{"SLURM_NODEID", "2"}})),
             Catch::Contains("SLURM_NODEID=2 must be smaller than SLURM_STEP_NUM_NODES=2"));
  CHECK_THAT(usage_error(slurm_step({{"SLURM_STEP_NODELIST", "gpu[1-"}})), Catch::Contains("SLURM_STEP_NODELIST='gpu[1-'"));
  CHECK_THAT(usage_error({{"PET_NNODES", "1:4"}}), Catch::Contains("PET_NNODES='1:4' is not a fixed machine count"));
  CHECK_THAT(usage_error({{"PET_NNODES", "2"}, {"PET_NODE_RANK", "0"}, {"PET_MASTER_PORT", "99999"}}),
             Catch::Contains("PET_MASTER_PORT='99999'"));
}

TEST_CASE("cluster env: a PyTorchJob pod reads PET_* and completes them with MASTER_*") {
  const auto layout = detect_cluster(accel::test::fake_env({{"PET_NNODES", "2:2"}, {"PET_NODE_RANK", "1"}, {"PET_NPROC_PER_NODE", "3"},
                                           {"MASTER_ADDR", "job-master-0"}, {"MASTER_PORT", "23456"},
                                           {"WORLD_SIZE", "2"}, {"RANK", "1"}}));
  REQUIRE(layout);
  CHECK(layout->engine == "Kubernetes PyTorchJob");
  LaunchRequest request;
  request.main_process_port = 1234;  // the command line wins
  const std::string note = apply_cluster_layout(*layout, request);
  CHECK(request.num_machines == 2);
  CHECK(request.machine_rank == 1);
  CHECK(request.main_process_ip == "job-master-0");
  CHECK(request.main_process_port == 1234);
  CHECK(request.num_processes == 6);  // the total: 3 on each of 2 machines
  CHECK_THAT(note, Catch::Contains("--num_processes 6 (PET_NPROC_PER_NODE x 2 machines)"));
  CHECK_THAT(note, Catch::Contains("--main_process_ip job-master-0 (MASTER_ADDR)"));
  CHECK_THAT(note, !Catch::Contains("--main_process_port"));
}

TEST_CASE("cluster env: plain MASTER_ADDR/WORLD_SIZE/RANK describe one launcher per machine") {
  const auto layout =
      detect_cluster(accel::test::fake_env({{"MASTER_ADDR", "10.0.0.5"}, {"MASTER_PORT", "29400"}, {"WORLD_SIZE", "4"}, {"RANK", "3"}}));
  REQUIRE(layout);
  CHECK(layout->num_machines->value == 4);
  CHECK(layout->machine_rank->value == 3);
  CHECK(layout->main_process_port->value == 29400);
  CHECK_THAT(usage_error({{"MASTER_ADDR", "h"}, {"WORLD_SIZE", "2"}, {"RANK", "2"}}),
             Catch::Contains("RANK=2 must be smaller than WORLD_SIZE=2"));
}

TEST_CASE("cluster env: mpirun ranks are machines, several per machine are refused") {
  const auto layout = detect_cluster(accel::test::fake_env({{"OMPI_COMM_WORLD_SIZE", "3"}, {"OMPI_COMM_WORLD_RANK", "2"},
                                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "1"}, {"MASTER_ADDR", "node1"}}));
  REQUIRE(layout);
  CHECK(layout->engine == "OpenMPI mpirun");
  CHECK(layout->machine_rank->value == 2);
  CHECK(layout->main_process_ip->value == "node1");
  const auto under_slurm = detect_cluster(accel::test::fake_env({{"PMI_SIZE", "2"}, {"PMI_RANK", "0"}, {"SLURM_JOB_NODELIST", "n[4-5]"},
                                                {"SLURM_STEP_ID", "0"}, {"SLURM_NODEID", "0"}}));
  REQUIRE(under_slurm);
  CHECK(under_slurm->engine == "MPICH mpirun");
  CHECK(under_slurm->main_process_ip->value == "n4");
  CHECK_THAT(usage_error({{"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}}),
             Catch::Contains("mpirun -np 2 --map-by ppr:1:node accel-launch --num_processes 8"));
}

TEST_CASE("cluster env: the command line keeps count and rank together, one machine keeps a free port") {
  const auto layout = detect_cluster(accel::test::fake_env(slurm_step()));
  REQUIRE(layout);
  LaunchRequest single;
  single.num_machines = 1;
  CHECK(apply_cluster_layout(*layout, single).empty());
  CHECK_FALSE(single.machine_rank);
  CHECK_FALSE(single.main_process_ip);
  CHECK_FALSE(single.main_process_port);
}
