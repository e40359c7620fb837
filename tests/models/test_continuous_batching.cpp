// ContinuousBatcher over a fake SlotDecoder whose logits depend only on a slot's own tokens: a
// freed slot is refilled at the next step, the static schedule waits for its longest row, every
// request's tokens (greedy and sampled) are those it gets alone, and bad requests are refused.
#include "accel/models/continuous_batching.h"
#include "accel/models/slot_decoder.h"

#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "accel/core/error.h"

using namespace accel::models;

namespace {

constexpr std::int64_t kVocab = 23;
constexpr std::int64_t kEos = 0;

// Logits that are a function of the slot's cached tokens only (a batch-invariant decoder), with
// EOS unlikely until the sequence is long; every contract of the interface is checked.
class FakeSlotDecoder : public SlotDecoder {
 public:
  FakeSlotDecoder(int slots, std::int64_t capacity) : cached_(static_cast<std::size_t>(slots)), capacity_(capacity) {}

  int slots() const override { return static_cast<int>(cached_.size()); }
  std::int64_t slot_capacity() const override { return capacity_; }
  std::int64_t length(int slot) const override { return static_cast<std::int64_t>(cached_.at(slot).size()); }

  torch::Tensor step(const std::vector<SlotTokens>& inputs) override {
    std::vector<torch::Tensor> rows;
    std::vector<int> slots;
    std::int64_t tokens = 0;
    for (const auto& input : inputs) {
      auto& cache = cached_.at(input.slot);
      if (input.tokens.empty()) throw accel::UsageError("no tokens for slot " + std::to_string(input.slot));
      if (static_cast<std::int64_t>(cache.size() + input.tokens.size()) > capacity_) throw accel::UsageError("slot full");
      cache.insert(cache.end(), input.tokens.begin(), input.tokens.end());
      rows.push_back(logits_of(cache));
      slots.push_back(input.slot);
      tokens += static_cast<std::int64_t>(input.tokens.size());
    }
    steps.push_back(slots);
    step_tokens.push_back(tokens);
    return torch::stack(rows);
  }

  void release(int slot) override { cached_.at(slot).clear(); }

  std::vector<std::vector<int>> steps;  // the slots of each step's inputs
  std::vector<std::int64_t> step_tokens;  // how many tokens each step took

 private:
  static torch::Tensor logits_of(const std::vector<std::int64_t>& tokens) {
    std::uint64_t h = 1469598103934665603ULL;
    for (const auto t : tokens) h = (h ^ static_cast<std::uint64_t>(t + 1)) * 1099511628211ULL;
    auto logits = torch::empty({kVocab}, torch::kFloat32);
    for (std::int64_t v = 0; v < kVocab; ++v) logits[v] = static_cast<float>((h >> (v % 40)) % 13) / 3.0f;
    logits[kEos] = tokens.size() > 12 ? 10.0f : -10.0f;
    return logits;
  }

  std::vector<std::vector<std::int64_t>> cached_;
  std::int64_t capacity_;
};

SequenceRequest request(std::size_t id, std::size_t prompt_length, std::int64_t max_tokens, bool sample = false) {
  SequenceRequest r;
  r.id = id;
  for (std::size_t i = 0; i < prompt_length; ++i) r.prompt.push_back(static_cast<std::int64_t>(1 + (id * 7 + i) % 20));
  r.max_tokens = max_tokens;
  r.sampling.do_sample = sample;
  r.sampling.temperature = 0.8;
  r.sampling.seed = 1000 + id;
  return r;
}

struct Run {
  std::map<std::size_t, FinishedSequence> finished;
  std::vector<std::size_t> order;  // ids in the order they ended
  BatchingStats stats;
  std::vector<std::vector<int>> steps;
  std::vector<std::int64_t> step_tokens;
  int after_step_calls = 0;
};

Run run_all(const std::vector<SequenceRequest>& requests, int slots, Schedule schedule,
            std::function<bool(std::size_t, const std::vector<std::int64_t>&)> should_stop = {},
            std::int64_t prompt_tokens_per_step = ContinuousBatcher::kPromptTokensPerStep) {
  FakeSlotDecoder decoder(slots, 64);
  ContinuousBatcher batcher(decoder, {kEos}, schedule, prompt_tokens_per_step);
  std::size_t next = 0;
  Run out;
  ContinuousBatcher::Callbacks callbacks;
  callbacks.next = [&]() -> std::optional<SequenceRequest> {
    if (next == requests.size()) return std::nullopt;
    return requests[next++];
  };
  callbacks.should_stop = std::move(should_stop);
  callbacks.finished = [&](FinishedSequence done) {
    out.order.push_back(done.id);
    out.finished[done.id] = std::move(done);
  };
  callbacks.after_step = [&] { ++out.after_step_calls; };
  out.stats = batcher.run(callbacks);
  out.steps = decoder.steps;
  out.step_tokens = decoder.step_tokens;
  return out;
}

std::vector<SequenceRequest> mixed_requests(bool sample) {
  std::vector<SequenceRequest> requests;
  for (std::size_t i = 0; i < 20; ++i) requests.push_back(request(i, 1 + i % 6, i % 5 == 0 ? 30 : 2 + i % 4, sample));
  return requests;
}

}  // namespace

TEST_CASE("continuous batching: each request's tokens are those it gets alone", "[models][batching]") {
  for (const bool sample : {false, true}) {
    INFO((sample ? "sampled" : "greedy"));
    const auto requests = mixed_requests(sample);
    const auto alone = run_all(requests, 1, Schedule::kContinuous);
    REQUIRE(alone.finished.size() == requests.size());
    for (const int slots : {2, 3, 8}) {
      for (const auto schedule : {Schedule::kContinuous, Schedule::kStatic}) {
        INFO("slots " << slots << (schedule == Schedule::kStatic ? " static" : " continuous"));
        const auto together = run_all(requests, slots, schedule);
        REQUIRE(together.finished.size() == requests.size());
        for (const auto& [id, done] : alone.finished) {
          CHECK(together.finished.at(id).tokens == done.tokens);
          CHECK(together.finished.at(id).reason == done.reason);
          CHECK(together.finished.at(id).prompt_tokens == static_cast<std::int64_t>(requests[id].prompt.size()));
        }
      }
    }
  }
}

TEST_CASE("continuous batching: sampling follows the request's seed", "[models][batching]") {
  auto requests = mixed_requests(true);
  const auto first = run_all(requests, 4, Schedule::kContinuous);
  for (auto& r : requests) r.sampling.seed += 1;
  const auto reseeded = run_all(requests, 4, Schedule::kContinuous);
  int differ = 0;
  for (const auto& [id, done] : first.finished) differ += done.tokens != reseeded.finished.at(id).tokens;
  CHECK(differ > 10);
}

TEST_CASE("continuous batching: a finished row's slot takes the next prompt at the next step", "[models][batching]") {
  // Request 0 runs 8 tokens; 1 and 2 run 2 each; with 2 slots, 2 joins when 1 ends.
  const auto r = run_all({request(0, 3, 8), request(1, 2, 2), request(2, 2, 2)}, 2, Schedule::kContinuous);
  REQUIRE(r.order == std::vector<std::size_t>{1, 2, 0});
  CHECK(r.finished.at(0).tokens.size() == 8);
  CHECK(r.finished.at(0).reason == FinishReason::kLength);
  // Steps: both prompts, then {0,1} (1 ends: 2 tokens), then request 2's prompt joins slot 1
  // beside 0's decoding row, {0,1} once more (2 ends), then 0 alone.
  REQUIRE(r.steps.size() == 8);
  for (int s = 0; s < 4; ++s) CHECK(r.steps[static_cast<std::size_t>(s)] == std::vector<int>{0, 1});
  CHECK(r.step_tokens[0] == 5);
  CHECK(r.step_tokens[1] == 2);
  CHECK(r.step_tokens[2] == 3);  // 0's token beside 2's prompt of 2
  CHECK(r.steps[4] == std::vector<int>{0});
  CHECK(r.stats.steps == 8);
  CHECK(r.after_step_calls == 8);
  CHECK(r.stats.requests == 3);
  CHECK(r.stats.new_tokens == 12);
  CHECK(r.stats.prompt_tokens == 7);
  CHECK(r.stats.occupancy() == 1.0);  // both slots busy on every step with work waiting
}

TEST_CASE("static schedule: no slot is refilled until the whole batch has ended", "[models][batching]") {
  const auto r = run_all({request(0, 3, 8), request(1, 2, 2), request(2, 2, 2)}, 2, Schedule::kStatic);
  REQUIRE(r.order == std::vector<std::size_t>{1, 0, 2});
  // Batch {0, 1}: 8 steps (slot 1 idle after the second), then request 2 alone: 2 steps.
  REQUIRE(r.steps.size() == 10);
  CHECK(r.steps[1] == std::vector<int>{0, 1});
  CHECK(r.steps[2] == std::vector<int>{0});
  CHECK(r.steps[8] == std::vector<int>{0});
  CHECK(r.step_tokens[8] == 2);  // request 2's prompt
  CHECK(r.stats.occupancy() == Approx(10.0 / 16));  // 10 busy slot-steps of 2 x 8 while request 2 waited
}

TEST_CASE("continuous batching: prompts join whole within the step's budget, oldest first", "[models][batching]") {
  // Budget 4: request 0's prompt of 10 joins alone (a prompt longer than the budget is never
  // split), request 1's prompt of 3 waits for the next step, where it joins beside 0's row.
  const std::vector<SequenceRequest> requests = {request(0, 10, 3), request(1, 3, 3), request(2, 6, 2)};
  const auto limited = run_all(requests, 2, Schedule::kContinuous, {}, 4);
  const auto alone = run_all(requests, 1, Schedule::kContinuous);
  for (std::size_t id = 0; id < requests.size(); ++id) CHECK(limited.finished.at(id).tokens == alone.finished.at(id).tokens);
  REQUIRE(limited.steps.size() >= 4);
  CHECK(limited.steps[0] == std::vector<int>{0});
  CHECK(limited.step_tokens[0] == 10);
  CHECK(limited.steps[1] == std::vector<int>{0, 1});
  CHECK(limited.step_tokens[1] == 1 + 3);
  CHECK(limited.step_tokens[2] == 2);  // request 0 ends at its third token
  CHECK(limited.steps[3] == std::vector<int>{1, 0});  // 1's row, then request 2's prompt in slot 0
  CHECK(limited.step_tokens[3] == 1 + 6);
  CHECK_THROWS_WITH(run_all(requests, 2, Schedule::kContinuous, {}, 0),
                    Catch::Contains("prompt_tokens_per_step must be at least 1, got 0"));
}

TEST_CASE("continuous batching: EOS, max_tokens and the caller's stop end a row", "[models][batching]") {
  const auto eos = run_all({request(0, 2, 40)}, 1, Schedule::kContinuous);
  const auto& tokens = eos.finished.at(0).tokens;
  CHECK(eos.finished.at(0).reason == FinishReason::kStop);
  CHECK(tokens.back() == kEos);
  CHECK(tokens.size() == 12);  // the fake's EOS wins once 13 tokens are cached: 2 + 11 fed back

  const auto length = run_all({request(0, 2, 1)}, 1, Schedule::kContinuous);
  CHECK(length.finished.at(0).tokens.size() == 1);
  CHECK(length.finished.at(0).reason == FinishReason::kLength);
  CHECK(length.steps.size() == 1);  // one token comes from the prompt's step alone

  const auto stopped = run_all({request(0, 2, 40), request(1, 2, 40)}, 2, Schedule::kContinuous,
                               [](std::size_t id, const std::vector<std::int64_t>& t) { return id == 1 && t.size() == 3; });
  CHECK(stopped.finished.at(1).tokens.size() == 3);
  CHECK(stopped.finished.at(1).reason == FinishReason::kStop);
  CHECK(stopped.finished.at(0).tokens == tokens);
  CHECK(std::string(to_string(FinishReason::kStop)) == "stop");
  CHECK(std::string(to_string(FinishReason::kLength)) == "length");
}

TEST_CASE("continuous batching refuses requests that cannot run, naming them", "[models][batching][errors]") {
  auto too_long = request(7, 60, 5);
  CHECK_THROWS_WITH(run_all({too_long}, 2, Schedule::kContinuous),
                    Catch::Contains("request 7: the prompt's 60 tokens + max_tokens 5 exceed the 64 tokens"));
  CHECK_THROWS_WITH(run_all({request(3, 2, 0)}, 2, Schedule::kContinuous),
                    Catch::Contains("request 3: max_tokens must be at least 1, got 0"));
  CHECK_THROWS_WITH(run_all({request(4, 0, 2)}, 2, Schedule::kContinuous), Catch::Contains("request 4: the prompt has no tokens"));
  auto hot = request(5, 2, 2, true);
  hot.sampling.temperature = -1;
  CHECK_THROWS_WITH(run_all({hot}, 2, Schedule::kContinuous), Catch::Contains("request 5: ") && Catch::Contains("temperature"));
}
