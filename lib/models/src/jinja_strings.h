#pragma once
// Strings as Python handles them (strip, split, case, replace by code point), argument binding
// for the built-ins, and the string methods chat templates call. Private to lib/models.
#include "jinja_value.h"

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace accel::models::jinja {

class Interpreter;

// A built-in's arguments bound to its parameter names, positional or by keyword, as Python
// binds them: TemplateError naming the function for too many or unknown arguments.
class Params {
 public:
  Params(Interpreter& in, std::string function, const Args& args, std::initializer_list<const char*> names, int line);
  const Value* get(std::size_t i) const { return given_[i] ? &values_[i] : nullptr; }
  Value get_or(std::size_t i, Value fallback) const { return given_[i] ? values_[i] : std::move(fallback); }
  Value required(std::size_t i) const;
  std::string required_string(std::size_t i) const;
  std::optional<std::string> optional_string(std::size_t i) const;
  std::int64_t int_or(std::size_t i, std::int64_t fallback) const;
  bool bool_or(std::size_t i, bool fallback) const;

 private:
  Interpreter& in_;
  std::string function_;
  std::vector<std::string> names_;
  std::vector<Value> values_;
  std::vector<bool> given_;
  int line_;
};

namespace strings {
enum class Case { kUpper, kLower, kTitle, kCapitalize };
std::string change_case(const std::string& s, Case c);
// str.strip/lstrip/rstrip: Python whitespace, or any code point of `chars`.
std::string strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep, maxsplit): runs of whitespace when `sep` is absent.
std::vector<std::string> split(const std::string& s, const std::optional<std::string>& sep, std::int64_t max_split);
// str.replace(old, new, count); "" as `old` inserts between code points, as Python does.
std::string replace(const std::string& s, const std::string& old, const std::string& with, std::int64_t count);
std::size_t length(const std::string& s);  // in code points
// Runs of word characters (regex \w: letters, digits, underscore), as jinja2's wordcount.
std::size_t word_count(const std::string& s);
}  // namespace strings

// The bound method `name` of a string, or nullopt when str has no such method here.
std::optional<Value> string_method(const Value& self, const std::string& name);
// dict.items() / |items: (key, value) tuples in order.
Value dict_items(Interpreter& in, const Value& dict, int line);
// datetime.now().strftime(format) for strftime_now().
std::string strftime(Interpreter& in, const std::string& format, int line);
// range(stop) / range(start, stop[, step]) as a list.
Value range(Interpreter& in, Args args, int line);

}  // namespace accel::models::jinja
