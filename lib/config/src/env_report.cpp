// accel-launch env: versions found by reading installed files, never by linking the libraries.
#include <iomanip>
#include <sstream>

#include "accel/config/commands.h"
#include "accel/config/locations.h"
#include "accel/config/store.h"
#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/text.h"
#include "formats.h"

namespace accel::config {
namespace {

struct Found {
  std::string version;
  std::string path;
};

// The value of `#define NAME value` in a C header.
std::optional<std::string> define_value(const std::string& header, const std::string& name) {
  std::istringstream lines(header);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string directive, word, value;
    if (words >> directive >> word >> value && directive == "#define" && word == name) return value;
  }
  return std::nullopt;
}

std::optional<Found> dotted_version(const std::vector<std::string>& headers, const std::string& prefix) {
  for (const auto& path : headers) {
    const auto text = files::read_if_present(path);
    if (!text) continue;
    const auto major = define_value(*text, prefix + "MAJOR");
    const auto minor = define_value(*text, prefix + "MINOR");
    const auto patch = define_value(*text, prefix + "PATCH");
    if (major && minor) return Found{*major + "." + *minor + (patch ? "." + *patch : ""), path};
  }
  return std::nullopt;
}

std::vector<std::string> with_env_prefix(const env::Lookup& lookup, const std::vector<std::string>& variables,
                                         const std::string& suffix) {
  std::vector<std::string> paths;
  for (const auto& variable : variables) {
    if (auto value = lookup(variable); value && !value->empty()) paths.push_back(*value + suffix);
  }
  return paths;
}

std::optional<Found> libtorch_version(const std::string& root, const env::Lookup& lookup) {
  const std::string header = "/include/torch/csrc/api/include/torch/version.h";
  auto candidates = with_env_prefix(lookup, {"LIBTORCH", "LIBTORCH_HOME", "TORCH_INSTALL_PREFIX"}, header);
  for (const char* prefix : {"/usr/local/libtorch", "/opt/libtorch", "/usr/local", "/usr"}) candidates.push_back(root + prefix + header);
  return dotted_version(candidates, "TORCH_VERSION_");
}

std::optional<Found> cuda_version(const std::string& root, const env::Lookup& lookup) {
  auto homes = with_env_prefix(lookup, {"CUDA_HOME", "CUDA_PATH"}, "");
  homes.push_back(root + "/usr/local/cuda");
  for (const auto& home : homes) {
    if (const auto json = files::read_if_present(home + "/version.json")) {
      try {
        std::vector<std::string> duplicates;
        const Node document = formats::parse_json(*json, home + "/version.json", duplicates);
        for (const Entry& entry : document.entries) {
          if (entry.key != "cuda") continue;
          for (const Entry& field : entry.value.entries) {
            if (field.key == "version") return Found{field.value.text, home + "/version.json"};
          }
        }
      } catch (const UsageError&) {
        // A damaged version.json: fall through to the other sources.
      }
    }
    if (const auto txt = files::read_if_present(home + "/version.txt")) {
      const auto at = txt->find("Version ");
      if (at != std::string::npos) return Found{text::trim(txt->substr(at + 8, txt->find('\n', at) - at - 8)), home + "/version.txt"};
    }
  }
  for (const auto& header : {root + "/usr/local/cuda/include/cuda.h", root + "/usr/include/cuda.h"}) {
    const auto text = files::read_if_present(header);
    if (!text) continue;
    if (const auto code = text::parse_integer(define_value(*text, "CUDA_VERSION").value_or(""))) {
      return Found{std::to_string(*code / 1000) + "." + std::to_string(*code % 1000 / 10), header};
    }
  }
  return std::nullopt;
}

std::optional<Found> nccl_version(const std::string& root, const env::Lookup& lookup) {
  auto candidates = with_env_prefix(lookup, {"NCCL_HOME", "NCCL_ROOT"}, "/include/nccl.h");
  for (const char* dir : {"/usr/local/cuda/include", "/usr/local/include", "/usr/include"}) candidates.push_back(root + dir + "/nccl.h");
  return dotted_version(candidates, "NCCL_");
}

std::string describe_found(const std::optional<Found>& found) {
  return found ? found->version + " (" + found->path + ")" : "not found";
}

std::string os_name(const std::string& root, const hardware::Machine& machine) {
  std::string name = machine.os.empty() ? "unknown" : machine.os;
  if (const auto release = files::read_if_present(root + "/etc/os-release")) {
    std::istringstream lines(*release);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
      std::string pretty = line.substr(12);
      if (pretty.size() >= 2 && pretty.front() == '"' && pretty.back() == '"') pretty = pretty.substr(1, pretty.size() - 2);
      name += " (" + pretty + ")";
    }
  }
  return name;
}

std::string gibibytes(std::uint64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0) << " GiB";
  return out.str();
}

std::string gpu_lines(const hardware::Machine& machine) {
  if (machine.gpus.empty()) return "- GPUs: none found\n";
  std::string lines = "- GPUs: " + std::to_string(machine.gpus.size()) + "\n";
  for (const auto& gpu : machine.gpus) {
    lines += "    " + std::to_string(gpu.index) + ": " + (gpu.name.empty() ? "unknown" : gpu.name);
    if (gpu.memory_bytes > 0) lines += ", " + gibibytes(gpu.memory_bytes);
    lines += "\n";
  }
  lines += "- GPU driver: " + (machine.gpu_driver.empty() ? std::string("unknown") : machine.gpu_driver) + "\n";
  return lines;
}

std::string config_lines(const EnvOptions& options, const env::Lookup& lookup) {
  const auto located = find_config_file(options.config_file, lookup);
  if (!located) return "- Config file: none (command-line values and guesses only)\n";
  std::string lines = "- Config file: " + located->path + " (from " + describe(located->source) + ")\n";
  try {
    const LoadedConfig loaded = load_config(located->path);
    lines += "- Config:\n";
    std::istringstream text(to_text(loaded.config, Format::Yaml));
    for (std::string line; std::getline(text, line);) lines += "    " + line + "\n";
  } catch (const Error& error) {
    lines += "- Config: cannot be used: " + std::string(error.what()) + "\n";
  }
  return lines;
}

}  // namespace

std::string env_report(const EnvOptions& options, const hardware::Machine& machine, const env::Lookup& lookup) {
  std::string report = "Copy and paste the text below into your bug report:\n\n";
  report += "- accel-launch version: " + options.version + "\n";
  report += "- Platform: " + os_name(options.root, machine) + "\n";
  report += "- CPUs: " + std::to_string(machine.cpus) + " usable by this process\n";
  report += "- RAM: " + (machine.memory_bytes ? gibibytes(machine.memory_bytes) : std::string("unknown")) + "\n";
  report += gpu_lines(machine);
  report += "- LibTorch: " + describe_found(libtorch_version(options.root, lookup)) + "\n";
  report += "- CUDA: " + describe_found(cuda_version(options.root, lookup)) + "\n";
  report += "- NCCL: " + describe_found(nccl_version(options.root, lookup)) + "\n";
  report += config_lines(options, lookup);
  return report;
}

int run_env(const EnvOptions& options, std::ostream& out) {
  out << env_report(options, hardware::probe(), env::process_environment());
  return 0;
}

}  // namespace accel::config
