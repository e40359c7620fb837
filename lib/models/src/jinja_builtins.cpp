// Access, operators, methods and globals of the chat template interpreter, with Python's and
// jinja2's semantics (filters and tests are in jinja_filters.cpp).
#include "jinja_builtins.h"

#include "jinja_interpreter.h"
#include "jinja_strings.h"
#include "jinja_utf8.h"

#include <cmath>
#include <functional>
#include <limits>

namespace accel::models::jinja {
namespace {

// The result of a __builtin_*_overflow operation, or TemplateError when it overflowed.
template <typename Op>
std::int64_t checked(Interpreter& in, std::int64_t x, std::int64_t y, Op op, int line) {
  std::int64_t result = 0;
  if (op(x, y, &result)) in.fail(line, "integer overflow (chat templates compute with 64-bit integers)");
  return result;
}

bool add_overflow(std::int64_t x, std::int64_t y, std::int64_t* r) { return __builtin_add_overflow(x, y, r); }
bool sub_overflow(std::int64_t x, std::int64_t y, std::int64_t* r) { return __builtin_sub_overflow(x, y, r); }
bool mul_overflow(std::int64_t x, std::int64_t y, std::int64_t* r) { return __builtin_mul_overflow(x, y, r); }

Value repeat(Interpreter& in, const Value& sequence, std::int64_t times, int line) {
  const auto n = static_cast<std::size_t>(std::max<std::int64_t>(times, 0));
  if (sequence.is(Value::Kind::kString)) {
    const auto& s = sequence.as_string();
    if (!s.empty() && n > (std::size_t{1} << 40) / s.size()) in.fail(line, "a repeated string would be too large");
    in.charge(s.size() * n, line);
    std::string out;
    out.reserve(s.size() * n);
    for (std::size_t i = 0; i < n; ++i) out += s;
    return Value::string(std::move(out));
  }
  const auto& items = sequence.as_list().items;
  if (!items.empty() && n > (std::size_t{1} << 40) / items.size()) in.fail(line, "a repeated list would be too large");
  in.charge(items.size() * n * sizeof(Value), line);
  std::vector<Value> out;
  for (std::size_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), sequence.as_list().tuple);
}

Value float_arithmetic(Interpreter& in, const std::string& op, double x, double y, int line) {
  if ((op == "/" || op == "//" || op == "%") && y == 0.0) in.fail(line, "float division by zero");
  if (op == "+") return Value::number(x + y);
  if (op == "-") return Value::number(x - y);
  if (op == "*") return Value::number(x * y);
  if (op == "/") return Value::number(x / y);
  if (op == "//") return Value::number(std::floor(x / y));
  if (op == "%") {
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value::number(r);
  }
  return Value::number(std::pow(x, y));
}

Value int_power(Interpreter& in, std::int64_t x, std::int64_t y, int line) {
  if (y < 0) return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
  std::int64_t result = 1;
  for (std::int64_t i = 0; i < y; ++i) {
    in.step(line);
    result = checked(in, result, x, mul_overflow, line);
    if (result == 0 || result == 1) break;
  }
  return Value::integer(result);
}

Value int_arithmetic(Interpreter& in, const std::string& op, std::int64_t x, std::int64_t y, int line) {
  if (op == "+") return Value::integer(checked(in, x, y, add_overflow, line));
  if (op == "-") return Value::integer(checked(in, x, y, sub_overflow, line));
  if (op == "*") return Value::integer(checked(in, x, y, mul_overflow, line));
  if (op == "**") return int_power(in, x, y, line);
  if (op == "/") {
    if (y == 0) in.fail(line, "division by zero");
    return Value::number(static_cast<double>(x) / static_cast<double>(y));
  }
  if (y == 0) in.fail(line, "integer division or modulo by zero");
  if (x == std::numeric_limits<std::int64_t>::min() && y == -1) in.fail(line, "integer overflow");
  std::int64_t q = x / y, m = x % y;
  if (m != 0 && ((m < 0) != (y < 0))) {
    --q;
    m += y;
  }
  return Value::integer(op == "//" ? q : m);
}

Value concatenate(Interpreter& in, const Value& a, const Value& b, int line) {
  if (a.is(Value::Kind::kString)) {
    in.charge(a.as_string().size() + b.as_string().size(), line);
    return Value::string(a.as_string() + b.as_string());
  }
  const auto &x = a.as_list().items, &y = b.as_list().items;
  in.charge((x.size() + y.size()) * sizeof(Value), line);
  std::vector<Value> items = x;
  items.insert(items.end(), y.begin(), y.end());
  return Value::list(std::move(items), a.as_list().tuple);
}

bool same_sequence_kind(const Value& a, const Value& b) {
  if (a.is(Value::Kind::kString) && b.is(Value::Kind::kString)) return true;
  return a.is(Value::Kind::kList) && b.is(Value::Kind::kList) && a.as_list().tuple == b.as_list().tuple;
}

// Python's slice.indices(): the start, stop and step over a sequence of `n`.
struct SliceBounds {
  std::int64_t start, stop, step;
};

SliceBounds slice_bounds(Interpreter& in, std::int64_t n, const Value* start, const Value* stop, const Value* step,
                         int line) {
  const auto part = [&](const Value* v, const char* what) -> std::optional<std::int64_t> {
    if (!v || v->is(Value::Kind::kNone)) return std::nullopt;
    if (!v->is(Value::Kind::kInt) && !v->is(Value::Kind::kBool))
      in.fail(line, std::string("slice ") + what + " must be an integer or none, not " + v->type_name());
    return v->as_int();
  };
  const std::int64_t s = part(step, "step").value_or(1);
  if (s == 0) in.fail(line, "slice step cannot be zero");
  const auto clamp = [&](std::optional<std::int64_t> v, std::int64_t fallback) {
    if (!v) return fallback;
    std::int64_t x = *v < 0 ? *v + n : *v;
    if (s > 0) return std::clamp<std::int64_t>(x, 0, n);
    return std::clamp<std::int64_t>(x, -1, n - 1);
  };
  return {clamp(part(start, "start"), s > 0 ? 0 : n - 1), clamp(part(stop, "stop"), s > 0 ? n : -1), s};
}

std::optional<Value> dict_method(const Value& self, const std::string& name) {
  if (name == "items")
    return make_function("items", [self](Interpreter& in, Args, int line) { return dict_items(in, self, line); });
  if (name == "keys" || name == "values") {
    const bool keys = name == "keys";
    return make_function(name, [self, keys](Interpreter& in, Args, int line) {
      std::vector<Value> out;
      in.charge(self.as_dict().items.size() * sizeof(Value), line);
      for (const auto& [k, v] : self.as_dict().items) out.push_back(keys ? Value::string(k) : v);
      return Value::list(std::move(out));
    });
  }
  if (name == "get")
    return make_function("get", [self](Interpreter& in, Args args, int line) {
      Params p(in, "dict.get", args, {"key", "default"}, line);
      const auto key = p.required(0);
      const auto* found = key.is(Value::Kind::kString) ? self.as_dict().find(key.as_string()) : nullptr;
      return found ? *found : p.get_or(1, Value::none());
    });
  return std::nullopt;
}

bool is_mutating_method(const std::string& name) {
  static const char* const names[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                                      "update", "setdefault", "popitem", "copy", "fromkeys"};
  for (const char* n : names)
    if (name == n) return true;
  return false;
}

}  // namespace

Value get_attribute(Interpreter& in, const Value& object, const std::string& name, int line) {
  switch (object.kind()) {
    case Value::Kind::kUndefined: in.fail(line, object.undefined_hint());
    case Value::Kind::kDict: {
      if (auto method = dict_method(object, name)) return *method;
      if (is_mutating_method(name)) in.fail(line, "the dict method '" + name + "' is not allowed (templates cannot change values)");
      if (const auto* found = object.as_dict().find(name)) return *found;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Value::Kind::kNamespace: {
      if (const auto* found = object.as_namespace().attributes.find(name)) return *found;
      return Value::undefined("namespace has no attribute '" + name + "'");
    }
    case Value::Kind::kString:
      if (auto method = string_method(object, name)) return *method;
      break;
    case Value::Kind::kList:
      if (is_mutating_method(name)) in.fail(line, "the list method '" + name + "' is not allowed (templates cannot change values)");
      break;
    default: break;
  }
  return Value::undefined("'" + object.type_name() + " object' has no attribute '" + name + "'");
}

Value get_item(Interpreter& in, const Value& object, const Value& key, int line) {
  switch (object.kind()) {
    case Value::Kind::kUndefined: in.fail(line, object.undefined_hint());
    case Value::Kind::kDict:
      if (key.is(Value::Kind::kString)) {
        if (const auto* found = object.as_dict().find(key.as_string())) return *found;
        if (auto method = dict_method(object, key.as_string())) return *method;
      }
      return Value::undefined("'dict object' has no attribute " + to_repr(key));
    case Value::Kind::kNamespace:
      if (key.is(Value::Kind::kString)) return get_attribute(in, object, key.as_string(), line);
      break;
    case Value::Kind::kList:
    case Value::Kind::kString: {
      if (key.is(Value::Kind::kString)) return get_attribute(in, object, key.as_string(), line);
      if (!key.is(Value::Kind::kInt) && !key.is(Value::Kind::kBool)) break;
      const bool is_list = object.is(Value::Kind::kList);
      const auto offsets = is_list ? std::vector<std::size_t>{} : utf8::offsets(object.as_string());
      const auto n = static_cast<std::int64_t>(is_list ? object.as_list().items.size() : offsets.size() - 1);
      auto i = key.as_int();
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined(object.type_name() + " index out of range");
      const auto at = static_cast<std::size_t>(i);
      if (is_list) return object.as_list().items[at];
      return Value::string(object.as_string().substr(offsets[at], offsets[at + 1] - offsets[at]));
    }
    default: break;
  }
  return Value::undefined("'" + object.type_name() + " object' has no item " + to_repr(key));
}

Value get_slice(Interpreter& in, const Value& object, const Value* start, const Value* stop, const Value* step, int line) {
  if (object.is_undefined()) in.fail(line, object.undefined_hint());
  const bool is_list = object.is(Value::Kind::kList);
  if (!is_list && !object.is(Value::Kind::kString)) in.fail(line, "'" + object.type_name() + "' object cannot be sliced");
  const auto offsets = is_list ? std::vector<std::size_t>{} : utf8::offsets(object.as_string());
  const auto n = static_cast<std::int64_t>(is_list ? object.as_list().items.size() : offsets.size() - 1);
  const auto b = slice_bounds(in, n, start, stop, step, line);
  std::vector<Value> items;
  std::string text;
  for (auto i = b.start; b.step > 0 ? i < b.stop : i > b.stop; i += b.step) {
    const auto at = static_cast<std::size_t>(i);
    if (is_list) {
      items.push_back(object.as_list().items[at]);
    } else {
      text.append(object.as_string(), offsets[at], offsets[at + 1] - offsets[at]);
    }
  }
  in.charge(items.size() * sizeof(Value) + text.size(), line);
  return is_list ? Value::list(std::move(items), object.as_list().tuple) : Value::string(std::move(text));
}

std::vector<Value> iterate(Interpreter& in, const Value& value, int line) {
  std::vector<Value> out;
  switch (value.kind()) {
    case Value::Kind::kUndefined: return out;
    case Value::Kind::kList:
      in.charge(value.as_list().items.size() * sizeof(Value), line);
      return value.as_list().items;
    case Value::Kind::kDict:
      in.charge(value.as_dict().items.size() * sizeof(Value), line);
      for (const auto& item : value.as_dict().items) out.push_back(Value::string(item.first));
      return out;
    case Value::Kind::kString: {
      const auto offsets = utf8::offsets(value.as_string());
      in.charge(offsets.size() * sizeof(Value), line);
      for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
        out.push_back(Value::string(value.as_string().substr(offsets[i], offsets[i + 1] - offsets[i])));
      return out;
    }
    default: in.fail(line, "'" + value.type_name() + "' object is not iterable");
  }
}

Value arithmetic(Interpreter& in, const std::string& op, const Value& a, const Value& b, int line) {
  if (a.is_undefined()) in.fail(line, a.undefined_hint());
  if (op == "neg" || op == "pos") {
    if (!a.is_number()) in.fail(line, "bad operand type for unary " + std::string(op == "neg" ? "-" : "+") + ": '" + a.type_name() + "'");
    if (a.is(Value::Kind::kFloat)) return Value::number(op == "neg" ? -a.as_double() : a.as_double());
    return op == "neg" ? int_arithmetic(in, "-", 0, a.as_int(), line) : Value::integer(a.as_int());
  }
  if (b.is_undefined()) in.fail(line, b.undefined_hint());
  if (a.is_number() && b.is_number()) {
    if (a.is(Value::Kind::kFloat) || b.is(Value::Kind::kFloat)) return float_arithmetic(in, op, a.as_double(), b.as_double(), line);
    return int_arithmetic(in, op, a.as_int(), b.as_int(), line);
  }
  if (op == "+" && same_sequence_kind(a, b)) return concatenate(in, a, b, line);
  if (op == "*") {
    const bool a_seq = a.is(Value::Kind::kString) || a.is(Value::Kind::kList);
    const bool b_seq = b.is(Value::Kind::kString) || b.is(Value::Kind::kList);
    if (a_seq && (b.is(Value::Kind::kInt) || b.is(Value::Kind::kBool))) return repeat(in, a, b.as_int(), line);
    if (b_seq && (a.is(Value::Kind::kInt) || a.is(Value::Kind::kBool))) return repeat(in, b, a.as_int(), line);
  }
  if (op == "%" && a.is(Value::Kind::kString))
    in.fail(line, "printf-style string formatting ('...' % value) is not supported in chat templates");
  in.fail(line, "unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
}

bool contains(Interpreter& in, const Value& container, const Value& needle, int line) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!needle.is(Value::Kind::kString))
        in.fail(line, "'in <string>' requires string as left operand, not " + needle.type_name());
      return container.as_string().find(needle.as_string()) != std::string::npos;
    case Value::Kind::kList:
      in.charge_walk(needle, line);
      for (const auto& item : container.as_list().items) {
        in.step(line);
        if (equal(item, needle)) return true;
      }
      return false;
    case Value::Kind::kDict: return needle.is(Value::Kind::kString) && container.as_dict().find(needle.as_string());
    default: in.fail(line, "argument of type '" + container.type_name() + "' is not iterable");
  }
}

std::optional<Value> global(const std::string& name) {
  if (name == "raise_exception")
    return make_function(name, [](Interpreter& in, Args args, int line) -> Value {
      Params p(in, "raise_exception", args, {"message"}, line);
      in.fail(line, "the template raised an exception: " + to_str(p.get_or(0, Value::string(""))));
    });
  if (name == "strftime_now")
    return make_function(name, [](Interpreter& in, Args args, int line) {
      Params p(in, "strftime_now", args, {"format"}, line);
      return Value::string(strftime(in, p.required_string(0), line));
    });
  if (name == "range") return make_function(name, range);
  if (name == "namespace" || name == "dict")
    return make_function(name, [name](Interpreter& in, Args args, int line) {
      DictData data;
      for (const auto& initial : args.positional) {
        if (!initial.is(Value::Kind::kDict)) in.fail(line, name + "() takes keyword arguments or a dict, not " + initial.type_name());
        for (const auto& [k, v] : initial.as_dict().items) data.put(k, v);
      }
      for (auto& [k, v] : args.keyword) data.put(k, std::move(v));
      if (name == "dict") return Value::dict(std::move(data));
      for (const auto& item : data.items)
        if (item.second.holds_namespace()) in.fail(line, "a namespace attribute cannot hold a namespace or a function");
      return Value::make_namespace(std::move(data));
    });
  return std::nullopt;
}

}  // namespace accel::models::jinja
