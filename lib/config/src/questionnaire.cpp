#include "accel/config/questionnaire.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "accel/core/distributed_type.h"
#include "accel/core/env_contract.h"
#include "accel/core/error.h"
#include "accel/core/precision.h"
#include "accel/core/text.h"

namespace accel::config {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

// "" when `answer` is "all" (if allowed) or distinct GPU indices; the reason otherwise.
std::string check_gpu_ids(const std::string& answer, const hardware::Machine& machine, std::size_t wanted) {
  if (answer == "all") return "";
  std::set<long long> seen;
  for (const auto& part : text::split(answer, ',')) {
    const auto id = text::parse_integer(part);
    if (!id || *id < 0) return "'" + text::trim(part) + "' is not a GPU index";
    if (!machine.gpus.empty() && *id >= static_cast<long long>(machine.gpus.size())) {
      return "this machine has GPUs 0 to " + std::to_string(machine.gpus.size() - 1);
    }
    if (!seen.insert(*id).second) return "GPU " + std::to_string(*id) + " is named twice";
  }
  if (wanted > 0 && seen.size() != wanted) {
    return "name " + std::to_string(wanted) + " GPU" + (wanted == 1 ? "" : "s") + ", one per process, or 'all'";
  }
  return "";
}

std::string normalized_ids(const std::string& answer) {
  if (answer == "all") return answer;
  std::vector<std::string> ids;
  for (const auto& part : text::split(answer, ',')) ids.push_back(std::to_string(*text::parse_integer(part)));
  return text::join(ids, ",");
}

}  // namespace

std::string Asker::ask(const std::string& question, const std::optional<std::string>& default_answer,
                       const std::function<std::string(const std::string&)>& check) {
  for (;;) {
    out_ << question;
    if (default_answer) out_ << " [" << *default_answer << "]";
    out_ << ": " << std::flush;
    std::string answer;
    if (!std::getline(in_, answer)) {
      out_ << "\n";
      throw UsageError("the questionnaire ended before its last answer (end of input); nothing was written");
    }
    answer = text::trim(answer);
    if (answer.empty() && default_answer) answer = *default_answer;
    const std::string problem = answer.empty() ? "an answer is needed" : check(answer);
    if (problem.empty()) return answer;
    out_ << "  " << problem << "; please answer again.\n";
  }
}

bool Asker::ask_yes_no(const std::string& question, bool default_answer) {
  const std::string answer = ask(question + " (yes/no)", default_answer ? "yes" : "no", [](const std::string& a) {
    const std::string l = lower(a);
    return l == "yes" || l == "y" || l == "no" || l == "n" ? "" : "'" + a + "' is neither yes nor no";
  });
  return lower(answer)[0] == 'y';
}

int Asker::ask_integer(const std::string& question, int default_answer, int min, int max) {
  const std::string answer = ask(question, std::to_string(default_answer), [&](const std::string& a) {
    const auto value = text::parse_integer(a);
    if (!value || *value < min || *value > max) {
      return "'" + a + "' is not a whole number from " + std::to_string(min) + " to " + std::to_string(max);
    }
    return std::string();
  });
  return static_cast<int>(*text::parse_integer(answer));
}

Config ask_config(Asker& asker, const hardware::Machine& machine) {
  const int gpus = static_cast<int>(machine.gpus.size());
  Config config;
  config.compute_environment = "LOCAL_MACHINE";
  config.debug = false;

  const std::string kind = lower(asker.ask(
      "Which kind of run is this config for? no (one process) / multi-cpu / multi-gpu", gpus > 1 ? "multi-gpu" : "no",
      [](const std::string& a) {
        const std::string l = lower(a);
        return l == "no" || l == "multi-cpu" || l == "multi-gpu" ? "" : "'" + a + "' is not one of no, multi-cpu, multi-gpu";
      }));
  config.distributed_type = to_string(kind == "no"          ? DistributedType::kNo
                                      : kind == "multi-cpu" ? DistributedType::kMultiCpu
                                                            : DistributedType::kMultiGpu);

  config.num_machines = kind == "no" ? 1 : asker.ask_integer("How many machines will run the job?", 1, 1, 65536);
  config.machine_rank = 0;
  if (*config.num_machines > 1) {
    config.machine_rank = asker.ask_integer("What is the rank of this machine (0 is the main machine)?", 0, 0, *config.num_machines - 1);
    config.main_process_ip = asker.ask("What is the IP address or host name of the main machine (rank 0)?", std::nullopt,
                                       [](const std::string& a) {
                                         return a.find_first_of(" \t") == std::string::npos ? "" : "an address has no spaces";
                                       });
    config.main_process_port = asker.ask_integer("Which port does the main machine listen on?", env::kDefaultMasterPort, 0, 65535);
    config.same_network = asker.ask_yes_no("Are all the machines on the same local network?", true);
  }

  if (kind == "no") {
    config.use_cpu = asker.ask_yes_no("Run on the CPU only, even where a GPU is present?", gpus == 0);
  } else {
    config.use_cpu = kind == "multi-cpu";
  }

  // The total over all machines, as accelerate asks and reads it; each machine runs its share.
  const int machines = *config.num_machines;
  const auto ask_total = [&](const std::string& question, int per_machine) {
    const std::string answer =
        asker.ask(question, std::to_string(per_machine * machines), [machines](const std::string& a) {
          const auto value = text::parse_integer(a);
          if (!value || *value < machines || *value > 4096 || *value % machines != 0) {
            return "'" + a + "' is not a whole number from " + std::to_string(machines) + " to 4096" +
                   (machines > 1 ? " that divides evenly among the " + std::to_string(machines) + " machines" : std::string());
          }
          return std::string();
        });
    return static_cast<int>(*text::parse_integer(answer));
  };
  if (kind == "no") {
    config.num_processes = 1;
  } else if (kind == "multi-cpu") {
    config.num_processes = ask_total("How many CPU processes in total, over all machines?", 2);
  } else {
    config.num_processes = ask_total("How many processes in total, over all machines (one per GPU)?", std::max(gpus, 2));
  }

  if (!*config.use_cpu) {
    const std::size_t wanted = static_cast<std::size_t>(*config.num_processes / machines);
    const std::string ids = asker.ask("Which GPUs should be used (ids such as 0,1 or all)?", std::string("all"),
                                      [&](const std::string& a) { return check_gpu_ids(a, machine, wanted); });
    config.gpu_ids = normalized_ids(ids);
  }

  config.mixed_precision = lower(asker.ask("Which mixed precision? no / fp16 / bf16", std::string("no"), [](const std::string& a) {
    const auto precision = parse_mixed_precision(lower(a));
    return precision && *precision != MixedPrecision::kFp8 ? "" : "'" + a + "' is not one of " + accepted_mixed_precisions(false);
  }));
  return config;
}

}  // namespace accel::config
