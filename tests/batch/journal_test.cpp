#include <catch2/catch.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "accel/batch/journal.h"
#include "accel/core/error.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace {

using namespace accel::batch;
using nlohmann::json;
using accel::test::slurp;

// Five entries: a, b, (a malformed line), c, d.
const std::string kInputText =
    R"({"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "one"}})" "\n"
    R"({"custom_id": "b", "method": "POST", "url": "/v1/completions", "body": {"prompt": "two"}})" "\n"
    "{broken\n"
    R"({"custom_id": "c", "method": "POST", "url": "/v1/completions", "body": {"prompt": "three"}})" "\n"
    R"({"custom_id": "d", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "four"}]}})" "\n";

BatchInput input() { return parse_batch_text(kInputText, "in.jsonl"); }

const OutputContext kContext{.model = "tiny", .run_tag = "t"};

// What the engine would append for entry `index`: its completion "text-<custom_id>".
std::string result_line(const BatchInput& in, std::size_t index) {
  const Request& r = std::get<Request>(in.entries.at(index));
  return format_completion(r, index, Completion{.text = "text-" + r.custom_id, .completion_tokens = 1}, 100, kContext);
}

void serve(const BatchInput& in, const std::string& output, int rank, const std::vector<std::size_t>& indices) {
  JournalWriter writer(output, rank);
  for (const auto i : indices) writer.append(i, result_line(in, i));
  writer.close();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The custom_ids of an output file, in order ("null" for a line without one).
std::vector<std::string> custom_ids(const std::string& path) {
  std::vector<std::string> ids;
  for (const auto& line : lines_of(slurp(path))) {
    const json parsed = json::parse(line);
    ids.push_back(parsed["custom_id"].is_null() ? "null" : parsed["custom_id"].get<std::string>());
  }
  return ids;
}

const Fingerprint kOptions = fingerprint_of(input(), {{"model", "tiny"}, {"temperature", "0"}});

}  // namespace

TEST_CASE("a fresh run journals results from several ranks and writes every line once, in input order", "[batch][journal]") {
  const accel::test::TempDir dir("batch-journal");
  const std::string output = dir.path("out.jsonl");
  const BatchInput in = input();
  const ResumeState state = prepare_output(output, in, kOptions, ExistingOutput::kRefuse);
  CHECK_FALSE(state.resumed);
  CHECK(state.journal_dir == output + ".journal");
  CHECK(state.notes.empty());
  CHECK(state.remaining(in) == std::vector<std::size_t>{0, 1, 3, 4});
  CHECK(json::parse(slurp(output + ".journal/fingerprint.json"))["options"]["temperature"] == "0");
  CHECK_FALSE(slurp(output).size());

  serve(in, output, 1, {4, 1});
  {
    JournalWriter rank0(output, 0);
    rank0.append(3, format_refusal(refuse(std::get<Request>(in.entries[3]), "the prompt is too long", "prompt"), 3, kContext));
    rank0.append(0, result_line(in, 0));
  }
  const OutputSummary summary = finish_output(output, in, kContext);
  CHECK(summary.lines == 5);
  CHECK(summary.completed == 3);
  CHECK(summary.refused == 2);
  CHECK(custom_ids(output) == std::vector<std::string>{"a", "b", "null", "c", "d"});
  const auto lines = lines_of(slurp(output));
  CHECK(lines[0] == result_line(in, 0));
  CHECK(lines[2] == format_refusal(std::get<Refusal>(in.entries[2]), 2, kContext));
  CHECK(json::parse(lines[3])["error"]["error"]["message"] == "line 4: the prompt is too long");
  CHECK(json::parse(lines[4])["response"]["body"]["choices"][0]["message"]["content"] == "text-d");
  struct stat info {};
  CHECK(::stat((output + ".journal").c_str(), &info) != 0);  // the journal is gone
}

TEST_CASE("a simulated crash: a cut last line and leftover parts are resumed, and no request runs twice", "[batch][journal]") {
  const accel::test::TempDir dir("batch-journal");
  const std::string output = dir.path("out.jsonl");
  const BatchInput in = input();
  prepare_output(output, in, kOptions, ExistingOutput::kRefuse);
  serve(in, output, 0, {0});
  serve(in, output, 3, {3});  // a rank of an earlier, larger world
  {
    // Rank 1 was killed while writing entry 1's line.
    JournalWriter rank1(output, 1);
    const std::string whole = "{\"index\":1,\"output\":" + result_line(in, 1) + "}\n";
    const accel::files::Fd part(::open(rank1.path().c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    REQUIRE(::write(part.get(), whole.data(), whole.size() / 2) == static_cast<ssize_t>(whole.size() / 2));
  }
  const ResumeState state = prepare_output(output, in, kOptions, ExistingOutput::kRefuse);
  CHECK(state.resumed);
  CHECK(state.journaled == 2);
  CHECK(state.remaining(in) == std::vector<std::size_t>{1, 4});
  CHECK(state.notes == std::vector<std::string>{
                           "resuming from " + output + ".journal/: 2 of 5 entries already have their result",
                           "1 journal line(s) cut short when a process stopped were ignored; their requests run again"});
  // The rerun's rank 1 seals the cut line before appending, and a line served twice counts once.
  serve(in, output, 1, {1, 4, 0});
  CHECK(prepare_output(output, in, kOptions, ExistingOutput::kRefuse).notes.back() ==
        "1 journal line(s) cut short when a process stopped were ignored; their requests run again");
  finish_output(output, in, kContext);
  CHECK(custom_ids(output) == std::vector<std::string>{"a", "b", "null", "c", "d"});
}

TEST_CASE("results appended before kill -9 survive it and are not served again", "[batch][journal]") {
  const accel::test::TempDir dir("batch-journal");
  const std::string output = dir.path("out.jsonl");
  const BatchInput in = input();
  prepare_output(output, in, kOptions, ExistingOutput::kRefuse);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    JournalWriter writer(output, 0, JournalOptions{.sync_interval = std::chrono::hours(1)});
    writer.append(0, result_line(in, 0));
    writer.append(3, result_line(in, 3));
    ::pause();  // killed here, with nothing fsynced
    ::_exit(0);
  }
  CHECK(accel::test::wait_until([&] { return lines_of(slurp(output + ".journal/rank-0.jsonl")).size() == 2; }));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  const ResumeState state = prepare_output(output, in, kOptions, ExistingOutput::kRefuse);
  CHECK(state.journaled == 2);
  CHECK(state.remaining(in) == std::vector<std::size_t>{1, 4});
}

TEST_CASE("a journal of a different input or options is refused naming what differs, and discarded by --overwrite", "[batch][journal]") {
  const accel::test::TempDir dir("batch-journal");
  const std::string output = dir.path("out.jsonl");
  const BatchInput in = input();
  prepare_output(output, in, kOptions, ExistingOutput::kRefuse);
  serve(in, output, 0, {0, 1});

  const Fingerprint hotter = fingerprint_of(in, {{"model", "tiny"}, {"temperature", "0.7"}, {"seed", "3"}});
  CHECK_THROWS_AS(prepare_output(output, in, hotter, ExistingOutput::kRefuse), accel::UsageError);
  CHECK_THROWS_WITH(prepare_output(output, in, hotter, ExistingOutput::kRefuse),
                    output + ".journal/ holds the results of a different run: seed was unset, now \"3\"; temperature was "
                             "\"0\", now \"0.7\". Rerun with that run's input and options to continue it, or add "
                             "--overwrite to discard its results and start afresh");
  const BatchInput edited = parse_batch_text(kInputText + kInputText.substr(0, 10), "in.jsonl");
  CHECK_THROWS_WITH(prepare_output(output, edited, fingerprint_of(edited, kOptions.options), ExistingOutput::kRefuse),
                    Catch::Contains("holds the results of a different run: the input differs (then " +
                                    std::to_string(kInputText.size()) + " bytes, hash ") &&
                        Catch::Contains("; now " + std::to_string(kInputText.size() + 10) + " bytes, hash "));
  // Refusing changed nothing: the same command still resumes.
  CHECK(prepare_output(output, in, kOptions, ExistingOutput::kRefuse).journaled == 2);

  const ResumeState fresh = prepare_output(output, in, hotter, ExistingOutput::kOverwrite);
  CHECK_FALSE(fresh.resumed);
  CHECK(fresh.journaled == 0);
  CHECK(json::parse(slurp(output + ".journal/fingerprint.json"))["options"]["temperature"] == "0.7");
}

TEST_CASE("an existing output file is refused without --overwrite, and replaced only when the run finishes", "[batch][journal]") {
  const accel::test::TempDir dir("batch-journal");
  const std::string output = dir.write("out.jsonl", "the user's earlier results\n");
  const BatchInput in = input();
  CHECK_THROWS_WITH(prepare_output(output, in, kOptions, ExistingOutput::kRefuse),
                    output + " already exists; add --overwrite to replace it when this run finishes, or name another "
                             "output file");
  const ResumeState state = prepare_output(output, in, kOptions, ExistingOutput::kOverwrite);
  CHECK(state.notes == std::vector<std::string>{output + " exists: it will be replaced when this run finishes"});
  serve(in, output, 0, {0, 1, 3});
  // Not finished: the earlier file is intact, and the missing requests are named.
  CHECK_THROWS_WITH(finish_output(output, in, kContext),
                    output + " was not written: 1 of 5 requests have no result in " + output +
                        ".journal/ (d); rerun the same command to serve them");
  CHECK(slurp(output) == "the user's earlier results\n");
  // Rerunning the same command (with or without --overwrite) resumes: the journal proves it was accepted.
  const ResumeState again = prepare_output(output, in, kOptions, ExistingOutput::kRefuse);
  CHECK(again.remaining(in) == std::vector<std::size_t>{4});
  serve(in, output, 0, {4});
  finish_output(output, in, kContext);
  CHECK(custom_ids(output) == std::vector<std::string>{"a", "b", "null", "c", "d"});
}

TEST_CASE("an output path that cannot be written is refused before any work", "[batch][journal]") {
  const accel::test::TempDir dir("batch-journal");
  const BatchInput in = input();
  CHECK_THROWS_AS(prepare_output(dir.path("missing/out.jsonl"), in, kOptions, ExistingOutput::kRefuse), accel::UsageError);
  CHECK_THROWS_WITH(prepare_output(dir.path("missing/out.jsonl"), in, kOptions, ExistingOutput::kRefuse),
                    dir.path("missing/out.jsonl") + ": cannot write the output file: the directory " + dir.path("missing") +
                        " does not exist (No such file or directory); create it or name another output file");
  const std::string file = dir.write("file", "");
  CHECK_THROWS_WITH(prepare_output(file + "/out.jsonl", in, kOptions, ExistingOutput::kRefuse),
                    file + "/out.jsonl: cannot write the output file: " + file + " is not a directory");
  CHECK_THROWS_WITH(prepare_output(dir.root(), in, kOptions, ExistingOutput::kOverwrite),
                    dir.root() + " is a directory; name the output file to write");
  // /proc refuses new directories even to root, whom access() would let through.
  CHECK_THROWS_WITH(prepare_output("/proc/accel-out.jsonl", in, kOptions, ExistingOutput::kRefuse),
                    Catch::StartsWith("/proc/accel-out.jsonl: cannot write the output file: "));
  if (::geteuid() != 0) {
    const std::string locked = dir.path("locked");
    ::mkdir(locked.c_str(), 0555);
    CHECK_THROWS_WITH(prepare_output(locked + "/out.jsonl", in, kOptions, ExistingOutput::kRefuse),
                      locked + "/out.jsonl: cannot write the output file: the directory " + locked +
                          " is not writable (Permission denied)");
  }
}

TEST_CASE("journal lines that belong to another input are refused naming the part and line", "[batch][journal]") {
  const accel::test::TempDir dir("batch-journal");
  const std::string output = dir.path("out.jsonl");
  const BatchInput in = input();
  prepare_output(output, in, kOptions, ExistingOutput::kRefuse);
  {
    JournalWriter writer(output, 2);
    writer.append(0, result_line(in, 0));
    writer.append(9, result_line(in, 0));
  }
  CHECK_THROWS_WITH(prepare_output(output, in, kOptions, ExistingOutput::kRefuse),
                    output + ".journal/rank-2.jsonl:2: a result that does not belong to in.jsonl (entry 9 of 5)");
  REQUIRE(::unlink((output + ".journal/rank-2.jsonl").c_str()) == 0);
  {
    JournalWriter writer(output, 3);
    writer.append(1, result_line(in, 0));
  }
  CHECK_THROWS_WITH(finish_output(output, in, kContext),
                    output + ".journal/rank-3.jsonl:1: a result that does not belong to in.jsonl (entry 1 has custom_id "
                             "\"b\", the journal \"a\")");
  CHECK(slurp(output).empty());
}

TEST_CASE("a journal writer needs the prepared directory and refuses appends once closed", "[batch][journal]") {
  const accel::test::TempDir dir("batch-journal");
  const std::string output = dir.path("out.jsonl");
  CHECK_THROWS_WITH(JournalWriter(output, 0),
                    output + ".journal/rank-0.jsonl: cannot open the results journal: No such file or directory");
  prepare_output(output, input(), kOptions, ExistingOutput::kRefuse);
  JournalWriter writer(output, 0, JournalOptions{.sync_interval = std::chrono::milliseconds(0)});
  writer.append(0, result_line(input(), 0));
  writer.close();
  CHECK_THROWS_WITH(writer.append(1, result_line(input(), 1)),
                    output + ".journal/rank-0.jsonl: the results journal was closed; nothing more can be appended");
}

TEST_CASE("the run tag names the fingerprint", "[batch][journal]") {
  CHECK(run_tag(kOptions).size() == 16);
  CHECK(run_tag(kOptions) == run_tag(fingerprint_of(input(), {{"temperature", "0"}, {"model", "tiny"}})));
  CHECK(run_tag(kOptions) != run_tag(fingerprint_of(input(), {{"model", "tiny"}, {"temperature", "1"}})));
  CHECK(journal_directory("dir/out.jsonl") == "dir/out.jsonl.journal");
}
