#pragma once
// Small models whose blocks record who built them, for pipelines run over tests/support's
// ranks-as-threads (support/thread_ranks.h).
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "accel/models/blocks.h"
#include "accel/pipeline/pipeline.h"
#include "accel/runtime/group.h"
#include "support/thread_ranks.h"

namespace accel::pipeline::testing {

using models::Activations;

using accel::test::message_of;
using accel::test::run_ranks;

// Options that keep the plan report out of the test output.
inline PipelineOptions quiet(SplitPoints split, std::optional<int> num_chunks, bool gather = false) {
  PipelineOptions options;
  options.split_points = std::move(split);
  options.num_chunks = num_chunks;
  options.gather_output = gather;
  options.report = nullptr;
  return options;
}

inline void expect_no_errors(const std::vector<std::exception_ptr>& errors) {
  for (std::size_t r = 0; r < errors.size(); ++r) {
    INFO("rank " << r << ": " << message_of(errors[r]));
    REQUIRE_FALSE(errors[r]);
  }
}

// Fills every parameter from a generator seeded per block, so a block built on any rank, any
// number of times, has the same weights.
inline void seed_parameters(torch::nn::Module& module, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (auto& p : module.parameters()) p.copy_(torch::randn(p.sizes(), generator) * 0.3);
}

// Token ids + mask in, {hidden, mask} between blocks, {pooled logits [B,3], per-token score [B,T]}
// out: several tensors and a dtype change cross the stage boundaries.
class Embed : public models::Block {
 public:
  Embed(std::int64_t vocab, std::int64_t dim) : table_(register_module("table", torch::nn::Embedding(vocab, dim))) {}
  Activations forward(const Activations& in) override {
    if (in.size() != 2) throw std::invalid_argument("embed takes {ids, mask}");
    if (in[0].size(1) > 16) throw std::invalid_argument("sequence longer than 16 positions");
    return {table_(in[0]), in[1].to(torch::kFloat32)};
  }

 private:
  torch::nn::Embedding table_;
};

class Residual : public models::Block {
 public:
  explicit Residual(std::int64_t dim) : linear_(register_module("linear", torch::nn::Linear(dim, dim))) {}
  Activations forward(const Activations& in) override {
    // A "poisoned" row (mask value 7) lets tests make a block fail on one chosen micro-batch.
    if ((in[1] == 7).any().item<bool>()) throw std::runtime_error("poisoned row");
    return {in[0] + torch::tanh(linear_(in[0])) * in[1].unsqueeze(-1), in[1]};
  }

 private:
  torch::nn::Linear linear_;
};

class Head : public models::Block {
 public:
  explicit Head(std::int64_t dim) : score_(register_module("score", torch::nn::Linear(dim, 3))) {}
  Activations forward(const Activations& in) override {
    auto mask = in[1].unsqueeze(-1);
    auto pooled = (in[0] * mask).sum(1) / mask.sum(1).clamp_min(1);
    return {score_(pooled), in[0].sum(-1)};
  }

 private:
  torch::nn::Linear score_;
};

// "embed", "h.0" .. "h.{layers-1}", "head"; records which thread built which block.
class ToyModel : public models::BlockModel {
 public:
  explicit ToyModel(int layers, std::int64_t dim = 16) : layers_(layers), dim_(dim) {}

  std::vector<models::BlockSpec> blocks() const override {
    std::vector<models::BlockSpec> specs;
    auto add = [&](std::string name, std::int64_t params, std::function<std::shared_ptr<models::Block>()> make) {
      const auto seed = 1000 + specs.size();
      specs.push_back({name, params, [this, name, make, seed] {
                         auto block = make();
                         seed_parameters(*block, seed);
                         std::lock_guard<std::mutex> lock(mutex_);
                         builds_[name].push_back(std::this_thread::get_id());
                         return block;
                       }});
    };
    const auto dim = dim_;
    add("embed", 50 * dim, [dim] { return std::make_shared<Embed>(50, dim); });
    for (int i = 0; i < layers_; ++i) {
      add("h." + std::to_string(i), dim * dim + dim, [dim] { return std::make_shared<Residual>(dim); });
    }
    add("head", dim * 3 + 3, [dim] { return std::make_shared<Head>(dim); });
    return specs;
  }

  std::map<std::string, std::vector<std::thread::id>> builds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return builds_;
  }

 private:
  int layers_;
  std::int64_t dim_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::vector<std::thread::id>> builds_;
};

inline Activations toy_batch(std::int64_t batch, std::int64_t length, std::uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  auto ids = torch::randint(1, 50, {batch, length}, generator, torch::kInt64);
  auto mask = torch::ones({batch, length}, torch::kInt64);
  // Rows of different real lengths: the tail of every other row is masked out.
  for (std::int64_t b = 1; b < batch; b += 2) mask[b].slice(0, length / 2).zero_();
  return {ids, mask};
}

// The single-process reference: every block built here, run in order on the whole batch.
inline Activations run_whole(const models::BlockModel& model, Activations x) {
  torch::NoGradGuard no_grad;
  for (const auto& spec : model.blocks()) x = spec.build()->forward(x);
  return x;
}

inline bool all_close(const Activations& a, const Activations& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].sizes() != b[i].sizes() || !torch::allclose(a[i], b[i], 1e-5, 1e-5)) return false;
  }
  return true;
}

}  // namespace accel::pipeline::testing
