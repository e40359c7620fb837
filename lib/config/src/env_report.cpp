// accel-launch env: versions found by reading installed files, never by linking the libraries.
#include <unistd.h>

#include <cstdio>
#include <iomanip>
#include <map>
#include <sstream>

#include "accel/config/commands.h"
#include "accel/config/locations.h"
#include "accel/config/store.h"
#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/text.h"
#include "accel/launch/resolve.h"
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

constexpr char kTorchVersionHeader[] = "/include/torch/csrc/api/include/torch/version.h";

std::optional<Found> libtorch_version(const std::string& root, const env::Lookup& lookup) {
  auto candidates = with_env_prefix(lookup, {"LIBTORCH", "LIBTORCH_HOME", "TORCH_INSTALL_PREFIX"}, kTorchVersionHeader);
  for (const char* prefix : {"/usr/local/libtorch", "/opt/libtorch", "/usr/local", "/usr"}) {
    candidates.push_back(root + prefix + kTorchVersionHeader);
  }
  return dotted_version(candidates, "TORCH_VERSION_");
}

// Whether the LibTorch whose headers were found has CUDA: its libraries beside the headers say
// (a CPU-only build has libtorch_cpu.so and no libtorch_cuda.so). Empty when they are not there.
std::string libtorch_build(const Found& headers) {
  const std::string prefix = headers.path.substr(0, headers.path.size() - (sizeof kTorchVersionHeader - 1));
  for (const char* lib : {"/lib/", "/lib/x86_64-linux-gnu/", "/lib/aarch64-linux-gnu/"}) {
    if (::access((prefix + lib + "libtorch_cuda.so").c_str(), F_OK) == 0) return ", built with CUDA (" + prefix + lib + "libtorch_cuda.so)";
    if (::access((prefix + lib + "libtorch_cpu.so").c_str(), F_OK) == 0) return ", CPU only (no libtorch_cuda.so beside " + prefix + lib + "libtorch_cpu.so)";
  }
  return "";
}

// A word as a POSIX shell reads it back.
std::string shell_word(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Versions of the chosen Python and of its torch and accelerate, read from their installed
// metadata rather than imported (importing torch takes seconds), and torch's CUDA from its
// torch/version.py. Prints "name value" lines, "-" for what is missing.
constexpr char kPythonProbe[] = R"PY(import sys, os, re, importlib.util, importlib.metadata as m
print("python", sys.version.split()[0])
for n in ("torch", "accelerate"):
    try: print(n, m.version(n))
    except Exception: print(n, "-")
s, c = importlib.util.find_spec("torch"), "-"
if s and s.origin:
    try:
        r = re.search(r"^cuda\b[^=\n]*=\s*[\x22\x27]?([^\x22\x27\n]*)", open(os.path.join(os.path.dirname(s.origin), "version.py")).read(), re.M)
        c = r.group(1) if r else "-"
    except OSError: pass
print("torch_cuda", c)
)PY";

std::map<std::string, std::string> probe_python(const std::string& python) {
  std::map<std::string, std::string> found;
  const std::string command = "timeout 30 " + shell_word(python) + " -c " + shell_word(kPythonProbe) + " 2>/dev/null";
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, pipe)) {
      std::istringstream words(line);
      std::string name, value;
      if (words >> name >> value) found[name] = value;
    }
    ::pclose(pipe);
  }
  return found;
}

// The Python a Python JOB would run under, and what it has.
std::string python_lines(const EnvOptions& options, const env::Lookup& lookup) {
  std::optional<launch::PythonChoice> python;
  try {
    python = launch::choose_python(options.python, lookup);
  } catch (const UsageError& error) {
    return "- Python: " + std::string(error.what()) + "\n";
  }
  if (!python) return "- Python: none (no python3 on PATH; a Python JOB needs one: --python PATH or $ACCEL_PYTHON)\n";
  const auto found = probe_python(python->path);
  const auto value = [&found](const std::string& name) {
    const auto it = found.find(name);
    return it == found.end() || it->second == "-" ? std::optional<std::string>() : std::optional<std::string>(it->second);
  };
  std::string lines = "- Python (runs Python JOBs): " + python->path + ", " +
                      (value("python") ? "Python " + *value("python") : std::string("did not answer")) + " (" +
                      python->source + (python->chosen ? "" : "; --python or $ACCEL_PYTHON choose another") + ")\n";
  const std::string missing = "not installed for this Python";
  std::string torch = value("torch").value_or(missing);
  if (value("torch")) {
    const auto cuda = value("torch_cuda");
    torch += !cuda || *cuda == "None" ? ", CPU only" : ", built for CUDA " + *cuda;
    torch += " (from its installed metadata and torch/version.py)";
  }
  lines += "- torch (that Python's): " + torch + "\n";
  lines += "- accelerate (that Python's): " + value("accelerate").value_or(missing) + "\n";
  return lines;
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
  const auto libtorch = libtorch_version(options.root, lookup);
  report += "- LibTorch (C++ jobs): " + describe_found(libtorch) + (libtorch ? libtorch_build(*libtorch) : "") + "\n";
  report += python_lines(options, lookup);
  // Files on disk, not what a job loads: a CPU-only torch ignores an installed toolkit.
  report += "- CUDA toolkit (installed files): " + describe_found(cuda_version(options.root, lookup)) + "\n";
  report += "- NCCL (installed headers): " + describe_found(nccl_version(options.root, lookup)) + "\n";
  report += config_lines(options, lookup);
  return report;
}

int run_env(const EnvOptions& options, std::ostream& out) {
  out << env_report(options, hardware::probe(), env::process_environment());
  return 0;
}

}  // namespace accel::config
