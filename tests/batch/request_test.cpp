#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "accel/batch/request.h"
#include "accel/core/error.h"
#include "support/temp_dir.h"

namespace {

using namespace accel::batch;
using nlohmann::json;

// A batch line for `body` (a JSON object's text), with custom_id `id` and url `url`.
std::string line(const std::string& id, const std::string& body, const std::string& url = "/v1/completions") {
  return R"({"custom_id": ")" + id + R"(", "method": "POST", "url": ")" + url + R"(", "body": )" + body + "}";
}

Request request_of(const Entry& entry) {
  if (const auto* refusal = std::get_if<Refusal>(&entry)) FAIL("refused: " << refusal->message);
  return std::get<Request>(entry);
}

Refusal refusal_of(const Entry& entry) {
  if (std::holds_alternative<Request>(entry)) FAIL("served, expected a refusal");
  return std::get<Refusal>(entry);
}

Refusal refused(const std::string& body, const std::string& url = "/v1/completions") {
  return refusal_of(parse_batch_line(line("r", body, url), 7));
}

}  // namespace

TEST_CASE("a completions line becomes a request with every sampling field read", "[batch][request]") {
  const auto entry = parse_batch_line(
      line("q1", R"({"model": "gpt2", "prompt": "Once upon", "max_tokens": 32, "temperature": 0.7, "top_p": 0.9,
                    "top_k": 40, "seed": 7, "stop": ["\n\n", "END"], "n": 1})"),
      3);
  const Request r = request_of(entry);
  CHECK(r.custom_id == "q1");
  CHECK(r.line == 3);
  CHECK(r.endpoint == Endpoint::kCompletions);
  CHECK(r.prompt == "Once upon");
  CHECK(r.sampling.max_tokens == 32);
  CHECK(r.sampling.temperature == 0.7);
  CHECK(r.sampling.top_p == 0.9);
  CHECK(r.sampling.top_k == 40);
  CHECK(r.sampling.seed == 7u);
  CHECK(r.sampling.stop == std::vector<std::string>{"\n\n", "END"});
  CHECK(r.chat.messages.empty());
}

TEST_CASE("unset and null body fields leave the job's defaults", "[batch][request]") {
  const Request r = request_of(parse_batch_line(
      line("q", R"({"prompt": "hi", "max_tokens": null, "temperature": null, "stop": null, "seed": null, "n": null})"), 1));
  CHECK_FALSE(r.sampling.max_tokens);
  CHECK_FALSE(r.sampling.temperature);
  CHECK_FALSE(r.sampling.top_p);
  CHECK_FALSE(r.sampling.top_k);
  CHECK_FALSE(r.sampling.seed);
  CHECK(r.sampling.stop.empty());
}

TEST_CASE("the accepted spellings of prompt, stop, top_k, seed and whole numbers", "[batch][request]") {
  const Request a = request_of(parse_batch_line(line("a", R"({"prompt": ["only one"], "stop": "x", "top_k": -1})"), 1));
  CHECK(a.prompt == "only one");
  CHECK(a.sampling.stop == std::vector<std::string>{"x"});
  CHECK(a.sampling.top_k == 0);
  const Request b = request_of(parse_batch_line(line("b", R"({"prompt": "p", "max_tokens": 16.0, "seed": -1})"), 1));
  CHECK(b.sampling.max_tokens == 16);
  CHECK(b.sampling.seed == 18446744073709551615u);
  const Request c = request_of(parse_batch_line(line("c", R"({"prompt": "p", "seed": 18446744073709551615})"), 1));
  CHECK(c.sampling.seed == 18446744073709551615u);
}

TEST_CASE("a chat line keeps its messages, tools, documents and template arguments as JSON", "[batch][request]") {
  const auto entry = parse_batch_line(
      line("c1", R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                    "max_completion_tokens": 50, "tools": [{"type": "function"}], "documents": [{"text": "d"}],
                    "chat_template_kwargs": {"enable_thinking": false}, "response_format": {"type": "text"}})",
           "/v1/chat/completions"),
      2);
  const Request r = request_of(entry);
  CHECK(r.endpoint == Endpoint::kChatCompletions);
  CHECK(r.prompt.empty());
  CHECK(json::parse(r.chat.messages) ==
        json::parse(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}])"));
  CHECK(r.chat.tools == R"([{"type":"function"}])");
  CHECK(r.chat.documents == R"([{"text":"d"}])");
  CHECK(r.chat.chat_template_kwargs == R"({"enable_thinking":false})");
  CHECK(r.sampling.max_tokens == 50);

  const Request both = request_of(parse_batch_line(
      line("c2", R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5, "max_completion_tokens": 5})",
           "/v1/chat/completions"),
      1));
  CHECK(both.sampling.max_tokens == 5);
  CHECK(both.chat.tools.empty());
}

TEST_CASE("bad values are refused naming the line, the key, the value and what is accepted", "[batch][request]") {
  const auto message = [](const std::string& body, const std::string& url = "/v1/completions") {
    return refused(body, url).message;
  };
  CHECK(message(R"({"prompt": "p", "temperature": "hot"})") ==
        R"(line 7: body.temperature must be a number >= 0 (0: greedy), got "hot")");
  CHECK(message(R"({"prompt": "p", "temperature": -1})") == "line 7: body.temperature must be a number >= 0 (0: greedy), got -1");
  CHECK(message(R"({"prompt": "p", "top_p": 0})") == "line 7: body.top_p must be a number in (0, 1], got 0");
  CHECK(message(R"({"prompt": "p", "top_p": 1.5})") == "line 7: body.top_p must be a number in (0, 1], got 1.5");
  CHECK(message(R"({"prompt": "p", "top_k": -2})") ==
        "line 7: body.top_k must be a whole number >= 1, or 0 or -1 for no limit, got -2");
  CHECK(message(R"({"prompt": "p", "max_tokens": 0})") == "line 7: body.max_tokens must be a whole number >= 1, got 0");
  CHECK(message(R"({"prompt": "p", "max_tokens": 2.5})") == "line 7: body.max_tokens must be a whole number >= 1, got 2.5");
  CHECK(message(R"({"prompt": "p", "max_tokens": true})") == "line 7: body.max_tokens must be a whole number >= 1, got true");
  CHECK(message(R"({"prompt": "p", "max_tokens": 3000000000})") ==
        "line 7: body.max_tokens must be a whole number >= 1, got 3000000000");
  CHECK(message(R"({"prompt": "p", "seed": "7"})") == R"(line 7: body.seed must be a whole number from -2^63 to 2^64-1, got "7")");
  CHECK(message(R"({"prompt": "p", "stop": ["a", 3]})") ==
        R"(line 7: body.stop must be a string or a list of strings, none empty, got ["a",3])");
  CHECK(message(R"({"prompt": "p", "stop": ""})") ==
        R"(line 7: body.stop must be a string or a list of strings, none empty (an empty one would end every completion at once), got "")");
  CHECK(message(R"({"prompt": ""})") == "line 7: body.prompt is empty");
  CHECK(message(R"({"prompt": [1, 2, 3]})") ==
        "line 7: body.prompt holds 3 prompts; one request gives one completion: write one line per prompt, each with its "
        "own custom_id");
  CHECK(message(R"({"prompt": [[1, 2]]})") ==
        "line 7: body.prompt must be a string (or a list of one string; token ids are not accepted), got [[1,2]]");
  CHECK(message(R"({"max_tokens": 5})") == "line 7: body.prompt is missing: a completion needs the text to continue");
  CHECK(message(R"({"prompt": "p", "n": 2})") ==
        "line 7: body.n = 2 is not supported: each request gives one completion (n = 1); write the request on several "
        "lines with their own custom_ids (and seeds) instead");
  CHECK(refused(R"({"prompt": "p", "n": 2})").param == "n");
  CHECK(refused(R"({"prompt": "p", "top_p": 0})").param == "top_p");
}

TEST_CASE("bad chat bodies are refused naming the message at fault", "[batch][request]") {
  const std::string chat = "/v1/chat/completions";
  CHECK(refused(R"({"max_tokens": 5})", chat).message ==
        "line 7: body.messages is missing: a chat completion needs the conversation");
  CHECK(refused(R"({"messages": []})", chat).message ==
        "line 7: body.messages must be a non-empty list of messages, each an object with a string \"role\", got []");
  CHECK(refused(R"({"messages": [{"role": "user", "content": "a"}, {"content": "b"}]})", chat).message ==
        R"(line 7: body.messages[1] needs a string "role" ("system", "user", "assistant", ...))");
  CHECK(refused(R"({"messages": ["hi"]})", chat).message == R"(line 7: body.messages[0] must be an object, got "hi")");
  CHECK(refused(R"({"messages": [{"role": "user", "content": 5}]})", chat).message ==
        "line 7: body.messages[0].content must be a string or a list of parts, got 5");
  CHECK(refused(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5, "max_completion_tokens": 6})", chat)
            .message == "line 7: body.max_tokens (5) and body.max_completion_tokens (6) differ; give one of them");
  CHECK(refused(R"({"messages": [{"role": "user", "content": "x"}], "tools": {}})", chat).message ==
        "line 7: body.tools must be a list of tool definitions, got {}");
  CHECK(refused(R"({"prompt": "p"})", chat).message ==
        "line 7: body.prompt belongs to /v1/completions, not to this line's url /v1/chat/completions");
  CHECK(refused(R"({"prompt": "p", "messages": []})").message ==
        "line 7: body.messages belongs to /v1/chat/completions, not to this line's url /v1/completions");
}

TEST_CASE("unknown body keys are refused by name, unsupported ones are accepted only at their neutral value", "[batch][request]") {
  const Refusal unknown = refused(R"({"prompt": "p", "temprature": 0.5})");
  CHECK(unknown.param == "temprature");
  CHECK_THAT(unknown.message, Catch::StartsWith("line 7: body.temprature is not a known parameter of /v1/completions; "
                                                "accepted: prompt, max_tokens, temperature, top_p, top_k, seed, stop, n, model,"));
  CHECK_THAT(unknown.message, !Catch::Contains("messages"));
  CHECK(refused(R"({"prompt": "p", "presence_penalty": 0.5})").message ==
        "line 7: body.presence_penalty = 0.5 is not supported; accepted: 0 (what leaving it out means)");
  CHECK(refused(R"({"prompt": "p", "stream": true})").message ==
        "line 7: body.stream = true is not supported; accepted: false (what leaving it out means)");
  CHECK(refused(R"({"prompt": "p", "stream_options": {"include_usage": true}})").message ==
        R"(line 7: body.stream_options = {"include_usage":true} is not supported; accepted: null (what leaving it out means))");
  CHECK(refused(R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})",
                "/v1/chat/completions")
            .message ==
        R"(line 7: body.response_format = {"type":"json_object"} is not supported; accepted: {"type":"text"} (what leaving it out means))");
  // The neutral values themselves are accepted, as integers or floats alike.
  request_of(parse_batch_line(line("n", R"({"prompt": "p", "presence_penalty": 0.0, "frequency_penalty": 0, "stream": false,
                                          "logit_bias": {}, "echo": false, "best_of": 1, "repetition_penalty": 1.0})"),
                              1));
}

TEST_CASE("a malformed line or envelope is refused with its line number", "[batch][request]") {
  const auto message = [](const std::string& text) { return refusal_of(parse_batch_line(text, 4)).message; };
  CHECK(message(R"({"custom_id": "a", )") ==
        "line 4: not valid JSON: parse error at column 20: syntax error while parsing object key - unexpected end of "
        "input; expected string literal");
  CHECK(message("[1, 2]") == "line 4: expected a JSON object with custom_id, method, url, body, got [1,2]");
  CHECK(message(R"({"method": "POST", "url": "/v1/completions", "body": {"prompt": "p"}})") ==
        "line 4: custom_id is missing; every request needs a unique one");
  CHECK(message(R"({"custom_id": 5, "method": "POST"})") == "line 4: custom_id must be a non-empty string, got 5");
  CHECK(message(R"({"custom_id": "a", "method": "GET", "url": "/v1/completions", "body": {"prompt": "p"}})") ==
        R"(line 4: method "GET" is not accepted; accepted: "POST")");
  CHECK(message(R"({"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}})") ==
        R"(line 4: url "/v1/embeddings" is not served; accepted: "/v1/completions", "/v1/chat/completions")");
  CHECK(message(R"({"custom_id": "a", "method": "POST", "url": "/v1/completions"})") == "line 4: body is missing");
  CHECK(message(R"({"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": "p"})") ==
        R"(line 4: body must be an object, got "p")");
  CHECK(message(R"({"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"prompt": "p"}, "extra": 1})") ==
        R"(line 4: unknown key "extra"; a request line holds custom_id, method, url, body)");
  // Once the custom_id is known, the refusal carries it so its error line can be matched.
  CHECK(refusal_of(parse_batch_line(R"({"custom_id": "a", "method": "GET"})", 1)).custom_id == "a");
  CHECK(refusal_of(parse_batch_line("{", 1)).custom_id.empty());
}

TEST_CASE("a batch text: blank lines skipped, repeated custom_ids refused, ignored keys warned once", "[batch][request]") {
  const std::string text = line("a", R"({"prompt": "one", "user": "u1"})") + "\r\n" + "\n   \t\n" +
                           line("b", R"({"prompt": "two", "temperature": "x"})") + "\n" +
                           line("a", R"({"prompt": "three"})") + "\n" + "not json\n" +
                           line("b", R"({"prompt": "four", "user": "u2", "model": "m"})");
  const BatchInput input = parse_batch_text(text, "in.jsonl");
  REQUIRE(input.entries.size() == 5);
  CHECK(input.servable() == 1);
  CHECK(request_of(input.entries[0]).line == 1);
  CHECK(refusal_of(input.entries[1]).line == 4);
  CHECK(refusal_of(input.entries[1]).custom_id == "b");
  CHECK(refusal_of(input.entries[2]).message == R"(line 5: custom_id "a" repeats line 1's; custom_ids must be unique)");
  CHECK(refusal_of(input.entries[2]).custom_id.empty());
  CHECK(refusal_of(input.entries[3]).line == 6);
  // A custom_id repeating one that was refused is refused too: every custom_id is answered once.
  CHECK(refusal_of(input.entries[4]).message == R"(line 7: custom_id "b" repeats line 4's; custom_ids must be unique)");
  CHECK(input.warnings == std::vector<std::string>{
                              "in.jsonl: body.model is ignored (it does not change the generated text): line 7",
                              "in.jsonl: body.user is ignored (it does not change the generated text): lines 1, 7"});
  CHECK(input.size == text.size());
  CHECK(input.source == "in.jsonl");
  CHECK(input.content_hash != parse_batch_text(text + " ", "in.jsonl").content_hash);
}

TEST_CASE("a batch file that cannot be read or holds no request is refused naming it", "[batch][request]") {
  const accel::test::TempDir dir("batch-request");
  CHECK_THROWS_AS(read_batch_file(dir.path("absent.jsonl")), accel::InputFileError);
  CHECK_THROWS_WITH(read_batch_file(dir.path("absent.jsonl")),
                    dir.path("absent.jsonl") + ": cannot read the batch input file: No such file or directory");
  CHECK_THROWS_WITH(read_batch_file(dir.write("blank.jsonl", "\n  \n")),
                    dir.path("blank.jsonl") +
                        ": holds no requests; expected one JSON object per line with custom_id, method, url, body");
  const BatchInput input = read_batch_file(dir.write("one.jsonl", line("x", R"({"prompt": "p"})") + "\n"));
  CHECK(request_of(input.entries.at(0)).custom_id == "x");
  CHECK(input.source == dir.path("one.jsonl"));
}

TEST_CASE("a prompts file: one prompt per line, whitespace-only lines skipped, ids from line numbers", "[batch][request]") {
  const std::string text = "first prompt\r\n\n \t \n  indented stays as written  \nbad \xff byte\nlast";
  const BatchInput input = parse_prompts_text(text, "prompts.txt");
  REQUIRE(input.entries.size() == 4);
  CHECK(request_of(input.entries[0]).custom_id == "prompt-1");
  CHECK(request_of(input.entries[0]).prompt == "first prompt");
  CHECK(request_of(input.entries[1]).custom_id == "prompt-4");
  CHECK(request_of(input.entries[1]).prompt == "  indented stays as written  ");
  CHECK(refusal_of(input.entries[2]).message == "line 5: not valid UTF-8 (byte 5)");
  CHECK(refusal_of(input.entries[2]).custom_id == "prompt-5");
  CHECK(request_of(input.entries[3]).custom_id == "prompt-6");

  const BatchInput chat = parse_prompts_text("hello\n", "p.txt", PromptForm::kChatMessage);
  const Request r = request_of(chat.entries.at(0));
  CHECK(r.endpoint == Endpoint::kChatCompletions);
  CHECK(r.chat.messages == R"([{"content":"hello","role":"user"}])");

  const accel::test::TempDir dir("batch-prompts");
  CHECK_THROWS_WITH(read_prompts_file(dir.write("empty.txt", " \n\n")), dir.path("empty.txt") + ": holds no prompts; expected one prompt per line");
  CHECK_THROWS_WITH(read_prompts_file(dir.path("none.txt")),
                    dir.path("none.txt") + ": cannot read the prompts file: No such file or directory");
}

TEST_CASE("UTF-8 checks refuse overlong forms, surrogates and truncated sequences", "[batch][request]") {
  const auto verdict = [](const std::string& prompt) {
    const Entry e = parse_prompts_text(prompt, "p").entries.at(0);
    return std::holds_alternative<Request>(e) ? std::string("ok") : std::get<Refusal>(e).message;
  };
  CHECK(verdict("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "ok");
  CHECK(verdict("\xc0\xaf") == "line 1: not valid UTF-8 (byte 1)");          // overlong "/"
  CHECK(verdict("a\xed\xa0\x80") == "line 1: not valid UTF-8 (byte 2)");     // a surrogate
  CHECK(verdict("ab\xe2\x82") == "line 1: not valid UTF-8 (byte 3)");        // cut short
  CHECK(verdict("\xf4\x90\x80\x80") == "line 1: not valid UTF-8 (byte 1)");  // past U+10FFFF
}

TEST_CASE("hostile lines are refused with short messages: deep nesting, huge keys and ids", "[batch][request]") {
  const std::string deep = line("d", "{\"prompt\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  CHECK_THAT(refusal_of(parse_batch_line(deep, 2)).message,
             Catch::StartsWith("line 2: arrays/objects nested deeper than 256 levels"));
  const std::string huge(100000, 'k');
  const Refusal unknown = refused(R"({"prompt": "p", ")" + huge + R"(": 1})");
  CHECK(unknown.message.size() < 1000);
  CHECK(unknown.param.size() < 100);
  const std::string text = line(huge, R"({"prompt": "p"})") + "\n" + line(huge, R"({"prompt": "q"})");
  const Refusal repeated = refusal_of(parse_batch_text(text, "in.jsonl").entries.at(1));
  CHECK(repeated.message == "line 2: custom_id \"" + std::string(56, 'k') + "... repeats line 1's; custom_ids must be unique");
  CHECK(refused(R"({"prompt": "p", "temperature": ")" + std::string(100, '\xc3') + R"("})").message.size() < 200);
}
