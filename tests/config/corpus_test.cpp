// Real accelerate config files (accelerate's tests, templates and docs, and files users pasted
// into GitHub issues), each run through what `accel-launch --dry_run --config_file F JOB` does on
// a CPU-only machine: the workers and WORLD_SIZE it would start, or the refusal, and the
// accelerate variables the job would receive.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "accel/config/apply.h"
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/launch/resolve.h"

namespace {

const std::string kCorpus = ACCEL_CONFIG_CORPUS;

struct Expected {
  std::string file;
  int workers = 0;     // local workers; 0 for a refusal
  int world_size = 0;
  int first_rank = 0;  // RANK of local worker 0
  std::vector<std::string> variables = {};  // KEY=VALUE that every worker gets
  std::vector<std::string> absent = {};     // variables no worker gets
  std::string refusal = {};                 // part of the error message
};

// What every job gets on a CPU-only machine, whatever the file says.
const std::vector<std::string> kCpuJob = {
    "ACCELERATE_USE_CPU=True", "KMP_AFFINITY=granularity=fine,compact,1,0", "KMP_BLOCKTIME=1",
    "ACCELERATE_DYNAMO_BACKEND=NO", "ACCELERATE_DYNAMO_MODE=default", "ACCELERATE_DYNAMO_USE_FULLGRAPH=False",
    "ACCELERATE_DYNAMO_USE_DYNAMIC=False", "ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION=False"};

std::vector<std::string> with(std::vector<std::string> extra) {
  extra.insert(extra.end(), kCpuJob.begin(), kCpuJob.end());
  return extra;
}

const std::vector<std::string> kNoModes = {"ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_MEGATRON_LM",
                                           "ACCELERATE_DEBUG_MODE", "CUDA_VISIBLE_DEVICES"};

const std::vector<Expected>& corpus() {
  static const std::vector<Expected> expected = {
      // accelerate's tests/test_configs and tests/tp.
      {"accelerate-test-0_11_0.yaml", 1, 1, 0, with({"ACCELERATE_MIXED_PRECISION=no"}), kNoModes},
      {"accelerate-test-0_12_0.yaml", 1, 1, 0, with({"ACCELERATE_MIXED_PRECISION=no"}), kNoModes},
      {"accelerate-test-0_28_0_mpi.yaml", 0, 0, 0, {}, {}, "mpirun_hostfile /home/user/hostfile: no such readable file"},
      {"accelerate-test-0_30_0_sagemaker.yaml", 0, 0, 0, {}, {},
       "compute_environment AMAZON_SAGEMAKER: accel-launch runs jobs on local machines only"},
      {"accelerate-test-0_34_0_fp8.yaml", 2, 2, 0,
       with({"ACCELERATE_MIXED_PRECISION=fp8", "ACCELERATE_FP8_BACKEND=TE", "ACCELERATE_FP8_FORMAT=E4M3",
             "ACCELERATE_FP8_AMAX_COMPUTE_ALGO=max", "ACCELERATE_FP8_AMAX_HISTORY_LEN=1024", "ACCELERATE_FP8_MARGIN=0",
             "ACCELERATE_FP8_INTERVAL=1", "ACCELERATE_FP8_OVERRIDE_FPROP=False", "ACCELERATE_FP8_OVERRIDE_WGRAD=False",
             "ACCELERATE_FP8_USE_AUTOCAST_DURING_EVAL=False"}),
       {"ACCELERATE_USE_FSDP"}},
      {"accelerate-test-invalid_keys.yaml", 0, 0, 0, {}, {}, "unknown key 'another_invalid_key'"},
      {"accelerate-test-latest.yaml", 1, 1, 0, with({"ACCELERATE_MIXED_PRECISION=no"}), kNoModes},
      {"accelerate-test-latest_fsdp.yaml", 1, 1, 0,
       with({"ACCELERATE_MIXED_PRECISION=no", "ACCELERATE_USE_FSDP=true", "FSDP_VERSION=1",
             "FSDP_AUTO_WRAP_POLICY=TRANSFORMER_BASED_WRAP", "FSDP_TRANSFORMER_CLS_TO_WRAP=BertLayer",
             "FSDP_BACKWARD_PREFETCH=BACKWARD_PRE", "FSDP_STATE_DICT_TYPE=SHARDED_STATE_DICT",
             "FSDP_SHARDING_STRATEGY=FULL_SHARD", "FSDP_OFFLOAD_PARAMS=false", "FSDP_CPU_RAM_EFFICIENT_LOADING=true",
             "FSDP_SYNC_MODULE_STATES=true", "FSDP_USE_ORIG_PARAMS=true", "FSDP_ACTIVATION_CHECKPOINTING=false",
             "FSDP_FORWARD_PREFETCH=false", "FSDP_MIN_NUM_PARAMS=100000000"}),
       {"FSDP_IGNORED_MODULES", "ACCELERATE_USE_DEEPSPEED"}},
      {"accelerate-test-validate_launch_cmd.yaml", 1, 1, 0,
       with({"ACCELERATE_DEBUG_MODE=true", "ACCEL_DEBUG=true", "ACCELERATE_MIXED_PRECISION=no"}),
       {"ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "FSDP_SYNC_MODULE_STATES"}},
      {"accelerate-test-fsdp2_tp_preparation.yaml", 4, 4, 0,
       with({"ACCELERATE_USE_FSDP=true", "FSDP_VERSION=1", "FSDP_SHARDING_STRATEGY=FULL_SHARD",
             "FSDP_SYNC_MODULE_STATES=true"}),
       {"FSDP_AUTO_WRAP_POLICY", "ACCELERATE_USE_PARALLELISM_CONFIG"}},

      // accelerate's examples/config_yaml_templates and examples.
      {"accelerate-template-deepspeed.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true", "ACCELERATE_MIXED_PRECISION=no",
             "ACCELERATE_DEEPSPEED_CONFIG_FILE=../deepspeed_config_templates/zero_stage1_config.json",
             "ACCELERATE_DEEPSPEED_ZERO3_INIT=false", "ACCELERATE_CONFIG_DS_FIELDS=deepspeed_config_file,zero3_init_flag"}),
       {"ACCELERATE_DEEPSPEED_ZERO_STAGE", "ACCELERATE_USE_FSDP"}},
      {"accelerate-template-fp8.yaml", 1, 1, 0,
       with({"ACCELERATE_MIXED_PRECISION=fp8", "ACCELERATE_FP8_BACKEND=TE", "ACCELERATE_FP8_FORMAT=E4M3",
             "ACCELERATE_FP8_OVERRIDE_FPROP=False", "ACCELERATE_FP8_OVERRIDE_DGRAD=False",
             "ACCELERATE_FP8_OVERRIDE_WGRAD=False", "ACCELERATE_FP8_OPT_LEVEL=O2"}),
       kNoModes},
      {"accelerate-template-fsdp.yaml", 2, 2, 0,
       with({"ACCELERATE_MIXED_PRECISION=bf16", "ACCELERATE_USE_FSDP=true", "FSDP_BACKWARD_PREFETCH=BACKWARD_PRE",
             "FSDP_STATE_DICT_TYPE=SHARDED_STATE_DICT", "FSDP_AUTO_WRAP_POLICY=TRANSFORMER_BASED_WRAP"}),
       {"FSDP_TRANSFORMER_CLS_TO_WRAP"}},
      {"accelerate-template-multi_gpu.yaml", 2, 2, 0, with({"ACCELERATE_MIXED_PRECISION=bf16"}), kNoModes},
      {"accelerate-template-multi_node.yaml", 4, 8, 0,
       with({"ACCELERATE_MIXED_PRECISION=no", "MASTER_ADDR=1234", "MASTER_PORT=9999", "GROUP_WORLD_SIZE=2",
             "LOCAL_WORLD_SIZE=4"}),
       kNoModes},
      {"accelerate-template-multi_xpu.yaml", 2, 2, 0, with({"ACCELERATE_MIXED_PRECISION=bf16"}), kNoModes},
      {"accelerate-template-single_accelerator.yaml", 1, 1, 0, with({"ACCELERATE_MIXED_PRECISION=bf16"}), kNoModes},
      {"accelerate-example-sp-alst.yml", 4, 4, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true", "ACCELERATE_DEEPSPEED_CONFIG_FILE=sp-alst.ds-config.json",
             "ACCELERATE_DEEPSPEED_ZERO3_INIT=false", "ACCELERATE_MIXED_PRECISION=no"}),
       {"ACCELERATE_USE_FSDP"}},
      {"accelerate-example-cp.yaml", 8, 8, 0,
       with({"ACCELERATE_USE_FSDP=true", "FSDP_VERSION=2", "FSDP_RESHARD_AFTER_FORWARD=true",
             "FSDP_ACTIVATION_CHECKPOINTING=true", "FSDP_CPU_RAM_EFFICIENT_LOADING=false",
             "ACCELERATE_USE_PARALLELISM_CONFIG=true", "PARALLELISM_CONFIG_CP_SIZE=8",
             "PARALLELISM_CONFIG_CP_COMM_STRATEGY=allgather", "PARALLELISM_CONFIG_TP_SIZE=1",
             "PARALLELISM_CONFIG_SP_BACKEND=deepspeed"}),
       {"PARALLELISM_CONFIG_SP_SEQ_LENGTH"}},
      {"accelerate-example-tp_hsdp.yaml", 8, 8, 0,
       with({"ACCELERATE_USE_FSDP=true", "FSDP_VERSION=2", "ACCELERATE_USE_PARALLELISM_CONFIG=true",
             "PARALLELISM_CONFIG_DP_REPLICATE_SIZE=2", "PARALLELISM_CONFIG_DP_SHARD_SIZE=2", "PARALLELISM_CONFIG_TP_SIZE=2",
             "PARALLELISM_CONFIG_CP_SIZE=1"}),
       {"PARALLELISM_CONFIG_CP_COMM_STRATEGY"}},

      // accelerate's documentation.
      {"accelerate-docs-launch.yaml", 2, 2, 0, with({"ACCELERATE_MIXED_PRECISION=fp16"}), kNoModes},
      {"accelerate-docs-deepspeed-zero2.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true", "ACCELERATE_MIXED_PRECISION=fp16", "ACCELERATE_DEEPSPEED_ZERO_STAGE=2",
             "ACCELERATE_GRADIENT_ACCUMULATION_STEPS=1", "ACCELERATE_GRADIENT_CLIPPING=1.0",
             "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE=none", "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE=none",
             "ACCELERATE_DEEPSPEED_ZERO3_INIT=true",
             "ACCELERATE_CONFIG_DS_FIELDS=gradient_accumulation_steps,gradient_clipping,offload_optimizer_device,"
             "offload_param_device,zero3_init_flag,zero_stage,mixed_precision"}),
       {"ACCELERATE_DEEPSPEED_CONFIG_FILE", "ACCELERATE_USE_FSDP"}},
      {"accelerate-docs-deepspeed-block4.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true", "ACCELERATE_DEEPSPEED_ZERO_STAGE=3",
             "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE=cpu", "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE=cpu",
             "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL=true"}),
       {"ACCELERATE_USE_FSDP"}},
      {"accelerate-docs-deepspeed-block9.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true",
             "ACCELERATE_DEEPSPEED_CONFIG_FILE=/home/ubuntu/accelerate/examples/deepspeed_config_templates/"
             "zero_stage2_config.json",
             "ACCELERATE_DEEPSPEED_ZERO3_INIT=true"}),
       {"ACCELERATE_DEEPSPEED_ZERO_STAGE"}},
      {"accelerate-docs-deepspeed-block12.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true",
             "ACCELERATE_DEEPSPEED_CONFIG_FILE=/home/ubuntu/accelerate/examples/deepspeed_config_templates/"
             "zero_stage3_offload_config.json"}),
       {"ACCELERATE_DEEPSPEED_ZERO_STAGE"}},
      {"accelerate-docs-deepspeed-zero3-file.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true", "ACCELERATE_MIXED_PRECISION=no", "ACCELERATE_DEEPSPEED_ZERO_STAGE=3",
             "ACCELERATE_DEEPSPEED_CONFIG_FILE=ds_config.json", "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE=cpu"}),
       {"ACCELERATE_USE_FSDP"}},
      {"accelerate-docs-deepspeed-block22.yaml", 4, 4, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true", "ACCELERATE_DEEPSPEED_CONFIG_FILE=ds_config.json",
             "ACCELERATE_CONFIG_DS_FIELDS=deepspeed_config_file,zero3_init_flag"}),
       {"ACCELERATE_USE_FSDP"}},
      {"accelerate-docs-fsdp.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_FSDP=true", "ACCELERATE_MIXED_PRECISION=bf16", "FSDP_TRANSFORMER_CLS_TO_WRAP=BertLayer",
             "FSDP_STATE_DICT_TYPE=SHARDED_STATE_DICT"}),
       // fsdp_backward_prefetch_policy is an old spelling accelerate no longer reads.
       {"FSDP_BACKWARD_PREFETCH"}},
      {"accelerate-docs-intel_cpu-single.yaml", 1, 1, 0, with({"ACCELERATE_MIXED_PRECISION=bf16"}), kNoModes},
      {"accelerate-docs-intel_cpu-mpirun.yaml", 0, 0, 0, {}, {}, "mpirun_hostfile /home/user/hostfile: no such readable file"},
      {"accelerate-docs-megatron_lm.yaml", 4, 4, 0,
       with({"ACCELERATE_USE_MEGATRON_LM=true", "ACCELERATE_MIXED_PRECISION=bf16", "MEGATRON_LM_TP_DEGREE=2",
             "MEGATRON_LM_PP_DEGREE=2", "MEGATRON_LM_NUM_MICRO_BATCHES=2", "MEGATRON_LM_GRADIENT_CLIPPING=1.0",
             "MEGATRON_LM_SEQUENCE_PARALLELISM=True", "MEGATRON_LM_RECOMPUTE_ACTIVATIONS=True",
             "MEGATRON_LM_USE_DISTRIBUTED_OPTIMIZER=True", "MEGATRON_LM_USE_CUSTOM_FSDP=False"}),
       {"ACCELERATE_USE_FSDP", "MEGATRON_LM_RECOMPUTE_METHOD"}},
      {"accelerate-docs-sagemaker.yaml", 0, 0, 0, {}, {},
       "compute_environment AMAZON_SAGEMAKER: accel-launch runs jobs on local machines only"},

      // Files users pasted into GitHub issues.
      {"issue-accelerate-49-fp16-legacy.yaml", 0, 0, 0, {}, {}, "main_process_ip: the integer 2333 is not a non-empty string"},
      {"issue-accelerate-77-multi-gpu.json", 1, 1, 0, with({"ACCELERATE_MIXED_PRECISION=no", "MASTER_PORT=20655"}),
       kNoModes},
      {"issue-accelerate-3894-node0.yaml", 5, 10, 0,
       with({"ACCELERATE_MIXED_PRECISION=fp16", "MASTER_ADDR=xxxxx", "MASTER_PORT=5000", "GROUP_RANK=0"}), kNoModes},
      {"issue-accelerate-3894-node1.yaml", 5, 10, 5,
       with({"ACCELERATE_MIXED_PRECISION=fp16", "MASTER_ADDR=xxxx", "MASTER_PORT=5000", "GROUP_RANK=1"}), kNoModes},
      {"issue-matalmag-1-four-gpus.yaml", 4, 4, 0, with({"ACCELERATE_MIXED_PRECISION=no", "MASTER_PORT=12389"}), kNoModes},
      // The placeholder address could never be connected to: refused in one line (issue 24).
      {"issue-accelerate-2265-gpu8.yaml", 0, 0, 0, {}, {},
       "issue-accelerate-2265-gpu8.yaml:8: main_process_ip '10.6.1.10 (example)': expected the address of machine 0 "
       "without a port"},
      {"issue-transformers-34113-fsdp-etcd.yaml", 0, 0, 0, {}, {},
       "issue-transformers-34113-fsdp-etcd.yaml:20: main_process_port 0 (a free port) only works on one machine"},
      {"issue-accelerate-1943-fsdp-gpt2.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_FSDP=true", "FSDP_SHARDING_STRATEGY=1", "FSDP_TRANSFORMER_CLS_TO_WRAP=GPT2Block",
             "FSDP_STATE_DICT_TYPE=FULL_STATE_DICT", "FSDP_OFFLOAD_PARAMS=false"}),
       {"FSDP_BACKWARD_PREFETCH"}},
      {"issue-accelerate-2301-fsdp-size-based.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_FSDP=true", "FSDP_AUTO_WRAP_POLICY=SIZE_BASED_WRAP", "FSDP_MIN_NUM_PARAMS=100000000",
             "FSDP_CPU_RAM_EFFICIENT_LOADING=false", "FSDP_FORWARD_PREFETCH=true", "FSDP_SHARDING_STRATEGY=1"}),
       {"FSDP_TRANSFORMER_CLS_TO_WRAP"}},
      {"issue-sd-scripts-1139-deepspeed-zero2.yaml", 2, 2, 0,
       with({"ACCELERATE_USE_DEEPSPEED=true", "ACCELERATE_MIXED_PRECISION=bf16", "ACCELERATE_DEEPSPEED_ZERO_STAGE=2",
             "ACCELERATE_DEEPSPEED_ZERO3_INIT=false", "ACCELERATE_GRADIENT_ACCUMULATION_STEPS=1"}),
       {"ACCELERATE_GRADIENT_CLIPPING"}},
      {"issue-accelerate-3575-mpirun-ccl.yaml", 0, 0, 0, {}, {},
       "mpirun_hostfile /home/jiqingfe/hostfile: no such readable file"},
  };
  return expected;
}

accel::hardware::Machine cpu_only_machine() {
  accel::hardware::Machine machine;
  machine.cpus = 8;
  return machine;
}

// One map per worker line of the dry-run report; the last line (the command) is left out.
std::vector<std::map<std::string, std::string>> worker_lines(const std::string& report) {
  std::vector<std::string> lines = accel::text::split(report, '\n');
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (!lines.empty()) lines.pop_back();
  std::vector<std::map<std::string, std::string>> workers;
  for (const auto& line : lines) {
    std::map<std::string, std::string> vars;
    // Values are shell-quoted; only MASTER_ADDR in this corpus holds a space, inside quotes.
    std::string pair;
    bool quoted = false;
    for (std::size_t i = 0; i <= line.size(); ++i) {
      const char c = i < line.size() ? line[i] : ' ';
      if (c == '\'') quoted = !quoted;
      if (c == ' ' && !quoted) {
        const auto equals = pair.find('=');
        if (equals != std::string::npos) vars[pair.substr(0, equals)] = pair.substr(equals + 1);
        pair.clear();
      } else {
        pair += c;
      }
    }
    workers.push_back(vars);
  }
  return workers;
}

}  // namespace

TEST_CASE("accelerate corpus: at least 40 real files, each named with its source", "[config][corpus]") {
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus)) {
    const std::string name = entry.path().filename().string();
    if (name != "sources.txt") files.insert(name);
  }
  CHECK(files.size() >= 40);
  std::set<std::string> listed;
  for (const auto& expected : corpus()) listed.insert(expected.file);
  CHECK(files == listed);

  std::ifstream index(kCorpus + "/sources.txt");
  std::stringstream sources;
  sources << index.rdbuf();
  for (const auto& name : files) {
    INFO(name);
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
      CHECK(sources.str().find("\n" + name + ": https://github.com/") != std::string::npos);
    } else {
      std::ifstream file(kCorpus + "/" + name);
      std::string first;
      std::getline(file, first);
      CHECK(first.rfind("# Source: https://github.com/", 0) == 0);
    }
  }
}

TEST_CASE("accelerate corpus: workers, WORLD_SIZE or the refusal, and the job's accelerate variables", "[config][corpus]") {
  for (const auto& expected : corpus()) {
    INFO(expected.file);
    accel::launch::LaunchRequest request;
    request.job = {"sh", "-c", "true"};
    request.config_file = kCorpus + "/" + expected.file;
    request.dry_run = true;
    std::ostringstream notes;
    std::string report;
    std::string refusal;
    try {
      accel::config::apply_config_file(request, notes);
      report = accel::launch::dry_run_report(accel::launch::resolve(request, cpu_only_machine(), notes));
    } catch (const accel::Error& e) {
      refusal = e.what();
    }
    INFO(notes.str());
    if (!expected.refusal.empty()) {
      CHECK(refusal.find(expected.refusal) != std::string::npos);
      INFO(refusal);
      continue;
    }
    REQUIRE(refusal == "");
    const auto workers = worker_lines(report);
    REQUIRE(workers.size() == static_cast<std::size_t>(expected.workers));
    for (int local = 0; local < expected.workers; ++local) {
      const auto& vars = workers[local];
      CHECK(vars.at("WORLD_SIZE") == std::to_string(expected.world_size));
      CHECK(vars.at("RANK") == std::to_string(expected.first_rank + local));
      CHECK(vars.at("LOCAL_RANK") == std::to_string(local));
      for (const auto& pair : expected.variables) {
        const auto equals = pair.find('=');
        const auto found = vars.find(pair.substr(0, equals));
        INFO(pair);
        REQUIRE(found != vars.end());
        CHECK(found->second == pair.substr(equals + 1));
      }
      for (const auto& name : expected.absent) {
        INFO(name);
        CHECK(vars.count(name) == 0);
      }
    }
  }
}
