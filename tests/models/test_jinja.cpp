// The chat template interpreter against Python's jinja2 (set up as transformers sets it up):
// the renderings stored in tests/models/data/chat/expected.json (written by
// scripts/chat-template-reference.py), a live comparison when python3-jinja2 is installed, and
// the refusals and limits a hostile template meets.
#include "jinja.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <limits>
#include <string>

#include "support/temp_dir.h"
#include "test_helpers.h"

namespace accel::models::jinja {
namespace {

using testing::run_command;

const std::string kDataDir = std::string(ACCEL_SOURCE_DIR) + "/tests/models/data/chat";
// The time strftime_now() formats in the stored renderings (FIXED_NOW in the reference script).
constexpr std::time_t kFixedNow = 1767323045;

nlohmann::ordered_json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::ordered_json::parse(in);
}

// What transformers passes to render(): the special tokens, the conversation's extra variables,
// messages, tools and documents (none when absent) and add_generation_prompt.
DictData case_variables(const nlohmann::ordered_json& tokens, const nlohmann::ordered_json& conversation, bool gen) {
  DictData vars;
  for (const auto& [k, v] : tokens.items()) vars.put(k, Value::from_json(v));
  for (const auto& [k, v] : conversation.items())
    if (k != "messages" && k != "tools" && k != "documents") vars.put(k, Value::from_json(v));
  vars.put("messages", Value::from_json(conversation["messages"]));
  vars.put("tools", conversation.contains("tools") ? Value::from_json(conversation["tools"]) : Value::none());
  vars.put("documents", conversation.contains("documents") ? Value::from_json(conversation["documents"]) : Value::none());
  vars.put("add_generation_prompt", Value::boolean(gen));
  return vars;
}

nlohmann::ordered_json outcome(const std::string& source, const DictData& vars) {
  RenderOptions options;
  options.now = kFixedNow;
  try {
    return {{"text", Template(source).render(vars, options)}};
  } catch (const TemplateError& e) {
    return {{"error", e.what()}};
  }
}

// Every case of cases.json rendered by our interpreter, keyed as expected.json is.
nlohmann::ordered_json render_cases() {
  const auto cases = read_json(kDataDir + "/cases.json");
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, t] : cases["templates"].items()) {
    const auto source = test::slurp(kDataDir + "/templates/" + t["file"].get<std::string>());
    REQUIRE(!source.empty());
    for (const auto& [conversation_name, conversation] : cases["conversations"].items())
      for (const bool gen : {true, false})
        out[name + "/" + conversation_name + "/" + (gen ? "gen" : "nogen")] = outcome(source, case_variables(t["tokens"], conversation, gen));
  }
  for (const auto& [name, snippet] : cases["snippets"].items()) {
    DictData vars;
    for (const auto& [k, v] : snippet["variables"].items()) vars.put(k, Value::from_json(v));
    out["snippet/" + name] = outcome(snippet["source"].get<std::string>(), vars);
  }
  return out;
}

std::string render(const std::string& source, const Limits& limits = {}) {
  RenderOptions options;
  options.limits = limits;
  return Template(source).render(DictData{}, options);
}

}  // namespace

TEST_CASE("chat templates: real and written templates render as jinja2 renders them", "[jinja]") {
  const auto expected = read_json(kDataDir + "/expected.json");
  const auto ours = render_cases();
  REQUIRE(ours.size() == expected.size());
  std::size_t texts = 0, errors = 0;
  for (const auto& [key, want] : expected.items()) {
    INFO(key);
    REQUIRE(ours.contains(key));
    const auto& got = ours[key];
    if (want.contains("error")) {
      CHECK(got.contains("error"));
      ++errors;
      continue;
    }
    REQUIRE(got.contains("text"));
    CHECK(got["text"].get<std::string>() == want["text"].get<std::string>());
    ++texts;
  }
  // 9 templates x 10 conversations x add_generation_prompt on/off, and 37 snippets.
  CHECK(texts == 190);
  CHECK(errors == 27);
}

TEST_CASE("chat templates: renderings equal a live jinja2 (python3-jinja2)", "[jinja][python]") {
  if (run_command("/usr/bin/python3 -c 'import jinja2'").status != 0) {
    WARN("SKIPPED: Debian's python3-jinja2 is not installed (scripts/install-deps.sh installs it)");
    return;
  }
  test::TempDir dir("jinja");
  const auto ours = dir.write("ours.json", render_cases().dump());
  const auto compared = run_command("/usr/bin/python3 " + std::string(ACCEL_SOURCE_DIR) +
                                    "/scripts/chat-template-reference.py " + kDataDir + " --compare " + ours);
  INFO(compared.output);
  CHECK(compared.status == 0);
}

TEST_CASE("chat templates: the stored renderings are what jinja2 renders now", "[jinja][python]") {
  if (run_command("/usr/bin/python3 -c 'import jinja2'").status != 0) {
    WARN("SKIPPED: Debian's python3-jinja2 is not installed (scripts/install-deps.sh installs it)");
    return;
  }
  const auto checked = run_command("/usr/bin/python3 " + std::string(ACCEL_SOURCE_DIR) +
                                   "/scripts/chat-template-reference.py " + kDataDir + " --check");
  INFO(checked.output);
  CHECK(checked.status == 0);
}

TEST_CASE("chat templates: constructs outside the subset are refused naming the line", "[jinja]") {
  CHECK_THROWS_WITH(Template("a\nb\n{% include 'x' %}"), Catch::Contains("template line 3") && Catch::Contains("'include' is not supported"));
  CHECK_THROWS_WITH(Template("{% raw %}x{% endraw %}"), Catch::Contains("'raw' is not supported"));
  CHECK_THROWS_WITH(Template("\n{{ x | wordwrap }}"), Catch::Contains("template line 2") && Catch::Contains("no filter named 'wordwrap'"));
  CHECK_THROWS_WITH(Template("{{ x is nosuchtest }}"), Catch::Contains("no test named 'nosuchtest'"));
  CHECK_THROWS_WITH(Template("{% for x in y recursive %}{% endfor %}"), Catch::Contains("recursive for loops are not supported"));
  CHECK_THROWS_WITH(Template("{{ f(*args) }}"), Catch::Contains("*args and **kwargs"));
  CHECK_THROWS_WITH(Template("{% break %}"), Catch::Contains("'break' outside a for loop"));
  CHECK_THROWS_WITH(Template("{% endif %}"), Catch::Contains("'endif' without the tag it closes"));
  CHECK_THROWS_WITH(Template("{% if x %}"), Catch::Contains("ends before 'endif'"));
  CHECK_THROWS_WITH(Template("{{ 'open"), Catch::Contains("never closed"));
  CHECK_THROWS_WITH(Template("{# open"), Catch::Contains("comment opened here is never closed"));
  CHECK_THROWS_WITH(Template("{{ x $ y }}"), Catch::Contains("unexpected character '$'"));
  CHECK_THROWS_WITH(Template("{{ 99999999999999999999 }}"), Catch::Contains("too large"));
  CHECK_THROWS_WITH(render("{{ '%s' % 1 }}"), Catch::Contains("printf-style string formatting"));
  CHECK_THROWS_WITH(render("{{ [1].append(2) }}"), Catch::Contains("'append' is not allowed"));
  CHECK_THROWS_WITH(render("{{ {'a': 1}.update({}) }}"), Catch::Contains("'update' is not allowed"));
  CHECK_THROWS_WITH(render("{{ {1: 2} }}"), Catch::Contains("dict keys must be strings"));
}

TEST_CASE("chat templates: runtime failures name the line and the reason", "[jinja]") {
  CHECK_THROWS_WITH(render("ok\n{{ raise_exception('roles must alternate') }}"),
                    Catch::Contains("template line 2") && Catch::Contains("the template raised an exception: roles must alternate"));
  CHECK_THROWS_WITH(render("{{ missing.attribute }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THROWS_WITH(render("{{ missing + 1 }}"), Catch::Contains("'missing' is undefined"));
  CHECK_THROWS_WITH(render("{{ 1 // 0 }}"), Catch::Contains("division or modulo by zero"));
  CHECK_THROWS_WITH(render("{{ 9223372036854775807 + 1 }}"), Catch::Contains("integer overflow"));
  CHECK_THROWS_WITH(render("{{ 'abc'[::0] }}"), Catch::Contains("slice step cannot be zero"));
  CHECK_THROWS_WITH(render("{% for x in 3 %}{% endfor %}"), Catch::Contains("'int' object is not iterable"));
  CHECK_THROWS_WITH(render("{{ 3() }}"), Catch::Contains("'int' object is not callable"));
  CHECK_THROWS_WITH(render("{% set x = 1 %}{% set x.a = 2 %}"), Catch::Contains("only a namespace() has assignable attributes"));
  CHECK_THROWS_WITH(render("{% set ns = namespace(a=1) %}{% set ns.b = ns %}"), Catch::Contains("cannot hold a namespace"));
  CHECK_THROWS_WITH(render("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"), Catch::Contains("takes 1 argument(s), 2 given"));
  CHECK_THROWS_WITH(render("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}"), Catch::Contains("has no parameter 'b'"));
  CHECK_THROWS_WITH(render("{{ 'a'.startswith() }}"), Catch::Contains("missing the argument 'prefix'"));
  CHECK_THROWS_WITH(render("{{ 'a' | trim(chars='x', extra=1) }}"), Catch::Contains("unexpected keyword argument 'extra'"));
  CHECK_THROWS_WITH(render("{{ [1, 'a'] | sort }}"), Catch::Contains("cannot sort"));
  CHECK_THROWS_WITH(render("{% set a, b = [1] %}"), Catch::Contains("cannot unpack 1 values into 2 names"));
}

TEST_CASE("chat templates: a hostile template ends in an error, not a hang or a crash", "[jinja]") {
  Limits small;
  small.max_steps = 100'000;
  small.max_output_bytes = 10'000;
  small.max_allocated_bytes = 1'000'000;
  small.max_depth = 100;
  Limits steps_only;
  steps_only.max_steps = 100'000;
  CHECK_THROWS_WITH(render("{% set r = range(1000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", steps_only),
                    Catch::Contains("more than 100000 steps"));
  // Walking a large value again and again (comparing, copying for a loop) counts as building it.
  CHECK_THROWS_WITH(render("{% set r = range(10000) %}{% for i in r %}{% if r == r %}{% endif %}{% endfor %}", small),
                    Catch::Contains("bytes of values"));
  CHECK_THROWS_WITH(render("{% for i in range(100) %}{{ 'x' * 500 }}{% endfor %}", small), Catch::Contains("would exceed 10000 bytes"));
  CHECK_THROWS_WITH(render("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", small),
                    Catch::Contains("more than 1000000 bytes of values"));
  CHECK_THROWS_WITH(render("{{ 'x' * 9000000000000 }}"), Catch::Contains("too large"));
  CHECK_THROWS_WITH(render("{{ range(9000000000000000000) | length }}", small), Catch::Contains("bytes of values"));
  CHECK_THROWS_WITH(render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", small), Catch::Contains("nests deeper than 100 levels"));
  CHECK_THROWS_WITH(render("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}"),
                    Catch::Contains("nest deeper than 200 levels"));
  CHECK_THROWS_WITH(Template("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"), Catch::Contains("nests deeper than"));
  CHECK_THROWS_WITH(Template("{{ x" + std::string(50000, '|') + " }}"), Catch::Contains("expected a filter name"));
  std::string chain = "{{ 1";
  for (int i = 0; i < 50000; ++i) chain += " + 1";
  CHECK_THROWS_WITH(Template(chain + " }}"), Catch::Contains("an expression nests deeper than"));
  std::string blocks;
  for (int i = 0; i < 5000; ++i) blocks += "{% if true %}";
  CHECK_THROWS_WITH(Template(blocks), Catch::Contains("nests deeper than"));
  // Within the limits the same constructs work.
  CHECK(render("{% for i in range(3) %}{{ 'x' * 2 }}{% endfor %}", small) == "xxxxxx");
}

TEST_CASE("chat templates: values print and serialize as Python's", "[jinja]") {
  CHECK(float_repr(0.1) == "0.1");
  CHECK(float_repr(1e16) == "1e+16");
  CHECK(float_repr(1e15) == "1000000000000000.0");
  CHECK(float_repr(-1.5e-5) == "-1.5e-05");
  CHECK(float_repr(std::numeric_limits<double>::infinity()) == "inf");
  JsonFormat compact;
  compact.item_separator = ",";
  compact.key_separator = ":";
  CHECK(to_json(Value::from_json(nlohmann::ordered_json::parse(R"({"z":1,"a":[true,null,"\u00e9\n"]})")), compact) ==
        "{\"z\":1,\"a\":[true,null,\"\xC3\xA9\\n\"]}");
  JsonFormat ascii;
  ascii.ensure_ascii = true;
  CHECK(to_json(Value::string("\xF0\x9F\x9A\x80"), ascii) == "\"\\ud83d\\ude80\"");
  CHECK_THROWS_WITH(to_json(Value(), {}), Catch::Contains("not JSON serializable"));
  CHECK(to_str(Value::from_json(nlohmann::ordered_json::parse(R"({"k":[1,2.0,"it's",null]})"))) == "{'k': [1, 2.0, \"it's\", None]}");
}

}  // namespace accel::models::jinja
