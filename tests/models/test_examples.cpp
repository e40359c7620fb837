// The example programs as a new user meets them: one spelling per option across examples, a bad
// option as one line with exit code 2 (never CLI11's internal codes), defaults in --help, prompts
// files read as the main job reads them, and pipeline_inference given a causal LM's checkpoint.
#include "accel/models/gpt2.h"
#include "support/prompts.h"
#include "test_helpers.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>

using namespace accel::models;
using accel::models::testing::run_command;
using accel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

struct Example {
  std::string name;
  std::string exe;
  std::string needed;  // arguments without which the example cannot start
};

const std::vector<Example> kExamples = {
    {"distributed_inference", DISTRIBUTED_INFERENCE_EXE, ""},
    {"pipeline_inference", PIPELINE_INFERENCE_EXE, ""},
    {"pipeline_generation", PIPELINE_GENERATION_EXE, ""},
    {"image_generation", IMAGE_GENERATION_EXE, "--model model.pt "},
};

}  // namespace

TEST_CASE("examples refuse a bad option in one line that names it, with exit code 2", "[models][example][errors]") {
  for (const auto& example : kExamples) {
    for (const std::string args : {"--batch_size 0", "--batch 0", "--batch_size many", "--no_such_flag 1"}) {
      INFO(example.name << " " << args);
      const auto run = run_command(example.exe + " " + example.needed + args);
      CHECK(run.status == 2);
      CHECK(std::count(run.output.begin(), run.output.end(), '\n') == 1);
      CHECK_THAT(run.output, Contains(example.name + ": error: ") &&
                                 Contains("; see " + example.name + " --help"));
      const std::string flag = args.substr(0, args.find(' '));
      CHECK_THAT(run.output, Contains(flag == "--batch" ? "--batch_size" : flag));
    }
  }
}

TEST_CASE("examples show their defaults in --help and accept the shared spellings", "[models][example]") {
  for (const auto& example : kExamples) {
    INFO(example.name);
    const auto help = run_command(example.exe + " --help");
    CHECK(help.status == 0);
    CHECK_THAT(help.output, Contains("--batch_size"));
    if (example.name != "image_generation") CHECK_THAT(help.output, Contains("--model_dir"));
  }
  // The defaults of the pipeline examples, which --help did not show.
  CHECK_THAT(run_command(PIPELINE_INFERENCE_EXE " --help").output,
             Contains("--batch_size,--batch-size,--batch INT:INT in [1 - 1048576]=8") &&
                 Contains("--seq INT:POSITIVE=128"));
  CHECK_THAT(run_command(PIPELINE_GENERATION_EXE " --help").output, Contains("--max_new_tokens INT:POSITIVE=24"));
  // The older spellings still run.
  const auto old = run_command(PIPELINE_INFERENCE_EXE " --layers 2 --embd 32 --heads 4 --batch 2 --seq 4 --num_chunks 1");
  INFO(old.output);
  CHECK(old.status == 0);
}

TEST_CASE("pipeline_inference on a causal LM's checkpoint initialises the classification head and says so",
          "[models][example][gpt2]") {
  TempDir lm;
  GPT2Options options;
  options.config = testing::tiny_config();
  options.seed = 7;
  GPT2LMHeadModel(options).save_pretrained(lm.root());

  GPT2Options from_lm = GPT2Options::from_directory(lm.root());
  from_lm.seed = 3;
  GPT2ForSequenceClassification classifier(from_lm);
  CHECK_FALSE(classifier.score_in_checkpoint());
  const auto ids = torch::tensor({{1, 2, 3}, {4, 5, 6}}, torch::kLong);
  const auto logits = classifier.forward(ids);
  CHECK(logits.sizes() == torch::IntArrayRef({2, 3}));
  // The head comes from the seed: the same seed gives the same logits.
  CHECK(torch::equal(GPT2ForSequenceClassification(from_lm).forward(ids), logits));

  TempDir scored;
  classifier.save_pretrained(scored.root());
  CHECK(GPT2ForSequenceClassification(GPT2Options::from_directory(scored.root())).score_in_checkpoint());

  const auto run = run_command(PIPELINE_INFERENCE_EXE " --model_dir " + lm.root() + " --batch_size 2 --seq 4 --num_chunks 1");
  INFO(run.output);
  CHECK(run.status == 0);
  CHECK_THAT(run.output, Contains(lm.root() + " has no score.weight") &&
                             Contains("pipeline_generation --model_dir " + lm.root()));
  CHECK_THAT(run.output, Contains("logits [2, 3]"));
}

TEST_CASE("the examples' prompts files skip whitespace-only lines and name the line they cannot use",
          "[models][example][errors]") {
  TempDir dir;
  std::ofstream(dir.path("prompts.txt")) << "a dog\n   \n\t\r\na cat\n";
  CHECK(accel::examples::read_prompts(dir.path("prompts.txt")) == std::vector<std::string>{"a dog", "a cat"});
  std::ofstream(dir.path("bad.txt")) << "a dog\n\na \xff cat\n";
  CHECK_THROWS_WITH(accel::examples::read_prompts(dir.path("bad.txt")),
                    Contains(dir.path("bad.txt") + ": line 3: not valid UTF-8 (byte 3)"));
  std::ofstream(dir.path("blank.txt")) << " \n\t\n";
  CHECK_THROWS_WITH(accel::examples::read_prompts(dir.path("blank.txt")),
                    Contains(dir.path("blank.txt")) && Contains("no prompts"));
}
