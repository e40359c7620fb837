#include "jinja_strings.h"

#include "jinja_interpreter.h"
#include "jinja_utf8.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <ctime>
#include <functional>

namespace accel::models::jinja {
namespace {

std::vector<std::uint32_t> code_points(const std::string& s) {
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < s.size();) out.push_back(utf8::next(s, i));
  return out;
}

std::string from_code_points(const std::vector<std::uint32_t>& cps, std::size_t begin, std::size_t end) {
  std::string out;
  for (auto i = begin; i < end; ++i) utf8::append(out, cps[i]);
  return out;
}

enum class Mapping { kUpper, kLower, kTitle };

void append_mapped(std::string& out, std::uint32_t cp, Mapping m) {
  // The full mapping Python applies where the one-code-point mapping differs (German sharp s).
  if (cp == 0xDF && m != Mapping::kLower) {
    out += m == Mapping::kUpper ? "SS" : "Ss";
    return;
  }
  const auto c = static_cast<UChar32>(cp);
  utf8::append(out, static_cast<std::uint32_t>(m == Mapping::kUpper ? u_toupper(c) : m == Mapping::kLower ? u_tolower(c) : u_totitle(c)));
}

bool is_cased(std::uint32_t cp) { return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_CASED); }

Value method(const std::string& name, std::function<Value(Interpreter&, Args, int)> f) {
  return make_function("str." + name, std::move(f));
}

Value strings_to_list(Interpreter& in, const std::vector<std::string>& parts, int line) {
  std::vector<Value> out;
  std::size_t bytes = 0;
  for (const auto& p : parts) {
    bytes += p.size() + sizeof(Value);
    out.push_back(Value::string(p));
  }
  in.charge(bytes, line);
  return Value::list(std::move(out));
}

// startswith/endswith take a string or a tuple of strings.
bool affix_matches(Interpreter& in, const std::string& s, const Value& affix, bool at_start, int line) {
  const auto one = [&](const Value& v) {
    if (!v.is(Value::Kind::kString)) in.fail(line, std::string(at_start ? "startswith" : "endswith") + " takes strings, not " + v.type_name());
    const auto& a = v.as_string();
    if (a.size() > s.size()) return false;
    return at_start ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is(Value::Kind::kList)) {
    for (const auto& item : affix.as_list().items)
      if (one(item)) return true;
    return false;
  }
  return one(affix);
}

std::optional<Value> string_predicate(const Value& self, const std::string& name) {
  std::function<bool(std::uint32_t)> each;
  if (name == "isdigit") each = [](std::uint32_t c) { return u_isdigit(static_cast<UChar32>(c)) != 0; };
  if (name == "isalpha") each = [](std::uint32_t c) { return u_isalpha(static_cast<UChar32>(c)) != 0; };
  if (name == "isspace") each = [](std::uint32_t c) { return utf8::is_space(c); };
  if (!each) return std::nullopt;
  return method(name, [self, each](Interpreter&, Args, int) {
    const auto cps = code_points(self.as_string());
    return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), each));
  });
}

}  // namespace

Params::Params(Interpreter& in, std::string function, const Args& args, std::initializer_list<const char*> names, int line)
    : in_(in), function_(std::move(function)), names_(names.begin(), names.end()), values_(names.size()),
      given_(names.size(), false), line_(line) {
  if (args.positional.size() > names_.size())
    in.fail(line, function_ + "() takes at most " + std::to_string(names_.size()) + " argument(s), " +
                      std::to_string(args.positional.size()) + " given");
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    values_[i] = args.positional[i];
    given_[i] = true;
  }
  for (const auto& [name, value] : args.keyword) {
    const auto it = std::find(names_.begin(), names_.end(), name);
    if (it == names_.end()) in.fail(line, function_ + "() got an unexpected keyword argument '" + name + "'");
    const auto at = static_cast<std::size_t>(it - names_.begin());
    if (given_[at]) in.fail(line, function_ + "() got multiple values for argument '" + name + "'");
    values_[at] = value;
    given_[at] = true;
  }
}

Value Params::required(std::size_t i) const {
  if (!given_[i]) in_.fail(line_, function_ + "() is missing the argument '" + names_[i] + "'");
  return values_[i];
}

std::string Params::required_string(std::size_t i) const {
  const auto v = required(i);
  if (!v.is(Value::Kind::kString)) in_.fail(line_, function_ + "(): '" + names_[i] + "' must be a string, not " + v.type_name());
  return v.as_string();
}

std::optional<std::string> Params::optional_string(std::size_t i) const {
  if (!given_[i] || values_[i].is(Value::Kind::kNone)) return std::nullopt;
  return required_string(i);
}

std::int64_t Params::int_or(std::size_t i, std::int64_t fallback) const {
  if (!given_[i] || values_[i].is(Value::Kind::kNone)) return fallback;
  if (!values_[i].is(Value::Kind::kInt) && !values_[i].is(Value::Kind::kBool))
    in_.fail(line_, function_ + "(): '" + names_[i] + "' must be an integer, not " + values_[i].type_name());
  return values_[i].as_int();
}

bool Params::bool_or(std::size_t i, bool fallback) const { return given_[i] ? values_[i].truthy() : fallback; }

namespace strings {

std::string change_case(const std::string& s, Case c) {
  std::string out;
  bool previous_cased = false;
  bool first = true;
  for (std::size_t i = 0; i < s.size();) {
    const auto cp = utf8::next(s, i);
    auto m = c == Case::kUpper ? Mapping::kUpper : Mapping::kLower;
    if ((c == Case::kTitle && !previous_cased) || (c == Case::kCapitalize && first)) m = Mapping::kTitle;
    append_mapped(out, cp, m);
    previous_cased = is_cased(cp);
    first = false;
  }
  return out;
}

std::string strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right) {
  const auto cps = code_points(s);
  const auto set = chars ? code_points(*chars) : std::vector<std::uint32_t>{};
  const auto strippable = [&](std::uint32_t cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : utf8::is_space(cp);
  };
  std::size_t begin = 0, end = cps.size();
  if (left)
    while (begin < end && strippable(cps[begin])) ++begin;
  if (right)
    while (end > begin && strippable(cps[end - 1])) --end;
  return from_code_points(cps, begin, end);
}

std::vector<std::string> split(const std::string& s, const std::optional<std::string>& sep, std::int64_t max_split) {
  std::vector<std::string> out;
  if (sep) {
    std::size_t at = 0;
    for (std::size_t found; (max_split < 0 || static_cast<std::int64_t>(out.size()) < max_split) &&
                            (found = s.find(*sep, at)) != std::string::npos;
         at = found + sep->size())
      out.push_back(s.substr(at, found - at));
    out.push_back(s.substr(at));
    return out;
  }
  const auto cps = code_points(s);
  std::size_t i = 0;
  while (i < cps.size()) {
    while (i < cps.size() && utf8::is_space(cps[i])) ++i;
    if (i == cps.size()) break;
    if (max_split >= 0 && static_cast<std::int64_t>(out.size()) == max_split) {
      auto end = cps.size();
      while (end > i && utf8::is_space(cps[end - 1])) --end;
      out.push_back(from_code_points(cps, i, end));
      break;
    }
    const auto start = i;
    while (i < cps.size() && !utf8::is_space(cps[i])) ++i;
    out.push_back(from_code_points(cps, start, i));
  }
  return out;
}

std::string replace(const std::string& s, const std::string& old, const std::string& with, std::int64_t count) {
  std::string out;
  std::int64_t done = 0;
  if (old.empty()) {
    const auto offsets = utf8::offsets(s);
    for (std::size_t k = 0; k + 1 < offsets.size(); ++k) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      out.append(s, offsets[k], offsets[k + 1] - offsets[k]);
    }
    if (count < 0 || done < count) out += with;
    return out;
  }
  std::size_t at = 0;
  for (std::size_t found; (count < 0 || done < count) && (found = s.find(old, at)) != std::string::npos; ++done) {
    out.append(s, at, found - at);
    out += with;
    at = found + old.size();
  }
  out.append(s, at, std::string::npos);
  return out;
}

std::size_t length(const std::string& s) { return utf8::offsets(s).size() - 1; }

std::size_t word_count(const std::string& s) {
  std::size_t words = 0;
  bool in_word = false;
  for (std::size_t i = 0; i < s.size();) {
    const auto cp = static_cast<UChar32>(utf8::next(s, i));
    const bool word = cp == '_' || u_isalnum(cp) || u_hasBinaryProperty(cp, UCHAR_ALPHABETIC);
    words += word && !in_word;
    in_word = word;
  }
  return words;
}

}  // namespace strings

std::optional<Value> string_method(const Value& self, const std::string& name) {
  const auto& s = self.as_string();
  if (name == "startswith" || name == "endswith") {
    const bool at_start = name == "startswith";
    return method(name, [self, at_start, name](Interpreter& in, Args args, int line) {
      Params p(in, "str." + name, args, {"prefix"}, line);
      return Value::boolean(affix_matches(in, self.as_string(), p.required(0), at_start, line));
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool left = name != "rstrip", right = name != "lstrip";
    return method(name, [self, left, right, name](Interpreter& in, Args args, int line) {
      Params p(in, "str." + name, args, {"chars"}, line);
      return Value::string(strings::strip(self.as_string(), p.optional_string(0), left, right));
    });
  }
  if (name == "split")
    return method(name, [self](Interpreter& in, Args args, int line) {
      Params p(in, "str.split", args, {"sep", "maxsplit"}, line);
      const auto sep = p.optional_string(0);
      if (sep && sep->empty()) in.fail(line, "str.split(): empty separator");
      return strings_to_list(in, strings::split(self.as_string(), sep, p.int_or(1, -1)), line);
    });
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    const auto c = name == "upper"   ? strings::Case::kUpper
                   : name == "lower" ? strings::Case::kLower
                   : name == "title" ? strings::Case::kTitle
                                     : strings::Case::kCapitalize;
    return method(name, [self, c](Interpreter& in, Args, int line) {
      in.charge(self.as_string().size() * 2, line);
      return Value::string(strings::change_case(self.as_string(), c));
    });
  }
  if (name == "replace")
    return method(name, [self](Interpreter& in, Args args, int line) {
      Params p(in, "str.replace", args, {"old", "new", "count"}, line);
      const auto old = p.required_string(0), with = p.required_string(1);
      const auto n = strings::length(self.as_string()) + 1;
      in.charge(self.as_string().size() + with.size() * (old.empty() ? n : self.as_string().size() / old.size() + 1), line);
      return Value::string(strings::replace(self.as_string(), old, with, p.int_or(2, -1)));
    });
  if (name == "find" || name == "count")
    return method(name, [self, name](Interpreter& in, Args args, int line) {
      Params p(in, "str." + name, args, {"sub"}, line);
      const auto sub = p.required_string(0);
      const auto& text = self.as_string();
      if (name == "find") {
        const auto at = text.find(sub);
        return Value::integer(at == std::string::npos ? -1 : static_cast<std::int64_t>(strings::length(text.substr(0, at))));
      }
      if (sub.empty()) return Value::integer(static_cast<std::int64_t>(strings::length(text)) + 1);
      std::int64_t n = 0;
      for (auto at = text.find(sub); at != std::string::npos; at = text.find(sub, at + sub.size())) ++n;
      return Value::integer(n);
    });
  (void)s;
  return string_predicate(self, name);
}

Value dict_items(Interpreter& in, const Value& dict, int line) {
  std::vector<Value> out;
  in.charge(dict.as_dict().items.size() * 3 * sizeof(Value), line);
  for (const auto& [k, v] : dict.as_dict().items) out.push_back(Value::list({Value::string(k), v}, /*tuple=*/true));
  return Value::list(std::move(out));
}

std::string strftime(Interpreter& in, const std::string& format, int line) {
  const std::time_t now = in.now();
  std::tm local{};
  localtime_r(&now, &local);
  if (format.size() > 256) in.fail(line, "strftime_now(): the format is longer than 256 bytes");
  std::string out(format.size() * 16 + 64, '\0');
  const auto n = std::strftime(out.data(), out.size(), format.c_str(), &local);
  if (n == 0 && !format.empty()) return "";
  out.resize(n);
  return out;
}

Value range(Interpreter& in, Args args, int line) {
  std::int64_t start = 0, stop = 0, step = 1;
  for (const auto& a : args.positional)
    if (!a.is(Value::Kind::kInt) && !a.is(Value::Kind::kBool)) in.fail(line, "range() takes integers, not " + a.type_name());
  if (!args.keyword.empty()) in.fail(line, "range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.size() == 1) {
    stop = p[0].as_int();
  } else if (p.size() == 2 || p.size() == 3) {
    start = p[0].as_int();
    stop = p[1].as_int();
    if (p.size() == 3) step = p[2].as_int();
  } else {
    in.fail(line, "range() takes 1 to 3 arguments, " + std::to_string(p.size()) + " given");
  }
  if (step == 0) in.fail(line, "range() arg 3 must not be zero");
  std::vector<Value> out;
  for (auto i = start; step > 0 ? i < stop : i > stop; i += step) {
    in.charge(sizeof(Value), line);
    out.push_back(Value::integer(i));
    if (step > 0 ? i > stop - step : i < stop - step) break;  // the next step would overflow past stop
  }
  return Value::list(std::move(out));
}

}  // namespace accel::models::jinja
