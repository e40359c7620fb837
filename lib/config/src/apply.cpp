#include "accel/config/apply.h"

#include <type_traits>
#include <variant>

#include "accel/config/locations.h"
#include "accel/core/distributed_type.h"
#include "accel/core/error.h"
#include "accel/core/text.h"
#include "accel/launch/options.h"

namespace accel::config {
namespace {

// Python's str() of a value read from a file: what accelerate's launcher writes into the job's
// environment after copying the file's sections into its arguments.
std::optional<std::string> python_text(const Node& node) {
  switch (node.kind) {
    case Node::Kind::Null:
      return std::nullopt;
    case Node::Kind::Bool:
      return std::string(node.text == "true" ? "True" : "False");
    case Node::Kind::Sequence: {
      std::vector<std::string> items;
      for (const Node& item : node.items) {
        const auto text = python_text(item);
        items.push_back(item.kind == Node::Kind::String ? "'" + item.text + "'" : text.value_or("None"));
      }
      return "[" + text::join(items, ", ") + "]";
    }
    case Node::Kind::Map:
      return std::nullopt;  // no accelerate setting takes a mapping
    default:
      return node.text;
  }
}

// accelerate copies each section's keys into its launch arguments, adding the section's prefix
// where a key lacks it (fsdp_config: {offload_params} -> fsdp_offload_params).
std::string argument_name(const std::string& section, const std::string& key) {
  const auto prefixed = [&key](const std::string& prefix) { return key.rfind(prefix, 0) == 0 ? key : prefix + key; };
  if (section == "fsdp_config") return prefixed("fsdp_");
  if (section == "fp8_config") return prefixed("fp8_");
  if (section == "dynamo_config") return prefixed("dynamo_");
  return key;
}

void fill_job_settings(launch::LaunchRequest& request, const Config& config, bool precision_from_file) {
  for (const auto& [section, node] : config.ignored) {
    if (node.kind != Node::Kind::Map || section.size() < 7 || section.compare(section.size() - 7, 7, "_config") != 0) {
      continue;
    }
    for (const Entry& entry : node.entries) {
      if (const auto value = python_text(entry.value)) request.job_settings.emplace(argument_name(section, entry.key), *value);
    }
  }
  if (const auto it = request.job_settings.find("mpirun_hostfile"); it != request.job_settings.end() && !request.mpirun_hostfile) {
    request.mpirun_hostfile = it->second;
  }
  if (config.enable_cpu_affinity.value_or(false)) request.job_settings.emplace("enable_cpu_affinity", "True");
  // Which DeepSpeed settings the file chose: accelerate tells the job so it can refuse a
  // DeepSpeed JSON that sets them again.
  if (const auto it = config.ignored.find("deepspeed_config"); it != config.ignored.end() && it->second.kind == Node::Kind::Map) {
    std::vector<std::string> fields;
    for (const Entry& entry : it->second.entries) fields.push_back(entry.key);
    if (precision_from_file) fields.push_back("mixed_precision");
    request.job_settings.emplace("deepspeed_fields_from_accelerate_config", text::join(fields, ","));
  }
  if (const auto it = config.ignored.find("parallelism_config"); it != config.ignored.end() && !it->second.is_empty_setting()) {
    request.job_settings.emplace("use_parallelism_config", "True");
  }
}

// The schema accepts only accelerate's spellings (naming file, line and the accepted values), so a
// Config whose mode does not parse was built in code, wrongly.
DistributedType file_mode(const Config& config) {
  if (!config.distributed_type) return DistributedType::kNo;
  const auto mode = parse_distributed_type(*config.distributed_type);
  if (!mode) {
    throw Error("distributed_type '" + *config.distributed_type + "' is not one of " +
                text::join(distributed_type_names(), ", ") + " (a config built without the schema)");
  }
  return *mode;
}

}  // namespace

void fill_request(launch::LaunchRequest& request, const Config& config, const std::map<std::string, std::string>& origins) {
  // The command line's mode (--cpu, --multi_gpu, --use_fsdp, ...) replaces the file's, as in accelerate.
  const bool mode_given = request.distributed_type || request.use_cpu;
  const bool precision_from_file = config.mixed_precision && !request.mixed_precision;
  const DistributedType mode = file_mode(config);
  if (!mode_given) {
    if (config.distributed_type) request.distributed_type = mode;
    if (mode == DistributedType::kMultiCpu || config.use_cpu.value_or(false)) request.use_cpu = true;
  }
  // Each setting the command line left empty, remembering where its value was read.
  for (const launch::LaunchOption& option : launch::launch_options()) {
    if (!option.key || option.member == launch::SettingMember(&launch::LaunchSettings::use_cpu)) continue;
    std::visit(
        [&](auto member) {
          if constexpr (!std::is_same_v<decltype(member), std::monostate>) {
            if (request.*member || !(config.*member)) return;
            request.*member = config.*member;
            if (const auto it = origins.find(option.key); it != origins.end()) request.origins[option.key] = it->second;
          }
        },
        option.member);
  }
  // accelerate's simple launcher runs one process for NO.
  if (request.distributed_type == DistributedType::kNo && !request.num_processes) request.num_processes = 1;
  fill_job_settings(request, config, precision_from_file);
}

void apply_config_file(launch::LaunchRequest& request, std::ostream& notes, const env::Lookup& lookup) {
  const auto located = find_config_file(request.config_file, lookup);
  if (!located) return;
  if (!request.quiet.value_or(false)) {
    notes << "accel-launch: using config file " << located->path << " (from " << describe(located->source) << ")\n";
  }
  const LoadedConfig loaded = load_config(located->path);
  for (const auto& note : loaded.notes) notes << "accel-launch: " << note << "\n";
  fill_request(request, loaded.config, loaded.origins);
  request.config_file = located->path;
}

void apply_config_file(launch::LaunchRequest& request, std::ostream& notes) {
  apply_config_file(request, notes, request.environment);
}

}  // namespace accel::config
