#pragma once
// The values a chat template computes with, as jinja2 sees Python's: undefined, none, bool, int,
// float, string, list (or tuple), dict (insertion-ordered), namespace, and callables (macros,
// globals, bound methods). Lists and dicts are immutable once built (transformers renders in
// jinja2's ImmutableSandboxedEnvironment); only a namespace's attributes change. Private to
// lib/models; torch-free.
#include "accel/core/error.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace accel::models::jinja {

// A template that cannot be parsed or rendered: the message names the template line.
class TemplateError : public UsageError {
 public:
  using UsageError::UsageError;
};

// Containers nest at most this deep (a template building [[[...]]] in a loop stops here), so
// printing, comparing and freeing a value never recurse far.
inline constexpr int kMaxNesting = 200;

class Value;
class Callable;

struct ListData {
  std::vector<Value> items;
  bool tuple = false;  // printed as (a, b) like Python's tuples
  int depth = 1;
  bool holds_namespace = false;
};

struct DictData {
  std::vector<std::pair<std::string, Value>> items;  // in insertion order, as Python's dicts
  std::unordered_map<std::string, std::size_t> index;
  int depth = 1;
  bool holds_namespace = false;

  const Value* find(const std::string& key) const;
  // Adds or replaces `key`; the nesting and namespace bookkeeping follow `value`.
  void put(const std::string& key, Value value);
};

// jinja2's namespace(): the one mutable object, changed by {% set ns.attr = ... %}.
struct NamespaceData {
  DictData attributes;
};

struct Undefined {
  std::string hint;  // "'x' is undefined", for the error when it is used
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

  Value() : data_(Undefined{}) {}
  static Value undefined(std::string hint) { return Value(Data(Undefined{std::move(hint)})); }
  static Value none() { return Value(Data(std::monostate{})); }
  static Value boolean(bool b) { return Value(Data(b)); }
  static Value integer(std::int64_t i) { return Value(Data(i)); }
  static Value number(double d) { return Value(Data(d)); }
  static Value string(std::string s) { return Value(Data(std::make_shared<const std::string>(std::move(s)))); }
  // TemplateError when the result would nest deeper than kMaxNesting.
  static Value list(std::vector<Value> items, bool tuple = false);
  static Value dict(DictData data);
  static Value make_namespace(DictData attributes);
  static Value callable(std::shared_ptr<const Callable> fn) { return Value(Data(std::move(fn))); }
  // JSON as the template sees it: objects keep their key order. TemplateError past kMaxNesting.
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is(Kind k) const { return kind() == k; }
  bool is_undefined() const { return is(Kind::kUndefined); }
  bool is_number() const { return is(Kind::kInt) || is(Kind::kFloat) || is(Kind::kBool); }

  bool as_bool() const { return std::get<bool>(data_); }
  std::int64_t as_int() const;  // bools as 0/1, as Python's
  double as_double() const;     // any number
  const std::string& as_string() const { return *std::get<StringP>(data_); }
  const ListData& as_list() const { return *std::get<ListP>(data_); }
  const DictData& as_dict() const { return *std::get<DictP>(data_); }
  NamespaceData& as_namespace() const { return *std::get<NamespaceP>(data_); }
  const Callable& as_callable() const { return *std::get<CallableP>(data_); }
  const std::string& undefined_hint() const { return std::get<Undefined>(data_).hint; }

  int depth() const;
  // Whether a namespace or a callable is in the value: a namespace may not hold one (its
  // attributes outlive the scopes a callable refers to, and would allow cycles).
  bool holds_namespace() const;
  bool truthy() const;
  // Python's type name, for messages ("'int' object has no attribute 'x'").
  std::string type_name() const;

 private:
  using StringP = std::shared_ptr<const std::string>;
  using ListP = std::shared_ptr<const ListData>;
  using DictP = std::shared_ptr<const DictData>;
  using NamespaceP = std::shared_ptr<NamespaceData>;
  using CallableP = std::shared_ptr<const Callable>;
  // The order matches Kind.
  using Data = std::variant<Undefined, std::monostate, bool, std::int64_t, double, StringP, ListP, DictP,
                            NamespaceP, CallableP>;
  explicit Value(Data data) : data_(std::move(data)) {}
  Data data_;
};

// Python's str() of a value as jinja2 prints it ({{ x }}, ~, |string): None, True, 1.5, 1e+20,
// ['a', 1], {'k': (1, 2)}; undefined prints nothing.
std::string to_str(const Value& v);
// Python's repr(): strings quoted.
std::string to_repr(const Value& v);
// Python's float repr: shortest round trip, 1.0, 1e-05, 1e+16, inf, nan.
std::string float_repr(double d);

struct JsonFormat {
  std::optional<int> indent;           // none: one line
  std::string item_separator = ", ";   // json.dumps' defaults; ',' when indented
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;  // transformers' tojson passes false
};
// json.dumps as transformers' tojson filter calls it. TemplateError for undefined, namespaces
// and callables (json.dumps cannot serialise them).
std::string to_json(const Value& v, const JsonFormat& format);

// Python's ==: 1 == 1.0 == True, lists and dicts element-wise.
bool equal(const Value& a, const Value& b);
// Python's <, or nullopt when the types do not compare.
std::optional<bool> less(const Value& a, const Value& b);

// Arguments of a call: positional, then keyword in the order written.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Interpreter;

// Something a template can call: a macro, a global (range, namespace, raise_exception,
// strftime_now), a string's or dict's method bound to it.
class Callable {
 public:
  virtual ~Callable() = default;
  virtual std::string name() const = 0;
  virtual Value call(Interpreter& interpreter, Args args, int line) const = 0;
};

// A callable made of a function: the globals, bound methods, loop.cycle and caller.
Value make_function(std::string name, std::function<Value(Interpreter&, Args, int)> f);

}  // namespace accel::models::jinja
