// distributed_inference as a batch engine, end to end through its command line: a request's
// tokens do not depend on the ranks, the batch, the schedule or a restart; bad requests get error
// lines naming their line while the others are served; the output path is checked before any
// model work; and a killed worker or launcher loses nothing and duplicates nothing.
#include "test_helpers.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

using accel::models::testing::CommandOutcome;
using accel::models::testing::run_command;
using accel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

// Greedy and sampled requests (body seed, or --seed + index), mixed prompt lengths and budgets,
// one with a stop string: the embedded GPT-2 (seeded random weights) serves them.
std::string workload() {
  std::ostringstream out;
  const char* prompts[] = {"a dog", "the quick brown fox jumps over the lazy dog and keeps running", "once",
                           "distributed inference is a way to", "to be or not to be, that is the question",
                           "x", "the weather today is", "a chicken crossed"};
  for (int i = 0; i < 16; ++i) {
    nlohmann::json body = {{"prompt", prompts[i % 8] + std::string(i >= 8 ? " again" : "")},
                           {"max_tokens", 2 + (i * 5) % 17}};
    if (i % 3 == 1) body["temperature"] = 0.9;
    if (i % 6 == 1) body["seed"] = 1000 + i;
    if (i % 6 == 4) body["top_k"] = 40;
    if (i == 5) body["stop"] = nlohmann::json::array({"e"});
    out << nlohmann::json{{"custom_id", "r" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/completions"},
                          {"body", body}}
               .dump()
        << "\n";
  }
  return out.str();
}

CommandOutcome engine(const std::string& args, int processes = 1) {
  const std::string launcher =
      processes > 1 ? std::string(ACCEL_LAUNCH_EXE) + " -q --num_processes " + std::to_string(processes) + " " : "";
  return run_command(launcher + DISTRIBUTED_INFERENCE_EXE " --threads 1 --progress_seconds 1000 " + args);
}

// custom_id -> (text, finish_reason, completion tokens) of an output file, checking that every
// custom_id appears once.
std::map<std::string, std::string> answers(const std::string& path) {
  std::ifstream in(path);
  std::map<std::string, std::string> out;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    const auto id = j.at("custom_id").is_null() ? "(none)" : j.at("custom_id").get<std::string>();
    INFO(line);
    CHECK(out.count(id) == 0);
    if (j.at("error").is_null()) {
      const auto& body = j.at("response").at("body");
      out[id] = body.at("choices")[0].at("text").get<std::string>() + " | " +
                body.at("choices")[0].at("finish_reason").get<std::string>() + " | " +
                body.at("usage").at("completion_tokens").dump();
    } else {
      out[id] = "error: " + j.at("error").at("error").at("message").get<std::string>();
    }
  }
  return out;
}

std::vector<std::string> ids_in_order(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> ids;
  for (std::string line; std::getline(in, line);) ids.push_back(nlohmann::json::parse(line).at("custom_id").dump());
  return ids;
}

}  // namespace

TEST_CASE("engine: a request's tokens are the same whatever the ranks, batch and schedule",
          "[models][example][engine][launcher]") {
  TempDir dir("engine");
  const auto input = dir.write("in.jsonl", workload());
  const auto alone = engine("-i " + input + " -o " + dir.path("alone.jsonl") + " --batch_size 1 --seed 7");
  INFO(alone.output);
  REQUIRE(alone.status == 0);
  const auto reference = answers(dir.path("alone.jsonl"));
  REQUIRE(reference.size() == 16);
  CHECK(ids_in_order(dir.path("alone.jsonl")).front() == "\"r0\"");
  CHECK(ids_in_order(dir.path("alone.jsonl")).back() == "\"r15\"");
  CHECK_THAT(reference.at("r5"), Contains("| stop |"));  // its stop string ended it
  CHECK(reference.at("r5").find('e') == std::string::npos);
  struct Config {
    int processes;
    std::string args;
  };
  for (const auto& config : {Config{1, "--batch_size 8"}, Config{1, "--batch_size 8 --schedule static"},
                             Config{2, "--batch_size 8"}, Config{2, "--batch_size 3 --schedule static"}}) {
    INFO(config.processes << " process(es), " << config.args);
    const auto run = engine("-i " + input + " -o " + dir.path("out.jsonl") + " --overwrite --seed 7 " + config.args,
                            config.processes);
    INFO(run.output);
    REQUIRE(run.status == 0);
    CHECK(answers(dir.path("out.jsonl")) == reference);
    CHECK(ids_in_order(dir.path("out.jsonl")) == ids_in_order(dir.path("alone.jsonl")));
  }
  // Another --seed changes the samples of requests without a body seed, and only those.
  const auto reseeded = engine("-i " + input + " -o " + dir.path("seed8.jsonl") + " --seed 8");
  REQUIRE(reseeded.status == 0);
  const auto other = answers(dir.path("seed8.jsonl"));
  CHECK(other.at("r1") == reference.at("r1"));  // body seed
  CHECK(other.at("r0") == reference.at("r0"));  // greedy
  CHECK(other.at("r4") != reference.at("r4"));  // sampled with --seed + 4
}

TEST_CASE("engine: bad requests get error lines naming their line, the others are served",
          "[models][example][engine][errors]") {
  TempDir dir("engine");
  const auto input = dir.write("in.jsonl",
                               R"({"custom_id": "ok", "method": "POST", "url": "/v1/completions", "body": {"prompt": "hi", "max_tokens": 3}})"
                               "\nnot json\n"
                               R"({"custom_id": "chat", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "hi"}]}})"
                               "\n"
                               R"({"custom_id": "huge", "method": "POST", "url": "/v1/completions", "body": {"prompt": "hi", "max_tokens": 5000}})"
                               "\n"
                               R"({"custom_id": "ok2", "method": "POST", "url": "/v1/completions", "body": {"prompt": "yo", "max_tokens": 2}})"
                               "\n");
  const auto run = engine("-i " + input + " -o " + dir.path("out.jsonl"), 2);
  INFO(run.output);
  REQUIRE(run.status == 0);
  const auto got = answers(dir.path("out.jsonl"));
  REQUIRE(got.size() == 5);
  CHECK_THAT(got.at("ok"), Contains("| length | 3"));
  CHECK_THAT(got.at("ok2"), Contains("| length | 2"));
  CHECK_THAT(got.at("(none)"), Contains("error: line 2"));
  CHECK_THAT(got.at("chat"), Contains("error: line 3: the model has no chat template (the built-in GPT-2 has none)"));
  CHECK_THAT(got.at("huge"), Contains("error: line 4: the prompt's 1 tokens + max_tokens 5000 exceed the 512 tokens"));
}

TEST_CASE("engine: the output path is checked before any model work", "[models][example][engine][errors]") {
  TempDir dir("engine");
  const auto input = dir.write("in.jsonl", workload());
  const auto run = engine("-i " + input + " -o " + dir.path("missing/dir/out.jsonl"), 2);
  INFO(run.output);
  CHECK(run.status != 0);
  CHECK_THAT(run.output, Contains(dir.path("missing/dir/out.jsonl")));
  CHECK_THAT(run.output, !Contains("distributed_inference: model "));  // stopped before loading
  const auto both = engine("-i " + input + " --prompts " + input);
  CHECK(both.status == 2);
  CHECK_THAT(both.output, Contains("-i/--input_file and --prompts were both given"));
  const auto schedule = engine("--schedule sometimes");
  CHECK(schedule.status != 0);
  CHECK_THAT(schedule.output, Contains("--schedule") && Contains("continuous") && Contains("static"));
}

namespace {

// 40 requests of 20-60 tokens: long enough to be interrupted while the journal fills.
std::string long_workload() {
  std::ostringstream out;
  for (int i = 0; i < 40; ++i) {
    const nlohmann::json body = {{"prompt", "request number " + std::to_string(i) + " says"},
                                 {"max_tokens", 20 + (i * 13) % 41}};
    out << nlohmann::json{{"custom_id", "k" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/completions"},
                          {"body", body}}
               .dump()
        << "\n";
  }
  return out.str();
}

// Starts `command` in the background, waits until the output's journal holds `lines` results,
// kills -9 the launcher ("launcher") or one of its workers ("worker"), and waits for the launcher.
CommandOutcome interrupted(const std::string& command, const std::string& output, const std::string& victim) {
  const std::string script =
      command + " & pid=$!\n"
      "for i in $(seq 1 1200); do n=$(cat '" + output + ".journal'/rank-*.jsonl 2>/dev/null | wc -l)\n"
      "  [ \"$n\" -ge 6 ] && break; sleep 0.05; done\n"
      "echo \"journal lines before the kill: $n\"\n" +
      (victim == "launcher" ? std::string("kill -9 $pid\n")
                            : std::string("kill -9 $(pgrep -P $pid -f distributed_inference | tail -1)\n")) +
      "wait $pid; echo \"launcher exit $?\"\n";
  TempDir scripts("engine-kill");
  return run_command("sh " + scripts.write("kill.sh", script));
}

}  // namespace

TEST_CASE("engine: a killed worker restarted by --max_restarts loses and duplicates nothing",
          "[models][example][engine][launcher]") {
  TempDir dir("engine");
  const auto input = dir.write("in.jsonl", long_workload());
  const auto reference = engine("-i " + input + " -o " + dir.path("ref.jsonl"));
  REQUIRE(reference.status == 0);
  const std::string command = std::string(ACCEL_LAUNCH_EXE) + " -q --num_processes 2 --max_restarts 1 " +
                              DISTRIBUTED_INFERENCE_EXE " --threads 1 --progress_seconds 1000 -i " + input + " -o " +
                              dir.path("out.jsonl");
  const auto run = interrupted(command, dir.path("out.jsonl"), "worker");
  INFO(run.output);
  CHECK_THAT(run.output, Contains("launcher exit 0"));
  CHECK_THAT(run.output, Contains("resum"));  // the restarted job continued the journal
  CHECK(answers(dir.path("out.jsonl")) == answers(dir.path("ref.jsonl")));
  CHECK(ids_in_order(dir.path("out.jsonl")) == ids_in_order(dir.path("ref.jsonl")));
  CHECK_FALSE(std::ifstream(dir.path("out.jsonl.journal/fingerprint.json")).good());
}

TEST_CASE("engine: after kill -9 of the launcher, rerunning the command finishes the output",
          "[models][example][engine][launcher]") {
  TempDir dir("engine");
  const auto input = dir.write("in.jsonl", long_workload());
  const auto reference = engine("-i " + input + " -o " + dir.path("ref.jsonl") + " --batch_size 3");
  REQUIRE(reference.status == 0);
  const std::string command = std::string(ACCEL_LAUNCH_EXE) + " -q --num_processes 2 " + DISTRIBUTED_INFERENCE_EXE
                              " --threads 1 --progress_seconds 1000 -i " + input + " -o " + dir.path("out.jsonl");
  const auto killed = interrupted(command, dir.path("out.jsonl"), "launcher");
  INFO(killed.output);
  CHECK_THAT(killed.output, Contains("launcher exit 137"));
  CHECK_FALSE(std::ifstream(dir.path("out.jsonl")).good());  // no half-written output
  const auto rerun = run_command(command);
  INFO(rerun.output);
  REQUIRE(rerun.status == 0);
  CHECK_THAT(rerun.output, Contains("resum"));
  CHECK(answers(dir.path("out.jsonl")) == answers(dir.path("ref.jsonl")));
  CHECK(ids_in_order(dir.path("out.jsonl")) == ids_in_order(dir.path("ref.jsonl")));
}
