// The questionnaire with scripted answers (the terminal check is tested through a pty in cli_test).
#include <catch2/catch.hpp>
#include <sstream>

#include "accel/config/questionnaire.h"
#include "accel/core/error.h"
#include "support.h"

using accel::config::Asker;
using accel::config::Config;
using accel::hardware::Machine;
using accel::test::machine_with_gpus;

namespace {

struct Session {
  Config config;
  std::string transcript;
};

Session answer(const std::string& answers, const Machine& machine) {
  std::istringstream in(answers);
  std::ostringstream out;
  Asker asker(in, out);
  Session session{accel::config::ask_config(asker, machine), ""};
  session.transcript = out.str();
  return session;
}

}  // namespace

TEST_CASE("Enter everywhere on a machine without GPU gives one CPU process", "[config][questionnaire]") {
  const auto session = answer("\n\n\n", machine_with_gpus(0));
  CHECK(session.transcript ==
        "Which kind of run is this config for? no (one process) / multi-cpu / multi-gpu [no]: "
        "Run on the CPU only, even where a GPU is present? (yes/no) [yes]: "
        "Which mixed precision? no / fp16 / bf16 [no]: ");
  CHECK(session.config.distributed_type == std::string("NO"));
  CHECK(session.config.use_cpu == true);
  CHECK(session.config.num_processes == 1);
  CHECK(session.config.mixed_precision == std::string("no"));
  CHECK_FALSE(session.config.gpu_ids);
}

TEST_CASE("defaults follow the GPUs found", "[config][questionnaire]") {
  const auto session = answer("\n\n\n\n\n", machine_with_gpus(4));
  CHECK(session.config.distributed_type == std::string("MULTI_GPU"));
  CHECK(session.config.num_processes == 4);
  CHECK(session.config.gpu_ids == std::string("all"));
  CHECK(session.config.use_cpu == false);
  CHECK(session.transcript.find("How many processes in total, over all machines (one per GPU)? [4]: ") != std::string::npos);
}

TEST_CASE("invalid answers are explained and asked again", "[config][questionnaire][errors]") {
  const auto session = answer("maybe\nMULTI_CPU\n0\n1\nlots\n0\n3\nfp32\nBF16\n", machine_with_gpus(0));
  const std::string& t = session.transcript;
  CHECK(t.find("'maybe' is not one of no, multi-cpu, multi-gpu; please answer again.\n") != std::string::npos);
  CHECK(t.find("'0' is not a whole number from 1 to 65536; please answer again.\n") != std::string::npos);
  CHECK(t.find("'lots' is not a whole number from 1 to 4096; please answer again.\n") != std::string::npos);
  CHECK(t.find("'0' is not a whole number from 1 to 4096; please answer again.\n") != std::string::npos);
  CHECK(t.find("How many CPU processes in total, over all machines? [2]: ") != std::string::npos);
  CHECK(t.find("'fp32' is not one of no, fp16, bf16; please answer again.\n") != std::string::npos);
  CHECK(session.config.distributed_type == std::string("MULTI_CPU"));
  CHECK(session.config.use_cpu == true);
  CHECK(session.config.num_processes == 3);
  CHECK(session.config.mixed_precision == std::string("bf16"));
}

TEST_CASE("two machines: rank, address, port and GPU ids checked against this machine", "[config][questionnaire]") {
  const auto session =
      answer("multi-gpu\n2\n2\n1\n\nmain host\nmain-host\n70000\n\nno\n3\n\n0,5\n1,1\n0\n1, 0\nfp16\n", machine_with_gpus(2));
  const std::string& t = session.transcript;
  CHECK(t.find("'2' is not a whole number from 0 to 1") != std::string::npos);
  CHECK(t.find("What is the IP address or host name of the main machine (rank 0)?: ") != std::string::npos);
  CHECK(t.find("an answer is needed; please answer again.\n") != std::string::npos);
  CHECK(t.find("an address has no spaces; please answer again.\n") != std::string::npos);
  CHECK(t.find("Which port does the main machine listen on? [29500]: ") != std::string::npos);
  CHECK(t.find("this machine has GPUs 0 to 1; please answer again.\n") != std::string::npos);
  CHECK(t.find("GPU 1 is named twice; please answer again.\n") != std::string::npos);
  CHECK(t.find("name 2 GPUs, one per process, or 'all'; please answer again.\n") != std::string::npos);
  CHECK(t.find("How many processes in total, over all machines (one per GPU)? [4]: ") != std::string::npos);
  CHECK(t.find("'3' is not a whole number from 2 to 4096 that divides evenly among the 2 machines; please answer again.\n") !=
        std::string::npos);
  const Config& c = session.config;
  CHECK(c.num_machines == 2);
  CHECK(c.machine_rank == 1);
  CHECK(c.main_process_ip == std::string("main-host"));
  CHECK(c.main_process_port == 29500);
  CHECK(c.same_network == false);
  CHECK(c.num_processes == 4);
  CHECK(c.gpu_ids == std::string("1,0"));
  CHECK(c.mixed_precision == std::string("fp16"));
}

TEST_CASE("what the questionnaire writes loads back unchanged", "[config][questionnaire][roundtrip]") {
  const Config asked = answer("multi-gpu\n2\n0\n10.0.0.1\n29501\nyes\n4\nall\nbf16\n", machine_with_gpus(0)).config;
  for (const auto format : {accel::config::Format::Yaml, accel::config::Format::Json}) {
    CHECK(accel::config::parse_config(to_text(asked, format), format, "asked").config == asked);
  }
}

TEST_CASE("input that ends early writes nothing and says so", "[config][questionnaire][errors]") {
  std::istringstream in("multi-cpu\n");
  std::ostringstream out;
  Asker asker(in, out);
  CHECK_THROWS_WITH(accel::config::ask_config(asker, machine_with_gpus(0)),
                    "the questionnaire ended before its last answer (end of input); nothing was written");
}
