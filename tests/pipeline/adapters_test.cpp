#include "accel/pipeline/adapters.h"

#include <catch2/catch.hpp>

#include "accel/core/error.h"
#include "accel/pipeline/pipeline.h"
#include "harness.h"

using namespace accel::pipeline;
using namespace accel::pipeline::testing;

namespace {

// Runs `model` pipelined over `stages` ranks on two batches (uneven micro-batches) and returns
// the last rank's outputs.
std::vector<torch::Tensor> pipelined(const accel::models::BlockModel& model, int stages, int chunks,
                                     const std::vector<torch::Tensor>& batches) {
  std::vector<torch::Tensor> outputs;
  auto errors = run_ranks(stages, [&](accel::runtime::GroupHandle& group) {
    auto pipe = prepare(model, {batches.front().slice(0, 0, 1)}, quiet("auto", chunks), group);
    for (const auto& batch : batches) {
      auto out = pipe.forward(batch);
      if (pipe.is_last_stage()) outputs.push_back(out.at(0));
    }
  });
  expect_no_errors(errors);
  return outputs;
}

}  // namespace

TEST_CASE("a scripted nn.Sequential runs pipelined and matches its own forward") {
  auto module = torch::jit::load(SCRIPTED_FIXTURE);
  const TorchScriptModel model(module);
  CHECK(model.blocks().size() == 5);
  CHECK(model.blocks()[0].name == "0");
  CHECK(model.blocks()[0].parameter_count == 8 * 16 + 16);
  const std::vector<torch::Tensor> batches{torch::randn({7, 8}), torch::randn({11, 8})};
  for (int stages : {2, 3}) {
    auto outputs = pipelined(model, stages, 3, batches);
    REQUIRE(outputs.size() == batches.size());
    torch::NoGradGuard no_grad;
    for (std::size_t b = 0; b < batches.size(); ++b) {
      INFO("stages " << stages << ", batch " << b);
      CHECK(torch::allclose(outputs[b], module.forward({batches[b]}).toTensor(), 1e-5, 1e-5));
    }
  }
}

TEST_CASE("a scripted nn.Sequential streams through the pipeline and gathers its outputs to every rank") {
  auto module = torch::jit::load(SCRIPTED_FIXTURE);
  const TorchScriptModel model(module);
  const std::vector<Activations> batches{{torch::randn({7, 8})}, {torch::randn({11, 8})}, {torch::randn({4, 8})}};
  std::vector<torch::Tensor> expected;
  {
    torch::NoGradGuard no_grad;
    for (const auto& batch : batches) expected.push_back(module.forward({batch[0]}).toTensor());
  }
  for (int stages : {2, 3}) {
    // [rank]: stream() outputs, then gather_output stream() outputs, then gather_output forward()s.
    std::vector<std::vector<Activations>> streamed(stages), gathered(stages), forwarded(stages);
    auto errors = run_ranks(stages, [&](accel::runtime::GroupHandle& group) {
      auto pipe = prepare(model, {batches.front()[0].slice(0, 0, 1)}, quiet("auto", 3), group);
      streamed[group.rank] = pipe.stream(batches);
      auto gathering = prepare(model, {batches.front()[0].slice(0, 0, 1)}, quiet("auto", 3, true), group);
      gathered[group.rank] = gathering.stream(batches);
      for (const auto& batch : batches) forwarded[group.rank].push_back(gathering.forward(batch));
    });
    expect_no_errors(errors);
    for (int r = 0; r < stages; ++r) {
      INFO("stages " << stages << ", rank " << r);
      const bool last = r == stages - 1;
      CHECK(streamed[r].size() == (last ? batches.size() : 0));
      REQUIRE(gathered[r].size() == batches.size());
      for (std::size_t b = 0; b < batches.size(); ++b) {
        INFO("batch " << b);
        if (last) CHECK(all_close(streamed[r][b], {expected[b]}));
        CHECK(all_close(gathered[r][b], {expected[b]}));
        CHECK(all_close(forwarded[r][b], {expected[b]}));
      }
    }
  }
}

TEST_CASE("a torch::nn::Sequential runs pipelined and matches its own forward") {
  torch::nn::Sequential sequential(torch::nn::Linear(6, 10), torch::nn::ReLU(), torch::nn::Linear(10, 10),
                                   torch::nn::Tanh(), torch::nn::Linear(10, 2));
  const SequentialModel model(sequential);
  CHECK(model.blocks()[2].parameter_count == 110);
  const std::vector<torch::Tensor> batches{torch::randn({9, 6}), torch::randn({4, 6})};
  auto outputs = pipelined(model, 4, 4, batches);
  REQUIRE(outputs.size() == 2);
  torch::NoGradGuard no_grad;
  for (std::size_t b = 0; b < batches.size(); ++b) CHECK(torch::allclose(outputs[b], sequential->forward(batches[b]), 1e-5, 1e-5));
}

TEST_CASE("TorchScript files that are missing or not TorchScript are refused by name") {
  CHECK_THROWS_WITH(TorchScriptModel::load("/nonexistent/model.pt"), "/nonexistent/model.pt: does not exist");
  CHECK_THROWS_AS(TorchScriptModel::load(HARNESS_SOURCE), accel::FileError);
  CHECK_THROWS_WITH(SequentialModel(torch::nn::Sequential()),
                    "the torch::nn::Sequential has no children to split into stages");
}
