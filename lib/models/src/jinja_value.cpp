#include "jinja_value.h"

#include "jinja_utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

namespace accel::models::jinja {
namespace {

void check_depth(int depth) {
  if (depth > kMaxNesting)
    throw TemplateError("a list or dict would nest deeper than " + std::to_string(kMaxNesting) + " levels");
}

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto start = i;
    const auto cp = utf8::next(s, i);
    char buf[16];
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
          if (cp >= 0x10000) {
            const auto v = cp - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", cp);
          }
          out += buf;
        } else {
          out.append(s, start, i - start);
        }
    }
  }
  out += '"';
}

std::string repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const char quote = has_single && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (std::size_t i = 0; i < s.size();) {
    const auto start = i;
    const auto cp = utf8::next(s, i);
    if (cp == static_cast<std::uint32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0xAD) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      out += buf;
    } else {
      out.append(s, start, i - start);
    }
  }
  out += quote;
  return out;
}

void append_json(std::string& out, const Value& v, const JsonFormat& f, int level);

void newline_indent(std::string& out, const JsonFormat& f, int level) {
  if (!f.indent) return;
  out += '\n';
  out.append(static_cast<std::size_t>(std::max(0, *f.indent)) * static_cast<std::size_t>(level), ' ');
}

void append_json_container(std::string& out, const Value& v, const JsonFormat& f, int level) {
  const bool is_list = v.is(Value::Kind::kList);
  const std::size_t n = is_list ? v.as_list().items.size() : v.as_dict().items.size();
  out += is_list ? '[' : '{';
  if (n == 0) {
    out += is_list ? ']' : '}';
    return;
  }
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  if (!is_list && f.sort_keys) {
    const auto& items = v.as_dict().items;
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return items[a].first < items[b].first; });
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (k > 0) out += f.item_separator;
    newline_indent(out, f, level + 1);
    if (is_list) {
      append_json(out, v.as_list().items[order[k]], f, level + 1);
    } else {
      const auto& [key, value] = v.as_dict().items[order[k]];
      append_json_string(out, key, f.ensure_ascii);
      out += f.key_separator;
      append_json(out, value, f, level + 1);
    }
  }
  newline_indent(out, f, level);
  out += is_list ? ']' : '}';
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return float_repr(d);
}

void append_json(std::string& out, const Value& v, const JsonFormat& f, int level) {
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: out += json_float(v.as_double()); return;
    case Value::Kind::kString: append_json_string(out, v.as_string(), f.ensure_ascii); return;
    case Value::Kind::kList:
    case Value::Kind::kDict: append_json_container(out, v, f, level); return;
    default: throw TemplateError("tojson: a value of type '" + v.type_name() + "' is not JSON serializable");
  }
}

std::string str_container(const Value& v) {
  std::string out;
  if (v.is(Value::Kind::kList)) {
    const auto& l = v.as_list();
    out += l.tuple ? '(' : '[';
    for (std::size_t i = 0; i < l.items.size(); ++i) out += (i ? ", " : "") + to_repr(l.items[i]);
    if (l.tuple && l.items.size() == 1) out += ',';
    out += l.tuple ? ')' : ']';
    return out;
  }
  const auto& items = v.is(Value::Kind::kDict) ? v.as_dict().items : v.as_namespace().attributes.items;
  out += '{';
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i ? ", " : "") + repr_string(items[i].first) + ": " + to_repr(items[i].second);
  out += '}';
  return v.is(Value::Kind::kNamespace) ? "<Namespace " + out + ">" : out;
}

class Function : public Callable {
 public:
  Function(std::string name, std::function<Value(Interpreter&, Args, int)> f) : name_(std::move(name)), f_(std::move(f)) {}
  std::string name() const override { return name_; }
  Value call(Interpreter& in, Args args, int line) const override { return f_(in, std::move(args), line); }

 private:
  std::string name_;
  std::function<Value(Interpreter&, Args, int)> f_;
};

}  // namespace

Value make_function(std::string name, std::function<Value(Interpreter&, Args, int)> f) {
  return Value::callable(std::make_shared<Function>(std::move(name), std::move(f)));
}

const Value* DictData::find(const std::string& key) const {
  const auto it = index.find(key);
  return it == index.end() ? nullptr : &items[it->second].second;
}

void DictData::put(const std::string& key, Value value) {
  depth = std::max(depth, value.depth() + 1);
  check_depth(depth);
  holds_namespace = holds_namespace || value.holds_namespace();
  const auto it = index.find(key);
  if (it != index.end()) {
    items[it->second].second = std::move(value);
    return;
  }
  index.emplace(key, items.size());
  items.emplace_back(key, std::move(value));
}

Value Value::list(std::vector<Value> items, bool tuple) {
  auto data = std::make_shared<ListData>();
  for (const auto& item : items) {
    data->depth = std::max(data->depth, item.depth() + 1);
    data->holds_namespace = data->holds_namespace || item.holds_namespace();
  }
  check_depth(data->depth);
  data->items = std::move(items);
  data->tuple = tuple;
  return Value(Data(ListP(std::move(data))));
}

Value Value::dict(DictData data) {
  check_depth(data.depth);
  return Value(Data(DictP(std::make_shared<const DictData>(std::move(data)))));
}

Value Value::make_namespace(DictData attributes) {
  auto ns = std::make_shared<NamespaceData>();
  ns->attributes = std::move(attributes);
  return Value(Data(NamespaceP(std::move(ns))));
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  using J = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case J::null: return none();
    case J::boolean: return boolean(j.get<bool>());
    case J::number_integer: return integer(j.get<std::int64_t>());
    case J::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return number(static_cast<double>(u));
      return integer(static_cast<std::int64_t>(u));
    }
    case J::number_float: return number(j.get<double>());
    case J::string: return string(j.get<std::string>());
    case J::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json(item));
      return list(std::move(items));
    }
    case J::object: {
      DictData data;
      for (const auto& [key, item] : j.items()) data.put(key, from_json(item));
      return dict(std::move(data));
    }
    default: throw TemplateError("a JSON value of type '" + std::string(j.type_name()) + "' has no template value");
  }
}

std::int64_t Value::as_int() const {
  if (is(Kind::kBool)) return as_bool() ? 1 : 0;
  return std::get<std::int64_t>(data_);
}

double Value::as_double() const {
  if (is(Kind::kFloat)) return std::get<double>(data_);
  return static_cast<double>(as_int());
}

int Value::depth() const {
  if (is(Kind::kList)) return as_list().depth;
  if (is(Kind::kDict)) return as_dict().depth;
  if (is(Kind::kNamespace)) return as_namespace().attributes.depth;
  return 0;
}

bool Value::holds_namespace() const {
  if (is(Kind::kNamespace) || is(Kind::kCallable)) return true;
  if (is(Kind::kList)) return as_list().holds_namespace;
  if (is(Kind::kDict)) return as_dict().holds_namespace;
  return false;
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return as_bool();
    case Kind::kInt: return as_int() != 0;
    case Kind::kFloat: return as_double() != 0.0;
    case Kind::kString: return !as_string().empty();
    case Kind::kList: return !as_list().items.empty();
    case Kind::kDict: return !as_dict().items.empty();
    default: return true;
  }
}

std::string Value::type_name() const {
  static const char* const names[] = {"Undefined", "NoneType", "bool", "int", "float", "str",
                                      "list", "dict", "Namespace", "function"};
  if (is(Kind::kList) && as_list().tuple) return "tuple";
  return names[data_.index()];
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  const std::string sci(buf, end);  // -d.ddde+XX, the shortest digits that round-trip
  const auto e = sci.find('e');
  const int exponent = std::stoi(sci.substr(e + 1));
  const bool negative = sci[0] == '-';
  std::string digits;
  for (std::size_t i = negative ? 1 : 0; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {  // Python's repr switches to exponent notation here
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp;
  }
  if (exponent < 0) return out + "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
  const auto whole = static_cast<std::size_t>(exponent) + 1;
  if (digits.size() <= whole) return out + digits + std::string(whole - digits.size(), '0') + ".0";
  return out + digits.substr(0, whole) + "." + digits.substr(whole);
}

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.as_int());
    case Value::Kind::kFloat: return float_repr(v.as_double());
    case Value::Kind::kString: return v.as_string();
    case Value::Kind::kCallable: return "<function " + v.as_callable().name() + ">";
    default: return str_container(v);
  }
}

std::string to_repr(const Value& v) {
  if (v.is(Value::Kind::kString)) return repr_string(v.as_string());
  if (v.is_undefined()) return "Undefined";
  return to_str(v);
}

std::string to_json(const Value& v, const JsonFormat& format) {
  std::string out;
  append_json(out, v, format, 0);
  return out;
}

bool equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is(K::kFloat) || b.is(K::kFloat)) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::kUndefined:
    case K::kNone: return true;
    case K::kString: return a.as_string() == b.as_string();
    case K::kList: {
      const auto &x = a.as_list().items, &y = b.as_list().items;
      if (a.as_list().tuple != b.as_list().tuple || x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!equal(x[i], y[i])) return false;
      return true;
    }
    case K::kDict: {
      const auto &x = a.as_dict(), &y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [key, value] : x.items) {
        const auto* other = y.find(key);
        if (!other || !equal(value, *other)) return false;
      }
      return true;
    }
    case K::kNamespace: return &a.as_namespace() == &b.as_namespace();
    case K::kCallable: return &a.as_callable() == &b.as_callable();
    default: return false;
  }
}

std::optional<bool> less(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is(K::kFloat) || b.is(K::kFloat)) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is(K::kString) && b.is(K::kString)) return a.as_string() < b.as_string();
  if (a.is(K::kList) && b.is(K::kList) && a.as_list().tuple == b.as_list().tuple) {
    const auto &x = a.as_list().items, &y = b.as_list().items;
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equal(x[i], y[i])) continue;
      return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return std::nullopt;
}

}  // namespace accel::models::jinja
