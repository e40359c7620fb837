#pragma once
// Cutting an ordered list of blocks into contiguous stages, one per rank. Pure: no torch, so
// every rank computes the same plan from the same numbers without talking to the others.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace accel::pipeline {

// Where the model is cut. Built from "auto" / "parameters" (implicitly, so
// `{.split_points = "auto"}` reads as in accelerate), from block names that start stages 1..S-1,
// or from block counts per stage.
class SplitPoints {
 public:
  enum class Mode { kAuto, kParameters, kNames, kCounts };

  SplitPoints(const char* mode);         // NOLINT: "auto" or "parameters"
  SplitPoints(const std::string& mode);  // NOLINT
  static SplitPoints at(std::vector<std::string> first_blocks_of_stages_1_to_S_minus_1);
  static SplitPoints counts(std::vector<int> blocks_per_stage);
  // The command-line form: "auto", "parameters", "6,6" (counts), "h.4,h.8" (names) or a plan
  // file "plan.json".
  static SplitPoints parse(const std::string& text);
  // The split points of a plan saved by PipelineOptions::save_plan: the names of the blocks that
  // start stages 1..S-1 (checked against the model when the pipeline is prepared). Throws
  // accel::InputFileError naming the file when it cannot be read or is not such a plan.
  static SplitPoints load(const std::string& path);

  Mode mode() const { return mode_; }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<int>& block_counts() const { return counts_; }
  std::string describe() const;

 private:
  SplitPoints() = default;
  Mode mode_ = Mode::kAuto;
  std::vector<std::string> names_;
  std::vector<int> counts_;
};

struct BlockInfo {
  std::string name;
  std::int64_t parameter_count = 0;
};

struct StagePlan {
  int first_block = 0;  // index into the model's blocks
  int num_blocks = 0;
  std::int64_t parameter_count = 0;
  double estimated_seconds = 0;  // per example micro-batch; 0 when not measured
};

struct Plan {
  std::vector<BlockInfo> blocks;
  std::vector<StagePlan> stages;  // stages[k] runs on rank k
  std::string method;             // how the cut was chosen, for the report

  // A table: stage, blocks (first..last), parameters, estimated time.
  std::string to_string() const;
};

// Plans for the given split points. `block_seconds` are measured times per block (required by
// "auto"); `max_stage_parameters` bounds what one rank may hold (0: no bound). Throws
// accel::UsageError naming the split point, the block or the limit at fault.
Plan make_plan(const std::vector<BlockInfo>& blocks, int num_stages, const SplitPoints& split_points,
               const std::vector<double>& block_seconds = {}, std::int64_t max_stage_parameters = 0);

// Linear partition: contiguous groups of `costs`, none empty, minimising the largest group's
// sum, subject to each group's `weights` sum <= max_weight (0: unbounded). Returns the number
// of items per group; empty when no partition meets the bound.
std::vector<int> linear_partition(const std::vector<double>& costs, int num_groups,
                                  const std::vector<double>& weights = {}, double max_weight = 0);

}  // namespace accel::pipeline
