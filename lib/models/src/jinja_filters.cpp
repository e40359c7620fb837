// jinja2's filters and tests as chat templates use them, with jinja2's argument names and
// defaults; tojson is transformers' (json.dumps with ensure_ascii=False).
#include "accel/core/text.h"
#include "jinja_builtins.h"
#include "jinja_interpreter.h"
#include "jinja_strings.h"
#include "jinja_utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

namespace accel::models::jinja {
namespace {

using FilterFn = std::function<Value(Interpreter&, const Value&, const Args&, int)>;
using TestFn = std::function<bool(Interpreter&, const Value&, const Args&, int)>;

Value str_value(Interpreter& in, std::string s, int line) {
  in.charge(s.size(), line);
  return Value::string(std::move(s));
}

std::size_t length_of(Interpreter& in, const Value& v, int line) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return strings::length(v.as_string());
    case Value::Kind::kList: return v.as_list().items.size();
    case Value::Kind::kDict: return v.as_dict().items.size();
    default: in.fail(line, "object of type '" + v.type_name() + "' has no len()");
  }
}

// jinja2's attribute getter for filters: "a.b.0" looks up each part, item first.
Value attribute_path(Interpreter& in, const Value& v, const std::string& path, int line) {
  Value out = v;
  for (const auto& part : text::split(path, '.')) {
    if (out.is_undefined()) return out;
    const auto index = text::parse_integer(part);
    out = get_item(in, out, index ? Value::integer(*index) : Value::string(part), line);
  }
  return out;
}

Value json_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "tojson", args, {"indent", "ensure_ascii", "separators", "sort_keys"}, line);
  JsonFormat format;
  if (const auto* indent = p.get(0); indent && !indent->is(Value::Kind::kNone)) {
    format.indent = static_cast<int>(std::clamp<std::int64_t>(p.int_or(0, 0), 0, 64));
    format.item_separator = ",";
  }
  format.ensure_ascii = p.bool_or(1, false);
  if (const auto* separators = p.get(2); separators && !separators->is(Value::Kind::kNone)) {
    if (!separators->is(Value::Kind::kList) || separators->as_list().items.size() != 2 ||
        !separators->as_list().items[0].is(Value::Kind::kString) || !separators->as_list().items[1].is(Value::Kind::kString))
      in.fail(line, "tojson(): separators must be a pair of strings");
    format.item_separator = separators->as_list().items[0].as_string();
    format.key_separator = separators->as_list().items[1].as_string();
  }
  format.sort_keys = p.bool_or(3, false);
  std::string out;
  try {
    out = to_json(v, format);
  } catch (const TemplateError& e) {
    in.fail(line, e.what());
  }
  return str_value(in, std::move(out), line);
}

std::optional<std::int64_t> parse_python_int(std::string s) {
  s = strings::strip(s, std::nullopt, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_python_float(const std::string& text) {
  auto s = strings::strip(text, std::nullopt, true, true);
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

Value int_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "int", args, {"default", "base"}, line);
  const auto fallback = p.get_or(0, Value::integer(0));
  if (v.is(Value::Kind::kInt) || v.is(Value::Kind::kBool)) return Value::integer(v.as_int());
  if (v.is(Value::Kind::kFloat)) {
    const double d = std::trunc(v.as_double());
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::integer(static_cast<std::int64_t>(d));
  }
  if (!v.is(Value::Kind::kString)) return fallback;
  if (const auto i = parse_python_int(v.as_string())) return Value::integer(*i);
  if (const auto d = parse_python_float(v.as_string()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18)
    return Value::integer(static_cast<std::int64_t>(std::trunc(*d)));
  return fallback;
}

Value float_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "float", args, {"default"}, line);
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is(Value::Kind::kString))
    if (const auto d = parse_python_float(v.as_string())) return Value::number(*d);
  return p.get_or(0, Value::number(0.0));
}

Value join_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "join", args, {"d", "attribute"}, line);
  const auto separator = p.get(0) ? to_str(*p.get(0)) : std::string();
  const auto attribute = p.optional_string(1);
  std::string out;
  bool first = true;
  for (const auto& item : iterate(in, v, line)) {
    if (!first) out += separator;
    first = false;
    out += to_str(attribute ? attribute_path(in, item, *attribute, line) : item);
    in.charge(separator.size() + 16, line);
  }
  return str_value(in, std::move(out), line);
}

Value first_or_last(Interpreter& in, const Value& v, bool first, int line) {
  if (v.is_undefined() && !first) in.fail(line, v.undefined_hint());
  const auto items = iterate(in, v, line);
  if (items.empty()) return Value::undefined(std::string("No ") + (first ? "first" : "last") + " item, sequence was empty.");
  return first ? items.front() : items.back();
}

// select/reject/selectattr/rejectattr: keeps the items whose test (or truth) is `keep`.
Value select_filter(Interpreter& in, const Value& v, const Args& args, bool by_attribute, bool keep, int line) {
  std::size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty() || !args.positional[0].is(Value::Kind::kString))
      in.fail(line, std::string(keep ? "selectattr" : "rejectattr") + "() needs an attribute name");
    attribute = args.positional[next++].as_string();
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is(Value::Kind::kString)) in.fail(line, "the test of a select filter must be named by a string");
    test = args.positional[next++].as_string();
    if (!is_test(test)) in.fail(line, "no test named " + text::quote(test) + " (supported: " + test_names() + ")");
  }
  Args test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end());
  std::vector<Value> out;
  for (const auto& item : iterate(in, v, line)) {
    in.step(line);
    const auto subject = by_attribute ? attribute_path(in, item, attribute, line) : item;
    const bool passed = test.empty() ? subject.truthy() : apply_test(in, test, subject, test_args, line);
    if (passed == keep) out.push_back(item);
  }
  in.charge(out.size() * sizeof(Value), line);
  return Value::list(std::move(out));
}

Value map_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  std::vector<Value> out;
  const auto items = iterate(in, v, line);
  in.charge(items.size() * sizeof(Value), line);
  if (args.positional.empty()) {
    Params p(in, "map", args, {"attribute", "default"}, line);
    const auto attribute = p.required_string(0);
    for (const auto& item : items) {
      auto value = attribute_path(in, item, attribute, line);
      out.push_back(value.is_undefined() && p.get(1) ? *p.get(1) : value);
    }
    return Value::list(std::move(out));
  }
  if (!args.positional[0].is(Value::Kind::kString)) in.fail(line, "map() needs a filter name or attribute=");
  const auto filter = args.positional[0].as_string();
  if (!is_filter(filter)) in.fail(line, "no filter named " + text::quote(filter) + " (supported: " + filter_names() + ")");
  Args rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const auto& item : items) {
    in.step(line);
    out.push_back(apply_filter(in, filter, item, rest, line));
  }
  return Value::list(std::move(out));
}

// The key a sort or unique compares: an attribute of each item, lowercased unless case_sensitive.
Value sort_key(Interpreter& in, const Value& item, const std::optional<std::string>& attribute, bool case_sensitive, int line) {
  auto key = attribute ? attribute_path(in, item, *attribute, line) : item;
  if (!case_sensitive && key.is(Value::Kind::kString))
    return Value::string(strings::change_case(key.as_string(), strings::Case::kLower));
  return key;
}

void sort_values(Interpreter& in, std::vector<Value>& items, const std::function<Value(const Value&)>& key, bool reverse, int line) {
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& item : items) keyed.emplace_back(key(item), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    const auto lt = reverse ? less(b.first, a.first) : less(a.first, b.first);
    if (!lt) in.fail(line, "cannot sort values of types '" + a.first.type_name() + "' and '" + b.first.type_name() + "'");
    return *lt;
  });
  for (std::size_t i = 0; i < items.size(); ++i) items[i] = keyed[i].second;
}

Value sort_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "sort", args, {"reverse", "case_sensitive", "attribute"}, line);
  auto items = iterate(in, v, line);
  const auto attribute = p.optional_string(2);
  const bool case_sensitive = p.bool_or(1, false);
  sort_values(in, items, [&](const Value& x) { return sort_key(in, x, attribute, case_sensitive, line); }, p.bool_or(0, false), line);
  return Value::list(std::move(items));
}

Value dictsort_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "dictsort", args, {"case_sensitive", "by", "reverse"}, line);
  if (!v.is(Value::Kind::kDict)) in.fail(line, "dictsort() needs a dict, not " + v.type_name());
  const auto by = p.optional_string(1).value_or("key");
  if (by != "key" && by != "value") in.fail(line, "dictsort(): by must be 'key' or 'value'");
  auto items = dict_items(in, v, line).as_list().items;
  const bool case_sensitive = p.bool_or(0, false);
  const std::size_t at = by == "key" ? 0 : 1;
  sort_values(in, items, [&](const Value& x) { return sort_key(in, x.as_list().items[at], std::nullopt, case_sensitive, line); },
              p.bool_or(2, false), line);
  return Value::list(std::move(items));
}

Value unique_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "unique", args, {"case_sensitive", "attribute"}, line);
  const auto attribute = p.optional_string(1);
  const bool case_sensitive = p.bool_or(0, false);
  std::vector<Value> out, seen;
  for (const auto& item : iterate(in, v, line)) {
    const auto key = sort_key(in, item, attribute, case_sensitive, line);
    bool found = false;
    for (const auto& s : seen) {
      in.step(line);
      if (equal(s, key)) {
        found = true;
        break;
      }
    }
    if (found) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value extreme_filter(Interpreter& in, const Value& v, const Args& args, bool largest, int line) {
  Params p(in, largest ? "max" : "min", args, {"case_sensitive", "attribute"}, line);
  auto items = iterate(in, v, line);
  if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  const auto attribute = p.optional_string(1);
  const bool case_sensitive = p.bool_or(0, false);
  sort_values(in, items, [&](const Value& x) { return sort_key(in, x, attribute, case_sensitive, line); }, largest, line);
  return items.front();
}

Value sum_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "sum", args, {"attribute", "start"}, line);
  const auto attribute = p.optional_string(0);
  auto total = p.get_or(1, Value::integer(0));
  for (const auto& item : iterate(in, v, line)) total = arithmetic(in, "+", total, attribute ? attribute_path(in, item, *attribute, line) : item, line);
  return total;
}

Value round_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "round", args, {"precision", "method"}, line);
  const auto precision = std::clamp<std::int64_t>(p.int_or(0, 0), -20, 20);
  const auto method = p.optional_string(1).value_or("common");
  if (!v.is_number()) in.fail(line, "round() needs a number, not " + v.type_name());
  if (method != "common" && method != "ceil" && method != "floor") in.fail(line, "round(): method must be common, ceil or floor");
  const double scale = std::pow(10.0, static_cast<double>(precision));
  double r;
  if (method == "common") {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::max<std::int64_t>(precision, 0)), v.as_double());
    r = precision >= 0 ? std::strtod(buf, nullptr) : std::nearbyint(v.as_double() * scale) / scale;
  } else {
    r = (method == "ceil" ? std::ceil(v.as_double() * scale) : std::floor(v.as_double() * scale)) / scale;
  }
  if (v.is(Value::Kind::kInt) && method == "common") return Value::integer(v.as_int());
  return Value::number(r);
}

// jinja2's title: each word (after -, whitespace, or an opening bracket) capitalized.
std::string jinja_title(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (std::size_t i = 0; i < s.size();) {
    const auto start = i;
    const auto cp = utf8::next(s, i);
    const bool separator = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || utf8::is_space(cp);
    const auto piece = s.substr(start, i - start);
    out += strings::change_case(piece, word_start || separator ? strings::Case::kUpper : strings::Case::kLower);
    word_start = separator;
  }
  return out;
}

Value indent_filter(Interpreter& in, const Value& v, const Args& args, int line) {
  Params p(in, "indent", args, {"width", "first", "blank"}, line);
  const auto* width = p.get(0);
  const std::string indention = width && width->is(Value::Kind::kString)
                                    ? width->as_string()
                                    : std::string(static_cast<std::size_t>(std::clamp<std::int64_t>(p.int_or(0, 4), 0, 256)), ' ');
  auto lines = text::split(to_str(v) + "\n", '\n');
  lines.pop_back();
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += "\n" + ((lines[i].empty() && !p.bool_or(2, false)) ? "" : indention);
    out += lines[i];
    in.charge(lines[i].size() + indention.size() + 1, line);
  }
  if (p.bool_or(1, false)) out = indention + out;
  return Value::string(std::move(out));
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value case_filter(Interpreter& in, const Value& v, strings::Case c, int line) {
  const auto s = to_str(v);
  in.charge(s.size() * 2, line);
  return Value::string(c == strings::Case::kTitle ? jinja_title(s) : strings::change_case(s, c));
}

Value no_args(Interpreter& in, const char* name, const Args& args, int line) {
  Params p(in, name, args, {}, line);
  return Value();
}

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> table = {
      {"abs", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "abs", a, line);
         return v.is(Value::Kind::kFloat) ? Value::number(std::fabs(v.as_double()))
                                          : (v.is_number() && v.as_int() < 0 ? arithmetic(in, "neg", v, Value(), line) : arithmetic(in, "pos", v, Value(), line)); }},
      {"capitalize", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "capitalize", a, line); return case_filter(in, v, strings::Case::kCapitalize, line); }},
      {"count", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "count", a, line); return Value::integer(static_cast<std::int64_t>(length_of(in, v, line))); }},
      {"default", [](Interpreter& in, const Value& v, const Args& a, int line) {
         Params p(in, "default", a, {"default_value", "boolean"}, line);
         const bool use_default = v.is_undefined() || (p.bool_or(1, false) && !v.truthy());
         return use_default ? p.get_or(0, Value::string("")) : v; }},
      {"dictsort", dictsort_filter},
      {"escape", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "escape", a, line); return str_value(in, escape_html(to_str(v)), line); }},
      {"first", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "first", a, line); return first_or_last(in, v, true, line); }},
      {"float", float_filter},
      {"indent", indent_filter},
      {"int", int_filter},
      {"items", [](Interpreter& in, const Value& v, const Args& a, int line) {
         no_args(in, "items", a, line);
         if (v.is_undefined()) return Value::list({});
         if (!v.is(Value::Kind::kDict)) in.fail(line, "the items filter needs a dict, not " + v.type_name());
         return dict_items(in, v, line); }},
      {"join", join_filter},
      {"last", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "last", a, line); return first_or_last(in, v, false, line); }},
      {"list", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "list", a, line); return Value::list(iterate(in, v, line)); }},
      {"lower", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "lower", a, line); return case_filter(in, v, strings::Case::kLower, line); }},
      {"map", map_filter},
      {"max", [](Interpreter& in, const Value& v, const Args& a, int line) { return extreme_filter(in, v, a, true, line); }},
      {"min", [](Interpreter& in, const Value& v, const Args& a, int line) { return extreme_filter(in, v, a, false, line); }},
      {"reject", [](Interpreter& in, const Value& v, const Args& a, int line) { return select_filter(in, v, a, false, false, line); }},
      {"rejectattr", [](Interpreter& in, const Value& v, const Args& a, int line) { return select_filter(in, v, a, true, false, line); }},
      {"replace", [](Interpreter& in, const Value& v, const Args& a, int line) {
         Params p(in, "replace", a, {"old", "new", "count"}, line);
         const auto s = to_str(v);
         const auto old = to_str(p.required(0)), with = to_str(p.required(1));
         in.charge(s.size() + with.size() * (old.empty() ? strings::length(s) + 1 : s.size() / old.size() + 1), line);
         return Value::string(strings::replace(s, old, with, p.int_or(2, -1))); }},
      {"reverse", [](Interpreter& in, const Value& v, const Args& a, int line) {
         no_args(in, "reverse", a, line);
         auto items = iterate(in, v, line);
         std::reverse(items.begin(), items.end());
         if (!v.is(Value::Kind::kString)) return Value::list(std::move(items));
         std::string out;
         for (const auto& c : items) out += c.as_string();
         return Value::string(std::move(out)); }},
      {"round", round_filter},
      {"safe", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "safe", a, line); return str_value(in, to_str(v), line); }},
      {"select", [](Interpreter& in, const Value& v, const Args& a, int line) { return select_filter(in, v, a, false, true, line); }},
      {"selectattr", [](Interpreter& in, const Value& v, const Args& a, int line) { return select_filter(in, v, a, true, true, line); }},
      {"sort", sort_filter},
      {"string", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "string", a, line); return str_value(in, to_str(v), line); }},
      {"sum", sum_filter},
      {"title", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "title", a, line); return case_filter(in, v, strings::Case::kTitle, line); }},
      {"tojson", json_filter},
      {"trim", [](Interpreter& in, const Value& v, const Args& a, int line) {
         Params p(in, "trim", a, {"chars"}, line);
         return str_value(in, strings::strip(to_str(v), p.optional_string(0), true, true), line); }},
      {"unique", unique_filter},
      {"upper", [](Interpreter& in, const Value& v, const Args& a, int line) { no_args(in, "upper", a, line); return case_filter(in, v, strings::Case::kUpper, line); }},
      {"wordcount", [](Interpreter& in, const Value& v, const Args& a, int line) {
         no_args(in, "wordcount", a, line);
         return Value::integer(static_cast<std::int64_t>(strings::word_count(to_str(v)))); }},
  };
  return table;
}

const std::map<std::string, std::string>& filter_aliases() {
  static const std::map<std::string, std::string> aliases = {{"d", "default"}, {"e", "escape"}, {"length", "count"}};
  return aliases;
}

bool compare_test(Interpreter& in, const std::string& op, const Value& v, const Args& a, int line) {
  Params p(in, op, a, {"other"}, line);
  const auto other = p.required(0);
  if (op == "==") return equal(v, other);
  if (op == "!=") return !equal(v, other);
  const auto lt = (op == ">" || op == "<=") ? less(other, v) : less(v, other);
  if (!lt) in.fail(line, "'" + op + "' is not supported between '" + v.type_name() + "' and '" + other.type_name() + "'");
  return (op == "<" || op == ">") ? *lt : !*lt;
}

TestFn kind_test(std::function<bool(const Value&)> f) {
  return [f](Interpreter& in, const Value& v, const Args& a, int line) {
    no_args(in, "test", a, line);
    return f(v);
  };
}

TestFn compare(const std::string& op) {
  return [op](Interpreter& in, const Value& v, const Args& a, int line) { return compare_test(in, op, v, a, line); };
}

bool integer_test(Interpreter& in, const Value& v, const Args& a, int line, int which) {
  if (which == 2) {
    Params p(in, "divisibleby", a, {"num"}, line);
    const auto n = p.int_or(0, 1);
    if (n == 0) in.fail(line, "divisibleby(0)");
    if (!v.is(Value::Kind::kInt) && !v.is(Value::Kind::kBool)) in.fail(line, "divisibleby needs an integer");
    return v.as_int() % n == 0;
  }
  no_args(in, "test", a, line);
  if (!v.is(Value::Kind::kInt) && !v.is(Value::Kind::kBool)) in.fail(line, std::string(which ? "odd" : "even") + " needs an integer");
  return (v.as_int() % 2 != 0) == (which == 1);
}

const std::map<std::string, TestFn>& tests() {
  using K = Value::Kind;
  static const std::map<std::string, TestFn> table = {
      {"defined", kind_test([](const Value& v) { return !v.is_undefined(); })},
      {"undefined", kind_test([](const Value& v) { return v.is_undefined(); })},
      {"none", kind_test([](const Value& v) { return v.is(K::kNone); })},
      {"boolean", kind_test([](const Value& v) { return v.is(K::kBool); })},
      {"true", kind_test([](const Value& v) { return v.is(K::kBool) && v.as_bool(); })},
      {"false", kind_test([](const Value& v) { return v.is(K::kBool) && !v.as_bool(); })},
      {"integer", kind_test([](const Value& v) { return v.is(K::kInt); })},
      {"float", kind_test([](const Value& v) { return v.is(K::kFloat); })},
      {"number", kind_test([](const Value& v) { return v.is_number(); })},
      {"string", kind_test([](const Value& v) { return v.is(K::kString); })},
      {"mapping", kind_test([](const Value& v) { return v.is(K::kDict); })},
      {"iterable", kind_test([](const Value& v) { return v.is(K::kUndefined) || v.is(K::kString) || v.is(K::kList) || v.is(K::kDict); })},
      {"sequence", kind_test([](const Value& v) { return v.is(K::kUndefined) || v.is(K::kString) || v.is(K::kList) || v.is(K::kDict); })},
      {"callable", kind_test([](const Value& v) { return v.is(K::kCallable); })},
      {"lower", kind_test([](const Value& v) {
         const auto s = to_str(v);
         return strings::change_case(s, strings::Case::kLower) == s && strings::change_case(s, strings::Case::kUpper) != s; })},
      {"upper", kind_test([](const Value& v) {
         const auto s = to_str(v);
         return strings::change_case(s, strings::Case::kUpper) == s && strings::change_case(s, strings::Case::kLower) != s; })},
      {"sameas", [](Interpreter& in, const Value& v, const Args& a, int line) {
         Params p(in, "sameas", a, {"other"}, line);
         const auto other = p.required(0);
         return v.kind() == other.kind() && equal(v, other) && (v.is(K::kNone) || v.is(K::kBool) || v.is(K::kInt) || v.is(K::kString)); }},
      {"==", compare("==")}, {"eq", compare("==")}, {"equalto", compare("==")},
      {"!=", compare("!=")}, {"ne", compare("!=")},
      {"<", compare("<")}, {"lt", compare("<")}, {"lessthan", compare("<")},
      {"<=", compare("<=")}, {"le", compare("<=")},
      {">", compare(">")}, {"gt", compare(">")}, {"greaterthan", compare(">")},
      {">=", compare(">=")}, {"ge", compare(">=")},
      {"in", [](Interpreter& in, const Value& v, const Args& a, int line) {
         Params p(in, "in", a, {"seq"}, line);
         return contains(in, p.required(0), v, line); }},
      {"even", [](Interpreter& in, const Value& v, const Args& a, int line) { return integer_test(in, v, a, line, 0); }},
      {"odd", [](Interpreter& in, const Value& v, const Args& a, int line) { return integer_test(in, v, a, line, 1); }},
      {"divisibleby", [](Interpreter& in, const Value& v, const Args& a, int line) { return integer_test(in, v, a, line, 2); }},
  };
  return table;
}

template <typename Table>
std::string names_of(const Table& table, const std::map<std::string, std::string>& aliases = {}) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.push_back(entry.first);
  for (const auto& entry : aliases) names.push_back(entry.first);
  std::sort(names.begin(), names.end());
  return text::join(names, ", ");
}

}  // namespace

bool is_filter(const std::string& name) { return filters().count(name) || filter_aliases().count(name); }
bool is_test(const std::string& name) { return tests().count(name) > 0; }
std::string filter_names() { return names_of(filters(), filter_aliases()); }
std::string test_names() { return names_of(tests()); }

Value apply_filter(Interpreter& in, const std::string& name, const Value& input, Args args, int line) {
  const auto alias = filter_aliases().find(name);
  const auto& key = alias == filter_aliases().end() ? name : alias->second;
  const auto it = filters().find(key);
  if (it == filters().end()) in.fail(line, "no filter named " + text::quote(name));
  return it->second(in, input, args, line);
}

bool apply_test(Interpreter& in, const std::string& name, const Value& subject, Args args, int line) {
  const auto it = tests().find(name);
  if (it == tests().end()) in.fail(line, "no test named " + text::quote(name));
  return it->second(in, subject, args, line);
}

}  // namespace accel::models::jinja
