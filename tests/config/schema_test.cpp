// The checker: what each key accepts and the exact message for each bad input.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <regex>

#include "accel/config/config.h"
#include "accel/core/error.h"
#include "accel/launch/options.h"

using accel::config::Config;
using accel::config::Format;
using accel::config::parse_config;

namespace {

Config yaml(const std::string& text) { return parse_config(text, Format::Yaml, "t.yaml").config; }

std::string yaml_error(const std::string& text) {
  try {
    parse_config(text, Format::Yaml, "t.yaml");
  } catch (const accel::UsageError& error) {
    return error.what();
  }
  return "(no error)";
}

std::string json_error(const std::string& text) {
  try {
    parse_config(text, Format::Json, "t.json");
  } catch (const accel::UsageError& error) {
    return error.what();
  }
  return "(no error)";
}

}  // namespace

const std::string kDistributedTypes = "NO, MULTI_CPU, MULTI_GPU, MULTI_NPU, MULTI_MLU, MULTI_SDAA, MULTI_MUSA, MULTI_XPU, MULTI_HPU, MULTI_NEURON, DEEPSPEED, FSDP, MEGATRON_LM, XLA, TPU";

TEST_CASE("YAML values are typed as PyYAML types them", "[config][schema]") {
  const Config config = yaml(
      "distributed_type: NO\n"  // YAML 1.1 reads unquoted NO as false; it still means NO
      "mixed_precision: no\n"
      "use_cpu: yes\n"
      "num_processes: 1\n"
      "main_process_ip: 10.0.0.7\n"
      "grace_period: 2.5\n"
      "gpu_ids: 0,2\n");
  CHECK(config.distributed_type == std::string("NO"));
  CHECK(config.mixed_precision == std::string("no"));
  CHECK(config.use_cpu == true);
  CHECK(config.main_process_ip == std::string("10.0.0.7"));
  CHECK(config.grace_period == 2.5);
  CHECK(config.gpu_ids == std::string("0,2"));
}

TEST_CASE("absent and null keys stay unset, num_processes -1 means unset", "[config][schema]") {
  const Config config = yaml("main_process_ip: null\nmain_process_port:\nnum_processes: -1\nuse_cpu: false\n");
  CHECK_FALSE(config.main_process_ip);
  CHECK_FALSE(config.main_process_port);
  CHECK_FALSE(config.num_processes);
  CHECK_FALSE(config.distributed_type);
  CHECK(config.use_cpu == false);
}

TEST_CASE("gpu_ids accepts all, one integer, or a list written with spaces", "[config][schema]") {
  CHECK(yaml("gpu_ids: all\n").gpu_ids == std::string("all"));
  CHECK(yaml("gpu_ids: 3\n").gpu_ids == std::string("3"));
  CHECK(yaml("gpu_ids: '1, 0'\n").gpu_ids == std::string("1,0"));
}

TEST_CASE("wrong types name file:line:column, key, value and what is accepted", "[config][schema][errors]") {
  CHECK(yaml_error("use_cpu: maybe\n") == "t.yaml:1:10: use_cpu: the string 'maybe' is not a boolean; accepted: true or false");
  CHECK(yaml_error("num_processes: four\n") ==
        "t.yaml:1:16: num_processes: the string 'four' is not an integer; accepted: an integer from 1 to 4096 (or -1: not set)");
  CHECK(yaml_error("num_processes: 2.5\n") ==
        "t.yaml:1:16: num_processes: the number 2.5 is not an integer; accepted: an integer from 1 to 4096 (or -1: not set)");
  CHECK(yaml_error("main_process_ip: 10\n") ==
        "t.yaml:1:18: main_process_ip: the integer 10 is not a non-empty string; accepted: a string (quote it: '10')");
  CHECK(yaml_error("log_dir: [a, b]\n") == "t.yaml:1:10: log_dir: a list is not a non-empty string; accepted: a string");
  CHECK(yaml_error("grace_period: soon\n") ==
        "t.yaml:1:15: grace_period: the string 'soon' is not a number; accepted: a number from 0 to 3600");
  CHECK(yaml_error("distributed_type: 3\n") ==
        "t.yaml:1:19: distributed_type: the integer 3 is not one of the accepted values; accepted: " + kDistributedTypes);
  CHECK(json_error("{\n  \"num_processes\": \"4\"\n}\n") ==
        "t.json:2:20: num_processes: the string '4' is not an integer; accepted: an integer from 1 to 4096 (or -1: not set)");
  CHECK(json_error("{\"debug\": 1}") == "t.json:1:11: debug: the integer 1 is not a boolean; accepted: true or false");
}

TEST_CASE("out-of-range numbers are refused with the range", "[config][schema][errors]") {
  CHECK(yaml_error("num_processes: 0\n") ==
        "t.yaml:1:16: num_processes: the integer 0 is out of range; accepted: an integer from 1 to 4096 (or -1: not set)");
  CHECK(yaml_error("main_process_port: 70000\n") ==
        "t.yaml:1:20: main_process_port: the integer 70000 is out of range; accepted: an integer from 0 to 65535");
  CHECK(yaml_error("max_restarts: -2\n") ==
        "t.yaml:1:15: max_restarts: the integer -2 is out of range; accepted: an integer from 0 to 1000");
  CHECK(yaml_error("grace_period: -0.5\n") ==
        "t.yaml:1:15: grace_period: the number -0.5 is out of range; accepted: a number from 0 to 3600");
  CHECK(yaml_error("num_processes: 99999999999999999999\n") ==
        "t.yaml:1:16: num_processes: the integer 99999999999999999999 is not an integer; accepted: an integer from 1 to 4096 (or -1: not set)");
}

TEST_CASE("unknown enum values, every mode accelerate knows, and SageMaker refused", "[config][schema][errors]") {
  CHECK(yaml_error("distributed_type: MULTI_GPUS\n") ==
        "t.yaml:1:19: distributed_type: the string 'MULTI_GPUS' is not a known value (did you mean 'MULTI_GPU'?); "
        "accepted: " + kDistributedTypes);
  CHECK(yaml_error("distributed_type: multi_cpu\n") ==
        "t.yaml:1:19: distributed_type: the string 'multi_cpu' is not a known value (did you mean 'MULTI_CPU'?); "
        "accepted: " + kDistributedTypes);
  for (const char* mode : {"FSDP", "DEEPSPEED", "MEGATRON_LM", "MULTI_XPU", "MULTI_NPU", "XLA"}) {
    INFO(mode);
    CHECK(parse_config(std::string("distributed_type: ") + mode + "\n", Format::Yaml, "t.yaml").config.distributed_type ==
          std::string(mode));
  }
  CHECK(parse_config("mixed_precision: fp8\n", Format::Yaml, "t.yaml").config.mixed_precision == std::string("fp8"));
  CHECK(yaml_error("mixed_precision: float32\n") ==
        "t.yaml:1:18: mixed_precision: the string 'float32' is not a known value; accepted: no, fp16, bf16, fp8");
  CHECK(yaml_error("debug: false\ncompute_environment: AMAZON_SAGEMAKER\nec2_instance_type: ml.p3.2xlarge\n") ==
        "t.yaml:2: compute_environment AMAZON_SAGEMAKER: accel-launch runs jobs on local machines only; launch SageMaker "
        "jobs with `accelerate launch`");
  CHECK(yaml_error("gpu_ids: 0,x\n") ==
        "t.yaml:1:10: gpu_ids: the string '0,x' holds 'x', which is not an index; accepted: 'all' or comma-separated "
        "indices such as '0,1,3'");
  CHECK(yaml_error("gpu_ids: 1,1\n") ==
        "t.yaml:1:10: gpu_ids: the string '1,1' names index 1 twice; accepted: 'all' or comma-separated indices such as '0,1,3'");
  CHECK(yaml_error("local_ranks_filter: all\n") ==
        "t.yaml:1:21: local_ranks_filter: the string 'all' holds 'all', which is not an index; accepted: comma-separated "
        "indices such as '0,1,3'");
}

TEST_CASE("unknown keys are errors, with a hint for a near miss", "[config][schema][errors]") {
  CHECK(yaml_error("num_process: 2\n") == "t.yaml:1:1: unknown key 'num_process' (did you mean 'num_processes'?)");
  CHECK(json_error("{\"distributed_type\": \"NO\",\n \"mixed_precison\": \"no\"}") ==
        "t.json:2:2: unknown key 'mixed_precison' (did you mean 'mixed_precision'?)");
  const std::string far = yaml_error("colour: red\n");
  CHECK(far.rfind("t.yaml:1:1: unknown key 'colour'; accepted keys: compute_environment, distributed_type, ", 0) == 0);
  CHECK(far.find("local_ranks_filter (and accelerate's sections, see docs/config.md)") != std::string::npos);
}

TEST_CASE("every problem of a file is listed, one per line", "[config][schema][errors]") {
  CHECK(yaml_error("use_cpu: 2\nnum_machines: 0\nfoo_bar: 1\n") ==
        "t.yaml:1:10: use_cpu: the integer 2 is not a boolean; accepted: true or false\n"
        "t.yaml:2:15: num_machines: the integer 0 is out of range; accepted: an integer from 1 to 65536\n"
        "t.yaml:3:1: unknown key 'foo_bar'; accepted keys: compute_environment, distributed_type, mixed_precision, "
        "use_cpu, debug, num_processes, num_machines, machine_rank, gpu_ids, main_process_ip, main_process_port, "
        "rdzv_backend, same_network, main_training_function, enable_cpu_affinity, downcast_bf16, "
        "num_cpu_threads_per_process, log_dir, tee, max_restarts, grace_period, role, local_ranks_filter "
        "(and accelerate's sections, see docs/config.md)");
}

TEST_CASE("contradictions between keys are named at the later key", "[config][schema][errors]") {
  CHECK(yaml_error("num_machines: 2\nmachine_rank: 2\n") ==
        "t.yaml:2:15: machine_rank: 2 must be below num_machines (2); accepted: 0 to 1");
  CHECK(yaml_error("num_machines: 2\nnum_processes: 3\n") ==
        "t.yaml:2:16: num_processes: 3 is the total over all 2 machines and must be a positive multiple of num_machines; "
        "accepted: 2, 4, ...");
  CHECK(yaml_error("num_machines: 4\nnum_processes: 2\n") ==
        "t.yaml:2:16: num_processes: 2 is the total over all 4 machines and must be a positive multiple of num_machines; "
        "accepted: 4, 8, ...");
  CHECK(yaml_error("fp16: true\nmixed_precision: bf16\n") ==
        "t.yaml:1:7: fp16: the legacy key says fp16 but mixed_precision says bf16; remove fp16");
  CHECK(yaml_error("fp16: sometimes\n") ==
        "t.yaml:1:7: fp16: the string 'sometimes' is not a boolean; accepted: true or false (better: mixed_precision: fp16)");
}

TEST_CASE("malformed, empty and oddly shaped documents", "[config][schema][errors]") {
  CHECK(yaml_error("num_processes: [1, 2\n") == "t.yaml:2:1: malformed YAML: end of sequence flow not found");
  CHECK(json_error("{\"num_processes\": 1,}") ==
        "t.json:1:21: malformed JSON: syntax error while parsing object key - unexpected '}'; expected string literal");
  CHECK(json_error("{\n  \"use_cpu\": tru\n}") ==
        "t.json:2:17: malformed JSON: syntax error while parsing value - invalid literal; last read: '\"use_cpu\": tru<U+000A>'");
  CHECK(yaml_error("") == "t.yaml: the file is empty; write at least `distributed_type: NO` or run `accel-launch config default`");
  CHECK(yaml_error("# only a comment\n\n") ==
        "t.yaml: the file is empty; write at least `distributed_type: NO` or run `accel-launch config default`");
  CHECK(json_error("  \n") == "t.json: the file is empty; write at least `distributed_type: NO` or run `accel-launch config default`");
  CHECK(yaml_error("- distributed_type: NO\n") == "t.yaml:1:1: the file must be a mapping of keys to values, found a list");
  CHECK(json_error("\"MULTI_GPU\"") == "t.json:1:1: the file must be a mapping of keys to values, found the string 'MULTI_GPU'");
}

TEST_CASE("accelerate runs what its own readers accept: NO with several processes runs one, MULTI_GPU with use_cpu loads",
          "[config][schema]") {
  const auto one = parse_config("distributed_type: 'NO'\nnum_processes: 4\n", Format::Yaml, "t.yaml");
  CHECK(one.config.num_processes == 1);
  REQUIRE(one.notes.size() == 1);
  CHECK(one.notes[0] ==
        "t.yaml:2: num_processes 4 ignored: distributed_type NO runs one process, as in accelerate (use MULTI_CPU or "
        "MULTI_GPU for more)");
  const auto cpu = parse_config("distributed_type: MULTI_GPU\nuse_cpu: true\n", Format::Yaml, "t.yaml");
  CHECK(cpu.config.use_cpu == true);
}

TEST_CASE("a key given twice keeps its last value, as PyYAML and json do, with a warning naming both lines",
          "[config][schema]") {
  const auto yaml = parse_config("num_processes: 2\ndebug: true\nnum_processes: 3\n", Format::Yaml, "t.yaml");
  CHECK(yaml.config.num_processes == 3);
  REQUIRE(yaml.notes.size() == 1);
  CHECK(yaml.notes[0] == "t.yaml:3:1: key 'num_processes' appears twice (lines 1 and 3); the last value is used, as accelerate does");
  const auto json = parse_config("{\"debug\": true,\n\"debug\": false}", Format::Json, "t.json");
  CHECK(json.config.debug == false);
  REQUIRE(json.notes.size() == 1);
  CHECK(json.notes[0] == "t.json:2:1: key 'debug' appears twice (lines 1 and 2); the last value is used, as accelerate does");
}

TEST_CASE("sections for the job are kept silently, TPU settings in use are named once", "[config][schema]") {
  const auto loaded = parse_config(
      "distributed_type: MULTI_GPU\n"
      "deepspeed_config:\n  zero_stage: 2\n"
      "fsdp_config: {}\n"
      "tpu_use_sudo: false\n"
      "tpu_name: my-tpu\n"
      "enable_cpu_affinity: true\n"
      "rdzv_backend: etcd\n",
      Format::Yaml, "t.yaml");
  REQUIRE(loaded.notes.size() == 1);
  CHECK(loaded.notes[0] ==
        "t.yaml: ignoring settings for features accel-launch does not run: tpu_name, rdzv_backend etcd (accel-launch's "
        "rendezvous is static)");
  CHECK(loaded.config.ignored.count("deepspeed_config") == 1);
  CHECK(loaded.config.ignored.count("fsdp_config") == 1);
  CHECK(loaded.config.ignored.count("tpu_use_sudo") == 1);
  CHECK(yaml_error("fsdp_config: FULL_SHARD\n") ==
        "t.yaml:1:14: fsdp_config: the string 'FULL_SHARD' is not a mapping; accepted: a mapping of accelerate's "
        "fsdp_config keys, or {}");
}

TEST_CASE("switched-off sections load silently", "[config][schema]") {
  const auto loaded = parse_config("fsdp_config: {}\ntpu_env: []\ndynamo_config:\n  dynamo_backend: 'NO'\n", Format::Yaml, "t.yaml");
  CHECK(loaded.notes.empty());
}

TEST_CASE("a config survives a write and a read in both formats", "[config][schema][roundtrip]") {
  Config config;
  config.compute_environment = "LOCAL_MACHINE";
  config.distributed_type = "MULTI_GPU";
  config.mixed_precision = "no";
  config.use_cpu = false;
  config.debug = true;
  config.num_processes = 9;
  config.num_machines = 3;
  config.machine_rank = 2;
  config.gpu_ids = "0,1,2,3,4,5,6,7";
  config.main_process_ip = "10.0.0.1";
  config.main_process_port = 0;
  config.rdzv_backend = "static";
  config.same_network = true;
  config.main_training_function = "main";
  config.enable_cpu_affinity = false;
  config.downcast_bf16 = false;
  config.num_cpu_threads_per_process = 4;
  config.log_dir = "/var/log/run 1";
  config.tee = true;
  config.max_restarts = 3;
  config.grace_period = 2.25;
  config.role = "yes";  // a string YAML 1.1 would read as a boolean unless quoted
  config.local_ranks_filter = "0,3";
  config.ignored["deepspeed_config"] = parse_config("deepspeed_config: {zero_stage: 2, offload: [cpu, 'null']}\n",
                                                    Format::Yaml, "t.yaml").config.ignored["deepspeed_config"];
  for (const Format format : {Format::Yaml, Format::Json}) {
    const std::string text = to_text(config, format);
    INFO(text);
    const Config back = parse_config(text, format, "round-trip").config;
    CHECK(back == config);
    CHECK(to_text(back, format) == text);
  }
}

TEST_CASE("written YAML quotes what YAML 1.1 would misread and sorts keys", "[config][schema][roundtrip]") {
  Config config;
  config.distributed_type = "NO";
  config.mixed_precision = "no";
  config.num_processes = 1;
  config.use_cpu = true;
  CHECK(to_text(config, Format::Yaml) == "distributed_type: 'NO'\nmixed_precision: 'no'\nnum_processes: 1\nuse_cpu: true\n");
  CHECK(to_text(config, Format::Json) ==
        "{\n  \"distributed_type\": \"NO\",\n  \"mixed_precision\": \"no\",\n  \"num_processes\": 1,\n  \"use_cpu\": true\n}\n");
}

TEST_CASE("config equality sees every field", "[config][schema]") {
  Config a;
  Config b;
  CHECK(a == b);
  b.local_ranks_filter = "1";
  CHECK(a != b);
  b = a;
  b.grace_period = 1.0;
  CHECK(a != b);
  b = a;
  b.ignored["fsdp_config"] = {};
  CHECK(a != b);
}

TEST_CASE("the format follows the extension", "[config][schema]") {
  CHECK(accel::config::format_for_path("a/b.json") == Format::Json);
  CHECK(accel::config::format_for_path("B.JSON") == Format::Json);
  CHECK(accel::config::format_for_path("b.yaml") == Format::Yaml);
  CHECK(accel::config::format_for_path("b.yml") == Format::Yaml);
  CHECK(accel::config::format_for_path("json") == Format::Yaml);
}

TEST_CASE("documents nested 100 000 deep get an error, not a crash", "[config][schema][errors]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(json_error("{\"num_processes\": " + deep + "}") ==
        "t.json: malformed JSON: arrays/objects nested deeper than 256 levels (at byte 273); no file of this kind "
        "needs that many");
  // yaml-cpp bounds its own recursion; both spellings of a nested list must reach its error.
  CHECK_THAT(yaml_error("num_processes: " + deep + "\n"), Catch::Matchers::StartsWith("t.yaml:1:") &&
                                                               Catch::Matchers::Contains("malformed YAML"));
  std::string block_list;
  for (int i = 0; i < 100000; ++i) block_list += "- ";
  CHECK_THAT(yaml_error("num_processes: \n  " + block_list + "x\n"),
             Catch::Matchers::StartsWith("t.yaml:2:") && Catch::Matchers::Contains("malformed YAML"));
}

TEST_CASE("a hostile value or key is cut short in the message", "[config][schema][errors]") {
  const std::string huge(1 << 20, 'x');
  const std::string value_message = yaml_error("distributed_type: " + huge + "\n");
  CHECK_THAT(value_message, Catch::Matchers::StartsWith("t.yaml:1:19: distributed_type: the string 'xxx") &&
                                Catch::Matchers::Contains("'... (1048576 bytes in all) is not a known value"));
  CHECK(value_message.size() < 500);
  const std::string key_message = json_error("{\"" + huge + "\": 1}");
  CHECK_THAT(key_message, Catch::Matchers::Contains("unknown key 'xxx") &&
                              Catch::Matchers::Contains("(1048576 bytes in all)"));
  CHECK(key_message.size() < 1000);
}

TEST_CASE("docs/config.md's table of keys says what the option table says", "[config][schema][docs]") {
  using accel::launch::LaunchOption;
  std::ifstream file(std::string(ACCEL_EXAMPLE_CONFIGS) + "/../docs/config.md");
  std::map<std::string, std::pair<std::string, std::string>> documented;  // key -> accepted, effect
  bool in_table = false;
  for (std::string line; std::getline(file, line);) {
    if (line == "| key | accepted | effect |") in_table = true;
    if (!in_table || line.rfind("| `", 0) != 0) {
      if (in_table && line.empty()) break;
      continue;
    }
    const auto second = line.find(" | ", 2), third = line.find(" | ", second + 3);
    const std::string keys = line.substr(2, second - 2);
    const std::string accepted = line.substr(second + 3, third - second - 3), effect = line.substr(third + 3);
    static const std::regex quoted("`(\\w+)`");
    for (std::sregex_iterator it(keys.begin(), keys.end(), quoted), end; it != end; ++it) {
      documented[(*it)[1]] = {accepted, effect};
    }
  }
  REQUIRE(documented.size() > 20);
  const auto number = [](double value) { return std::to_string(static_cast<long long>(value)); };
  for (const LaunchOption& option : accel::launch::launch_options()) {
    if (!option.key) continue;
    INFO(option.key);
    REQUIRE(documented.count(option.key) == 1);
    const auto [accepted, effect] = documented[option.key];
    documented.erase(option.key);
    CHECK((effect.rfind("ours", 0) == 0) == (option.owner == accel::launch::Owner::Ours));
    using accel::launch::ValueType;
    if (option.type == ValueType::Integer || option.type == ValueType::Seconds) {
      CHECK(accepted.find(number(option.min) + "..") != std::string::npos);
      CHECK(accepted.find(number(option.max)) != std::string::npos);
    }
    for (const auto& choice : option.choices ? option.choices() : std::vector<std::string>{}) {
      CHECK(accepted.find("`" + choice + "`") != std::string::npos);
    }
    if (option.allow_all) CHECK(accepted.find("`all`") != std::string::npos);
    if (option.type == ValueType::Switch && option.group != accel::launch::Group::Compatibility) {
      CHECK(accepted == "true/false");
    }
  }
  documented.erase("compute_environment");  // the file's own keys, not launch options
  documented.erase("distributed_type");
  for (const auto& [key, row] : documented) FAIL_CHECK("docs/config.md documents " << key << ", which no option has");
}
