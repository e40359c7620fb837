#include "accel/core/env_contract.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "accel/core/error.h"
#include "accel/core/text.h"

namespace accel::env {
namespace {

int read_int(const Lookup& lookup, const std::string& name, int fallback, int minimum) {
  if (name.empty()) return fallback;
  const auto raw = lookup(name);
  if (!raw) return fallback;
  // SLURM_NTASKS_PER_NODE may read "2(x3)": the count before the repetition marker is ours.
  const std::string value = name == "SLURM_NTASKS_PER_NODE" ? raw->substr(0, raw->find('(')) : *raw;
  const auto parsed = text::parse_integer(value);
  if (!parsed || *parsed < minimum || *parsed > 1'000'000) {
    throw UsageError("environment variable " + name + "='" + *raw + "' is not a valid value; expected an integer >= " +
                     std::to_string(minimum));
  }
  return static_cast<int>(*parsed);
}

// SLURM_TASKS_PER_NODE lists per-node task counts in node order, compressed: "2(x3),1" means
// nodes 0-2 run 2 tasks each and node 3 runs 1. Unlike SLURM_NTASKS_PER_NODE it is always set.
int slurm_tasks_on_node(const std::string& spec, int node) {
  int first_node = 0;
  for (const auto& entry : text::split(spec, ',')) {
    const auto open = entry.find("(x");
    const auto count = text::parse_integer(entry.substr(0, open));
    const auto repeat = open == std::string::npos ? std::optional<long long>(1)
                                                  : text::parse_integer(entry.substr(open + 2, entry.find(')') - open - 2));
    if (!count || !repeat || *count < 1 || *repeat < 1) {
      throw UsageError("environment variable SLURM_TASKS_PER_NODE='" + spec +
                       "' is not a valid value; expected counts such as 2(x3),1");
    }
    if (node < first_node + *repeat) return static_cast<int>(*count);
    first_node += static_cast<int>(*repeat);
  }
  throw UsageError("environment variable SLURM_TASKS_PER_NODE='" + spec + "' lists " + std::to_string(first_node) +
                   " node(s) but SLURM_NODEID is " + std::to_string(node));
}

}  // namespace

// The one place that reads the process environment by name; everything else takes a Lookup.
Lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

bool read_flag(const Lookup& lookup, const std::string& name, bool fallback) {
  const auto raw = lookup(name);
  if (!raw) return fallback;
  std::string value = text::trim(*raw);
  std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
  if (value.empty()) return fallback;
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  throw UsageError("environment variable " + name + "='" + *raw + "' is not a boolean; expected true or false");
}

std::chrono::milliseconds read_timeout(const Lookup& lookup, std::chrono::milliseconds fallback) {
  const auto raw = lookup(kTimeoutSeconds);
  if (!raw) return fallback;
  const std::string value = text::trim(*raw);
  char* end = nullptr;
  const double seconds = value.empty() ? 0 : std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(seconds) || seconds <= 0 ||
      seconds > 1e7) {
    throw UsageError(std::string("environment variable ") + kTimeoutSeconds + "='" + *raw +
                     "' is not a valid timeout; expected a positive number of seconds, e.g. 300 or 0.5");
  }
  return std::chrono::milliseconds(std::max<long long>(1, std::llround(seconds * 1000)));
}

namespace {

// A host list may expand to at most this many names: a typo such as "n[1-99999999]" must not
// exhaust memory.
constexpr std::size_t kMaxHosts = 100'000;

[[noreturn]] void bad_hostlist(const std::string& variable, const std::string& hostlist, const std::string& why) {
  throw UsageError("environment variable " + variable + "='" + hostlist + "' is not a valid SLURM host list: " + why +
                   "; expected names such as gpu-a[07-08,10],cpu-b3");
}

// "07-08,10" -> {"07", "08", "10"}: each range keeps the width of its first value.
std::vector<std::string> expand_bracket(const std::string& variable, const std::string& hostlist,
                                        const std::string& inner) {
  std::vector<std::string> values;
  for (const auto& range : text::split(inner, ',')) {
    const auto dash = range.find('-');
    const std::string low = range.substr(0, dash);
    const std::string high = dash == std::string::npos ? low : range.substr(dash + 1);
    const bool digits = !low.empty() && !high.empty() && low.find_first_not_of("0123456789") == std::string::npos &&
                        high.find_first_not_of("0123456789") == std::string::npos;
    const auto first = digits ? text::parse_integer(low) : std::nullopt;
    const auto last = digits ? text::parse_integer(high) : std::nullopt;
    if (!first || !last) bad_hostlist(variable, hostlist, "'" + range + "' is not a number or a range like 07-10");
    if (*last < *first) bad_hostlist(variable, hostlist, "the range '" + range + "' runs backwards");
    if (static_cast<std::size_t>(*last - *first) >= kMaxHosts) {
      bad_hostlist(variable, hostlist, "the range '" + range + "' names more than " + std::to_string(kMaxHosts) + " hosts");
    }
    for (long long value = *first; value <= *last; ++value) {
      std::string number = std::to_string(value);
      if (number.size() < low.size()) number.insert(0, low.size() - number.size(), '0');
      values.push_back(number);
    }
  }
  return values;
}

}  // namespace

std::vector<std::string> expand_slurm_hostlist(const std::string& variable, const std::string& hostlist) {
  std::vector<std::string> hosts;
  // Split at commas outside brackets; each piece is one name pattern.
  std::vector<std::string> patterns{""};
  int depth = 0;
  for (char c : hostlist) {
    if (c == '[' && ++depth > 1) bad_hostlist(variable, hostlist, "brackets cannot nest");
    if (c == ']' && --depth < 0) bad_hostlist(variable, hostlist, "a ']' has no '['");
    if (c == ',' && depth == 0) {
      patterns.emplace_back();
    } else {
      patterns.back() += c;
    }
  }
  if (depth != 0) bad_hostlist(variable, hostlist, "a '[' is not closed");
  for (const auto& raw : patterns) {
    const std::string pattern = text::trim(raw);
    if (pattern.empty()) bad_hostlist(variable, hostlist, "it has an empty name");
    std::vector<std::string> names{""};
    std::size_t at = 0;
    while (at < pattern.size()) {
      const auto open = pattern.find('[', at);
      const std::string literal = pattern.substr(at, open == std::string::npos ? std::string::npos : open - at);
      for (auto& name : names) name += literal;
      if (open == std::string::npos) break;
      const auto close = pattern.find(']', open);
      std::vector<std::string> grown;
      for (const auto& name : names) {
        for (const auto& value : expand_bracket(variable, hostlist, pattern.substr(open + 1, close - open - 1))) {
          grown.push_back(name + value);
        }
      }
      if (grown.size() + hosts.size() > kMaxHosts) {
        bad_hostlist(variable, hostlist, "it names more than " + std::to_string(kMaxHosts) + " hosts");
      }
      names = std::move(grown);
      at = close + 1;
    }
    hosts.insert(hosts.end(), names.begin(), names.end());
  }
  return hosts;
}

std::string first_slurm_host(const std::string& nodelist) {
  return expand_slurm_hostlist("SLURM_JOB_NODELIST", nodelist).front();
}

WorldInfo detect_world(const Lookup& lookup) {
  WorldInfo info;
  const LauncherVariables* dialect = nullptr;
  for (const auto& candidate : kLauncherVariables) {
    if (lookup(candidate.rank) && lookup(candidate.world_size)) {
      dialect = &candidate;
      break;
    }
  }
  if (dialect == nullptr) return info;

  info.launcher = dialect->launcher;
  if (info.launcher == std::string("torchrun") && lookup(kLauncher)) info.launcher = *lookup(kLauncher);
  info.world_size = read_int(lookup, dialect->world_size, 1, 1);
  info.rank = read_int(lookup, dialect->rank, 0, 0);
  info.local_rank = read_int(lookup, dialect->local_rank, info.rank, 0);
  info.local_world_size = read_int(lookup, dialect->local_world_size, info.world_size, 1);
  const bool slurm = info.launcher == std::string("SLURM");
  if (const auto per_node = lookup("SLURM_TASKS_PER_NODE"); slurm && !lookup(dialect->local_world_size) && per_node) {
    info.local_world_size = slurm_tasks_on_node(*per_node, read_int(lookup, dialect->node_rank, 0, 0));
  }
  info.node_rank = read_int(lookup, dialect->node_rank, info.rank / info.local_world_size, 0);
  info.num_nodes = read_int(lookup, slurm ? "SLURM_JOB_NUM_NODES" : kGroupWorldSize,
                            (info.world_size + info.local_world_size - 1) / info.local_world_size, 1);
  if (info.rank >= info.world_size) {
    throw UsageError(std::string("environment variable ") + dialect->rank + "=" + std::to_string(info.rank) +
                     " must be smaller than " + dialect->world_size + "=" + std::to_string(info.world_size));
  }
  if (info.local_rank >= info.local_world_size) {
    throw UsageError(std::string("local rank ") + std::to_string(info.local_rank) +
                     " must be smaller than the local world size " + std::to_string(info.local_world_size));
  }

  info.launcher_hosts_store = read_flag(lookup, kUseAgentStore, false);
  info.restart_count = read_int(lookup, kRestartCount, 0, 0);
  info.master_port = read_int(lookup, kMasterPort, kDefaultMasterPort, 1);
  if (info.master_port > 65535) {
    throw UsageError("environment variable MASTER_PORT=" + std::to_string(info.master_port) +
                     " is out of range; expected 1..65535");
  }
  if (auto addr = lookup(kMasterAddr); addr && !addr->empty()) {
    info.master_addr = *addr;
  } else if (auto nodes = lookup("SLURM_JOB_NODELIST"); nodes && info.launcher == std::string("SLURM")) {
    info.master_addr = first_slurm_host(*nodes);
  } else if (info.world_size > info.local_world_size) {
    throw UsageError("this looks like a multi-node run (world size " + std::to_string(info.world_size) +
                     ", " + std::to_string(info.local_world_size) +
                     " per node) but MASTER_ADDR is not set; export MASTER_ADDR=<address of rank 0's host>");
  } else {
    info.master_addr = kDefaultMasterAddr;
  }
  return info;
}

}  // namespace accel::env
