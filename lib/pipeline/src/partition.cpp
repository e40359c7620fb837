#include "accel/pipeline/partition.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "accel/core/error.h"
#include "accel/core/files.h"
#include "accel/core/text.h"

#include <nlohmann/json.hpp>

namespace accel::pipeline {
namespace {

constexpr const char* kAccepted =
    "accepted: \"auto\", \"parameters\", block names that start stages 2..S, or block counts per stage";

std::string block_range(const Plan& plan, const StagePlan& stage) {
  const auto& first = plan.blocks[stage.first_block].name;
  if (stage.num_blocks == 1) return first;
  return first + " .. " + plan.blocks[stage.first_block + stage.num_blocks - 1].name;
}

std::string human_count(std::int64_t n) {
  char buffer[32];
  if (n >= 1000000) {
    std::snprintf(buffer, sizeof buffer, "%.2fM", n / 1e6);
  } else if (n >= 1000) {
    std::snprintf(buffer, sizeof buffer, "%.1fK", n / 1e3);
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld", static_cast<long long>(n));
  }
  return buffer;
}

bool ends_with_component(const std::string& text, const std::string& tail) {
  return text.size() > tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0 &&
         text[text.size() - tail.size() - 1] == '.';
}

// The block a split point names: the block of that name, else the one block whose name is a
// dotted tail of it or has it as a dotted tail, so that Hugging Face module paths work
// ("transformer.h.6" names block "h.6"). Returns `name` itself when nothing or several match
// (the caller reports it); throws for an ambiguous path.
std::string resolve_block_name(const std::string& name, const std::vector<std::string>& blocks) {
  if (std::find(blocks.begin(), blocks.end(), name) != blocks.end()) return name;
  std::vector<std::string> matches;
  for (const auto& block : blocks) {
    if (ends_with_component(name, block) || ends_with_component(block, name)) matches.push_back(block);
  }
  if (matches.size() > 1) {
    throw UsageError("split point '" + name + "' could name any of the blocks " + text::join(matches, ", ") +
                     "; write the block's own name");
  }
  return matches.empty() ? name : matches.front();
}

std::vector<int> counts_from_names(const std::vector<BlockInfo>& blocks, int num_stages,
                                   const std::vector<std::string>& names) {
  if (static_cast<int>(names.size()) != num_stages - 1) {
    throw UsageError("split_points names " + std::to_string(names.size()) + " block(s) (" +
                     text::join(names, ", ") + ") but " + std::to_string(num_stages) +
                     " processes need exactly " + std::to_string(num_stages - 1) +
                     ": the first block of each stage after the first");
  }
  std::map<std::string, int> index;
  std::vector<std::string> all_names;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    index[blocks[i].name] = static_cast<int>(i);
    all_names.push_back(blocks[i].name);
  }
  std::vector<int> counts;
  int previous = 0;
  for (const auto& name : names) {
    auto found = index.find(resolve_block_name(name, all_names));
    if (found == index.end()) {
      std::string hint;
      if (auto close = text::closest_match(name, all_names)) hint = " (did you mean '" + *close + "'?)";
      throw UsageError("split point '" + name + "' is not a block of this model" + hint +
                       "; its blocks are: " + text::join(all_names, ", "));
    }
    if (found->second <= previous) {
      throw UsageError("split point '" + name + "' must come after '" + blocks[previous].name +
                       "' in block order, and no stage may be empty (the first block, '" +
                       blocks[0].name + "', always starts stage 1)");
    }
    counts.push_back(found->second - previous);
    previous = found->second;
  }
  counts.push_back(static_cast<int>(blocks.size()) - previous);
  return counts;
}

void check_counts(const std::vector<BlockInfo>& blocks, int num_stages, const std::vector<int>& counts) {
  std::vector<std::string> shown;
  long long total = 0;
  for (int c : counts) {
    shown.push_back(std::to_string(c));
    total += c;
  }
  if (static_cast<int>(counts.size()) != num_stages) {
    throw UsageError("split_points gives block counts for " + std::to_string(counts.size()) +
                     " stage(s) (" + text::join(shown, ",") + ") but there are " +
                     std::to_string(num_stages) + " processes: give one count per process");
  }
  for (int c : counts) {
    if (c < 1) {
      throw UsageError("split_points block counts (" + text::join(shown, ",") +
                       ") leave a stage empty: every count must be at least 1");
    }
  }
  if (total != static_cast<long long>(blocks.size())) {
    throw UsageError("split_points block counts (" + text::join(shown, ",") + ") add up to " +
                     std::to_string(total) + " but the model has " + std::to_string(blocks.size()) +
                     " blocks");
  }
}

}  // namespace

SplitPoints::SplitPoints(const char* mode) : SplitPoints(std::string(mode)) {}

SplitPoints::SplitPoints(const std::string& mode) {
  if (mode == "auto") {
    mode_ = Mode::kAuto;
  } else if (mode == "parameters") {
    mode_ = Mode::kParameters;
  } else {
    throw UsageError("split_points \"" + mode + "\" is not a mode; " + kAccepted);
  }
}

SplitPoints SplitPoints::at(std::vector<std::string> names) {
  SplitPoints points;
  points.mode_ = Mode::kNames;
  points.names_ = std::move(names);
  return points;
}

SplitPoints SplitPoints::counts(std::vector<int> blocks_per_stage) {
  SplitPoints points;
  points.mode_ = Mode::kCounts;
  points.counts_ = std::move(blocks_per_stage);
  return points;
}

SplitPoints SplitPoints::load(const std::string& path) {
  const files::ReadResult read = files::try_read_whole(path);
  if (!read.ok()) throw InputFileError(path, "cannot open the pipeline plan", read.error);
  const auto json = nlohmann::json::parse(read.contents, nullptr, false);
  const auto found = json.is_object() ? json.find("split_points") : json.end();
  if (json.is_discarded() || !json.is_object() || found == json.end() || !found->is_array()) {
    throw InputFileError(path, "is not a pipeline plan: expected a JSON object with a \"split_points\" list of block "
                          "names, as PipelineOptions::save_plan writes");
  }
  std::vector<std::string> names;
  for (const auto& name : *found) {
    if (!name.is_string()) throw InputFileError(path, "\"split_points\" must list block names (strings), got " + name.dump());
    names.push_back(name.get<std::string>());
  }
  return at(std::move(names));
}

SplitPoints SplitPoints::parse(const std::string& text) {
  const std::string trimmed = text::trim(text);
  if (trimmed == "auto" || trimmed == "parameters") return SplitPoints(trimmed);
  if (trimmed.size() > 5 && trimmed.compare(trimmed.size() - 5, 5, ".json") == 0) return load(trimmed);
  if (trimmed.empty()) throw UsageError(std::string("split_points is empty; ") + kAccepted);
  std::vector<std::string> parts;
  for (const auto& part : text::split(trimmed, ',')) parts.push_back(text::trim(part));
  std::vector<int> numbers;
  for (const auto& part : parts) {
    auto n = text::parse_integer(part);
    if (!n || *n > std::numeric_limits<int>::max() || *n < std::numeric_limits<int>::min()) break;
    numbers.push_back(static_cast<int>(*n));
  }
  if (numbers.size() == parts.size()) return counts(numbers);
  return at(parts);
}

std::string SplitPoints::describe() const {
  switch (mode_) {
    case Mode::kAuto:
      return "auto (balanced by measured time)";
    case Mode::kParameters:
      return "parameters (balanced by parameter count)";
    case Mode::kNames:
      return "at " + text::join(names_, ", ");
    case Mode::kCounts: {
      std::vector<std::string> shown;
      for (int c : counts_) shown.push_back(std::to_string(c));
      return "block counts " + text::join(shown, ",");
    }
  }
  return {};
}

std::vector<int> linear_partition(const std::vector<double>& costs, int num_groups,
                                  const std::vector<double>& weights, double max_weight) {
  const int n = static_cast<int>(costs.size());
  if (num_groups < 1 || num_groups > n) return {};
  std::vector<double> cost_prefix(n + 1, 0), weight_prefix(n + 1, 0);
  for (int i = 0; i < n; ++i) {
    cost_prefix[i + 1] = cost_prefix[i] + costs[i];
    weight_prefix[i + 1] = weight_prefix[i] + (weights.empty() ? 0.0 : weights[i]);
  }
  const double inf = std::numeric_limits<double>::infinity();
  // best[g][i]: smallest achievable largest-group cost for the first i items in g groups.
  std::vector<std::vector<double>> best(num_groups + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<int>> cut(num_groups + 1, std::vector<int>(n + 1, -1));
  best[0][0] = 0;
  for (int g = 1; g <= num_groups; ++g) {
    for (int i = g; i <= n - (num_groups - g); ++i) {
      for (int p = g - 1; p < i; ++p) {
        if (best[g - 1][p] == inf) continue;
        if (max_weight > 0 && weight_prefix[i] - weight_prefix[p] > max_weight) continue;
        const double candidate = std::max(best[g - 1][p], cost_prefix[i] - cost_prefix[p]);
        if (candidate < best[g][i]) {
          best[g][i] = candidate;
          cut[g][i] = p;
        }
      }
    }
  }
  if (best[num_groups][n] == inf) return {};
  std::vector<int> sizes(num_groups);
  for (int g = num_groups, i = n; g >= 1; --g) {
    sizes[g - 1] = i - cut[g][i];
    i = cut[g][i];
  }
  return sizes;
}

Plan make_plan(const std::vector<BlockInfo>& blocks, int num_stages, const SplitPoints& split_points,
               const std::vector<double>& block_seconds, std::int64_t max_stage_parameters) {
  const int num_blocks = static_cast<int>(blocks.size());
  if (num_stages < 1) throw UsageError("a pipeline needs at least one process, got " + std::to_string(num_stages));
  if (num_blocks < num_stages) {
    throw UsageError("the model has " + std::to_string(num_blocks) + " block(s) but there are " +
                     std::to_string(num_stages) + " processes: every process needs a stage of at least one " +
                     "block, so run with at most " + std::to_string(num_blocks) + " processes");
  }
  Plan plan;
  plan.blocks = blocks;
  plan.method = split_points.describe();
  std::vector<double> parameters;
  for (const auto& b : blocks) parameters.push_back(static_cast<double>(b.parameter_count));

  std::vector<int> counts;
  switch (split_points.mode()) {
    case SplitPoints::Mode::kNames:
      counts = counts_from_names(blocks, num_stages, split_points.names());
      break;
    case SplitPoints::Mode::kCounts:
      counts = split_points.block_counts();
      break;
    case SplitPoints::Mode::kParameters:
      counts = linear_partition(parameters, num_stages);
      break;
    case SplitPoints::Mode::kAuto: {
      if (block_seconds.size() != blocks.size()) {
        throw Error("split_points \"auto\" needs a measured time for each of the " + std::to_string(num_blocks) +
                    " blocks, got " + std::to_string(block_seconds.size()));
      }
      counts = linear_partition(block_seconds, num_stages, parameters, static_cast<double>(max_stage_parameters));
      if (counts.empty()) {
        auto largest = std::max_element(blocks.begin(), blocks.end(), [](const BlockInfo& a, const BlockInfo& b) {
          return a.parameter_count < b.parameter_count;
        });
        throw UsageError("split_points \"auto\" found no way to give each of the " + std::to_string(num_stages) +
                         " processes at most " + human_count(max_stage_parameters) +
                         " parameters (its memory budget); the largest block, '" + largest->name + "', has " +
                         human_count(largest->parameter_count) + ": use more processes or more memory per process");
      }
      break;
    }
  }
  check_counts(blocks, num_stages, counts);

  int first = 0;
  for (int count : counts) {
    StagePlan stage;
    stage.first_block = first;
    stage.num_blocks = count;
    for (int i = first; i < first + count; ++i) {
      stage.parameter_count += blocks[i].parameter_count;
      if (block_seconds.size() == blocks.size()) stage.estimated_seconds += block_seconds[i];
    }
    plan.stages.push_back(stage);
    first += count;
  }
  return plan;
}

std::string Plan::to_string() const {
  std::ostringstream out;
  out << "pipeline plan: " << stages.size() << " stage(s), " << blocks.size() << " blocks, split " << method
      << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-6s %-7s %-12s %-10s %s\n", "stage", "blocks", "parameters", "est. ms",
                "range");
  out << line;
  for (std::size_t k = 0; k < stages.size(); ++k) {
    const auto& s = stages[k];
    std::snprintf(line, sizeof line, "  %-6zu %-7d %-12s %-10.2f %s\n", k, s.num_blocks,
                  human_count(s.parameter_count).c_str(), s.estimated_seconds * 1e3, block_range(*this, s).c_str());
    out << line;
  }
  return out.str();
}

}  // namespace accel::pipeline
