// Pipelined generation (Pipeline::generate): the tokens one process generates, for GPT-2 and the
// Llama family, at 2 and 3 stages and several micro-batch counts, greedy and sampled, with
// micro-batches that stop early at an EOS; and its failures, which reach every rank.
#include <catch2/catch.hpp>

#include <atomic>

#include "accel/core/error.h"
#include "accel/models/gpt2.h"
#include "accel/models/llama.h"
#include "harness.h"
#include "../models/test_helpers.h"

using namespace accel::pipeline;
using namespace accel::pipeline::testing;
using accel::models::CausalLM;
using accel::models::Generation;
using accel::models::GenerationOptions;

namespace {

using Prompts = std::vector<std::vector<std::int64_t>>;

// Five prompts of different lengths (left-padded into one batch), ids below `vocab`.
Prompts prompts_for(std::int64_t vocab) {
  Prompts prompts;
  for (std::int64_t p = 0; p < 5; ++p) {
    std::vector<std::int64_t> ids;
    for (std::int64_t t = 0; t < 2 + (p * 3) % 5; ++t) ids.push_back((7 + p * 13 + t * 5) % (vocab - 1));
    prompts.push_back(ids);
  }
  return prompts;
}

accel::models::GPT2LMHeadModel gpt2(std::int64_t eos) {
  accel::models::GPT2Options options;
  options.config = accel::models::testing::tiny_config();
  options.config.eos_token_id = eos;
  options.seed = 3;
  return accel::models::GPT2LMHeadModel(options);
}

accel::models::LlamaForCausalLM llama(std::int64_t eos) {
  accel::models::LlamaOptions options;
  auto& c = options.config;
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;  // grouped-query attention
  c.head_dim = 8;
  c.eos_token_ids = {eos};
  options.seed = 9;
  return accel::models::LlamaForCausalLM(options);
}

GenerationOptions greedy(std::int64_t tokens, bool stop_at_eos = false) {
  GenerationOptions o;
  o.max_new_tokens = tokens;
  o.stop_at_eos = stop_at_eos;
  return o;
}

GenerationOptions sampled(std::int64_t tokens, bool stop_at_eos = false) {
  auto o = greedy(tokens, stop_at_eos);
  o.do_sample = true;
  o.temperature = 0.8;
  o.top_k = 20;
  o.top_p = 0.9;
  o.seed = 17;
  return o;
}

// Both models' blocks: embeddings, three layers, head.
SplitPoints cut(int stages) {
  if (stages == 1) return SplitPoints::counts({5});
  return stages == 2 ? SplitPoints::counts({2, 3}) : SplitPoints::counts({2, 2, 1});
}

// Every rank's Generation from one pipe.generate() call.
std::vector<Generation> pipelined(const accel::models::BlockModel& model, int stages, int chunks, const Prompts& prompts,
                                  const GenerationOptions& options) {
  std::vector<Generation> out(stages);
  const Activations example{torch::ones({1, 3}, torch::kLong), torch::ones({1, 3}, torch::kLong)};
  auto errors = run_ranks(stages, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(model, example, quiet(cut(stages), chunks), group);
    out[group.rank] = pipe.generate(prompts, options);
  });
  expect_no_errors(errors);
  return out;
}

template <class Model>
void expect_pipelined_equals_one_process(Model& model, const GenerationOptions& options, const std::vector<int>& chunk_counts) {
  const auto prompts = prompts_for(61);
  const auto expected = accel::models::generate(model, prompts, options);
  for (const int stages : {2, 3}) {
    for (const int chunks : chunk_counts) {
      INFO(model.describe() << ", " << stages << " stages, " << chunks << " micro-batches");
      const auto ranks = pipelined(model, stages, chunks, prompts, options);
      for (int r = 0; r < stages; ++r) {
        INFO("rank " << r);
        CHECK(ranks[r].new_tokens == expected.new_tokens);
        CHECK(torch::equal(ranks[r].sequences, expected.sequences));
      }
    }
  }
}

}  // namespace

TEST_CASE("pipelined greedy generation equals one process for GPT-2 and Llama at 2 and 3 stages", "[generate]") {
  auto gpt2_model = gpt2(96);
  auto llama_model = llama(2);
  // 1: one micro-batch (naive model parallelism); 2, 3: as many as stages; 5: one row each.
  expect_pipelined_equals_one_process(gpt2_model, greedy(6), {1, 2, 3, 5});
  expect_pipelined_equals_one_process(llama_model, greedy(6), {1, 2, 3, 5});
}

TEST_CASE("pipelined sampling with a seed draws the tokens one process draws", "[generate]") {
  auto gpt2_model = gpt2(96);
  auto llama_model = llama(2);
  expect_pipelined_equals_one_process(gpt2_model, sampled(6), {2, 4});
  expect_pipelined_equals_one_process(llama_model, sampled(6), {3});
}

TEST_CASE("a micro-batch whose rows reach EOS stops while the others go on, greedy and sampled", "[generate]") {
  for (const bool sample : {false, true}) {
    INFO((sample ? "sampled" : "greedy"));
    const auto prompts = prompts_for(61);
    const auto free_options = sample ? sampled(8) : greedy(8);
    auto free_model = llama(2);
    const auto free_run = accel::models::generate(free_model, prompts, free_options);
    // The token row 0 makes second becomes the EOS: row 0 (a micro-batch of its own with 5
    // micro-batches) stops after at most two tokens; the run goes on while any row has not.
    const auto eos = free_run.new_tokens[0][1];
    auto model = llama(eos);
    auto options = free_options;
    options.stop_at_eos = true;
    const auto expected = accel::models::generate(model, prompts, options);
    REQUIRE(expected.new_tokens[0].size() <= 2);
    std::size_t longest = 0;
    for (const auto& row : expected.new_tokens) longest = std::max(longest, row.size());
    REQUIRE(longest > 2);
    const auto ranks = pipelined(model, 2, 5, prompts, options);
    for (const auto& got : ranks) {
      CHECK(got.new_tokens == expected.new_tokens);
      CHECK(torch::equal(got.sequences, expected.sequences));
    }
  }
}

TEST_CASE("one process runs generate() through the pipeline API as models::generate does", "[generate]") {
  auto model = gpt2(96);
  const auto prompts = prompts_for(61);
  const auto expected = accel::models::generate(model, prompts, greedy(4));
  const auto ranks = pipelined(model, 1, 2, prompts, greedy(4));
  CHECK(ranks[0].new_tokens == expected.new_tokens);
}

TEST_CASE("generate() refuses a model that is not a language model and bad options on every rank", "[generate][errors]") {
  const Activations example{torch::ones({1, 3}, torch::kLong), torch::ones({1, 3}, torch::kLong)};
  accel::models::GPT2Options classifier_options;
  classifier_options.config = accel::models::testing::tiny_config();
  const accel::models::GPT2ForSequenceClassification classifier(classifier_options);
  auto errors = run_ranks(2, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(classifier, example, quiet(cut(2), 2), group);
    pipe.generate(prompts_for(61), greedy(3));
  });
  for (const auto& error : errors) {
    CHECK(message_of(error) == "generate() needs a pipeline prepared from a causal language model (a models::CausalLM "
                               "such as GPT2LMHeadModel or LlamaForCausalLM)");
  }

  const auto model = gpt2(96);
  auto bad = sampled(3);
  bad.top_p = 2;
  std::vector<Generation> after(2);
  errors = run_ranks(2, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(model, example, quiet(cut(2), 2), group);
    try {
      pipe.generate(prompts_for(61), bad);
    } catch (const accel::UsageError& e) {
      CHECK(std::string(e.what()) == "top_p must be in (0, 1] (1 = off), got 2.000000");
    }
    after[group.rank] = pipe.generate(prompts_for(61), greedy(3));  // the pipeline is still usable
  });
  expect_no_errors(errors);
  CHECK(after[0].new_tokens == after[1].new_tokens);
  CHECK(after[0].new_tokens[0].size() == 3);
}

TEST_CASE("a rank whose prompts differ from rank 0's fails generate() on every rank, and the next call works",
          "[generate][errors]") {
  const auto model = gpt2(96);
  const Activations example{torch::ones({1, 3}, torch::kLong), torch::ones({1, 3}, torch::kLong)};
  std::vector<std::string> messages(3);
  std::vector<Generation> after(3);
  auto errors = run_ranks(3, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(model, example, quiet(cut(3), 2), group);
    auto prompts = prompts_for(61);
    if (group.rank == 1) prompts.pop_back();
    try {
      pipe.generate(prompts, greedy(3));
    } catch (const accel::Error& e) {
      messages[group.rank] = e.what();
    }
    after[group.rank] = pipe.generate(prompts_for(61), greedy(3));
  });
  expect_no_errors(errors);
  const std::string cause = "rank 1 was given 4 prompts but rank 0 has 5; every rank must pass the same prompts";
  CHECK(messages[1] == cause);
  CHECK(messages[0] == "rank 0 stopped because rank 1 failed: " + cause);
  CHECK(messages[2] == "rank 2 stopped because rank 1 failed: " + cause);
  CHECK(after[2].new_tokens == after[0].new_tokens);
}

namespace {

// GPT-2 whose layer h.1 fails at its `fail_at`-th decoding step (counted over the whole run).
class FailingDecode : public accel::models::Block {
 public:
  FailingDecode(std::shared_ptr<accel::models::Block> inner, std::atomic<int>& steps, int fail_at)
      : inner_(register_module("inner", std::move(inner))), steps_(steps), fail_at_(fail_at) {}
  Activations forward(const Activations& inputs) override { return inner_->forward(inputs); }
  Activations forward_cached(const Activations& inputs, accel::models::KVCache& cache) override {
    if (++steps_ == fail_at_) throw std::runtime_error("decode failed on purpose");
    return inner_->forward_cached(inputs, cache);
  }

 private:
  std::shared_ptr<accel::models::Block> inner_;
  std::atomic<int>& steps_;
  int fail_at_;
};

class FailingGPT2 : public accel::models::BlockModel, public CausalLM {
 public:
  explicit FailingGPT2(int fail_at) : model_(gpt2(96)), fail_at_(fail_at) {}
  std::vector<accel::models::BlockSpec> blocks() const override {
    auto specs = model_.blocks();
    auto inner = specs[2].build;
    specs[2].build = [this, inner] { return std::make_shared<FailingDecode>(inner(), steps_, fail_at_); };
    return specs;
  }
  torch::Tensor next_token_logits(const torch::Tensor&, const torch::Tensor&, accel::models::KVCache*) override {
    throw std::logic_error("not used");
  }
  std::optional<std::int64_t> max_positions() const override { return model_.max_positions(); }
  std::vector<std::int64_t> eos_token_ids() const override { return model_.eos_token_ids(); }
  std::string describe() const override { return "failing " + model_.describe(); }

 private:
  accel::models::GPT2LMHeadModel model_;
  int fail_at_;
  mutable std::atomic<int> steps_{0};
};

}  // namespace

TEST_CASE("a block that fails mid-generation names its rank on every rank, and the next call works",
          "[generate][errors]") {
  const FailingGPT2 model(/*fail_at=*/7);  // h.1 is on rank 1 of 3: a decode step after the prefill
  const Activations example{torch::ones({1, 3}, torch::kLong), torch::ones({1, 3}, torch::kLong)};
  std::vector<std::string> messages(3);
  std::vector<Generation> after(3);
  auto errors = run_ranks(3, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(model, example, quiet(SplitPoints::counts({2, 2, 1}), 3), group);
    try {
      pipe.generate(prompts_for(61), greedy(6));
    } catch (const accel::Error& e) {
      messages[group.rank] = e.what();
    }
    after[group.rank] = pipe.generate(prompts_for(61), greedy(2));
  });
  expect_no_errors(errors);
  const std::string cause = "block 'h.1' (rank 1, stage 1) failed on step 2, micro-batch 0: decode failed on purpose";
  CHECK(messages[1] == cause);
  CHECK(messages[0] == "rank 0 stopped because rank 1 failed: " + cause);
  CHECK(messages[2] == "rank 2 stopped because rank 1 failed: " + cause);
  CHECK(after[0].new_tokens == after[2].new_tokens);
  CHECK(after[1].new_tokens[4].size() == 2);
}
