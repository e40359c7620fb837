// Expressions of the chat template evaluator, and the Template entry point.
#include "jinja_builtins.h"
#include "jinja_interpreter.h"

namespace accel::models::jinja {

namespace detail {
struct Parsed {
  Body body;
};
}  // namespace detail

Value Interpreter::evaluate(const Expr& e, const Scope& scope) {
  step(e.line);
  Nesting nesting(*this, e.line);
  switch (e.kind) {
    case Expr::Kind::kConstant: return e.value;
    case Expr::Kind::kName: return lookup(e.name, scope);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple:
    case Expr::Kind::kDict: return evaluate_sequence(e, scope);
    case Expr::Kind::kAttribute: return get_attribute(*this, evaluate(*e.children[0], scope), e.name, e.line);
    case Expr::Kind::kItem:
      return get_item(*this, evaluate(*e.children[0], scope), evaluate(*e.children[1], scope), e.line);
    case Expr::Kind::kSlice: {
      const auto target = evaluate(*e.children[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        if (e.children[static_cast<std::size_t>(i) + 1]) parts[i] = evaluate(*e.children[static_cast<std::size_t>(i) + 1], scope);
      const auto part = [&](int i) { return e.children[static_cast<std::size_t>(i) + 1] ? &parts[i] : nullptr; };
      return get_slice(*this, target, part(0), part(1), part(2), e.line);
    }
    case Expr::Kind::kCall: return evaluate_call(e, scope);
    case Expr::Kind::kFilter:
      return apply_filter(*this, e.name, evaluate(*e.children[0], scope), evaluate_arguments(e, scope, 1), e.line);
    case Expr::Kind::kTest:
      return Value::boolean(apply_test(*this, e.name, evaluate(*e.children[0], scope), evaluate_arguments(e, scope, 1), e.line) !=
                            e.negated);
    case Expr::Kind::kUnary: {
      const auto v = evaluate(*e.children[0], scope);
      if (e.name == "not") return Value::boolean(!v.truthy());
      return arithmetic(*this, e.name == "-" ? "neg" : "pos", v, Value(), e.line);
    }
    case Expr::Kind::kBinary: return evaluate_binary(e, scope);
    case Expr::Kind::kCompare: return evaluate_compare(e, scope);
    case Expr::Kind::kCondition:
      if (evaluate(*e.children[1], scope).truthy()) return evaluate(*e.children[0], scope);
      if (e.children.size() > 2) return evaluate(*e.children[2], scope);
      return Value::undefined("the condition was false and there is no else");
    case Expr::Kind::kBlockInput: return block_input_ ? *block_input_ : Value::string("");
  }
  fail(e.line, "an expression of unknown kind");
}

Value Interpreter::evaluate_sequence(const Expr& e, const Scope& scope) {
  charge(e.children.size() * sizeof(Value), e.line);
  if (e.kind == Expr::Kind::kDict) {
    DictData data;
    for (std::size_t i = 0; i + 1 < e.children.size(); i += 2) {
      const auto key = evaluate(*e.children[i], scope);
      if (!key.is(Value::Kind::kString)) fail(e.line, "dict keys must be strings in chat templates, not " + key.type_name());
      data.put(key.as_string(), evaluate(*e.children[i + 1], scope));
    }
    return Value::dict(std::move(data));
  }
  std::vector<Value> items;
  items.reserve(e.children.size());
  for (const auto& child : e.children) items.push_back(evaluate(*child, scope));
  return Value::list(std::move(items), e.kind == Expr::Kind::kTuple);
}

Value Interpreter::evaluate_binary(const Expr& e, const Scope& scope) {
  const auto left = evaluate(*e.children[0], scope);
  if (e.name == "and") return left.truthy() ? evaluate(*e.children[1], scope) : left;
  if (e.name == "or") return left.truthy() ? left : evaluate(*e.children[1], scope);
  const auto right = evaluate(*e.children[1], scope);
  if (e.name == "~") {
    auto joined = to_str(left) + to_str(right);
    charge(joined.size(), e.line);
    return Value::string(std::move(joined));
  }
  return arithmetic(*this, e.name, left, right, e.line);
}

Value Interpreter::evaluate_compare(const Expr& e, const Scope& scope) {
  auto left = evaluate(*e.children[0], scope);
  for (std::size_t i = 0; i < e.operators.size(); ++i) {
    auto right = evaluate(*e.children[i + 1], scope);
    const auto& op = e.operators[i];
    bool result;
    if (op == "==" || op == "!=") {
      charge_walk(left, e.line);
      charge_walk(right, e.line);
      result = equal(left, right) == (op == "==");
    } else if (op == "in" || op == "not in") {
      result = contains(*this, right, left, e.line) == (op == "in");
    } else {
      if (left.is_undefined()) fail(e.line, left.undefined_hint());
      if (right.is_undefined()) fail(e.line, right.undefined_hint());
      const bool swapped = op == ">" || op == "<=";
      const auto lt = swapped ? less(right, left) : less(left, right);
      if (!lt)
        fail(e.line, "'" + op + "' is not supported between instances of '" + left.type_name() + "' and '" +
                         right.type_name() + "'");
      result = (op == "<" || op == ">") ? *lt : !*lt;
    }
    if (!result) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Args Interpreter::evaluate_arguments(const Expr& e, const Scope& scope, std::size_t first) {
  Args args;
  for (std::size_t i = first; i < e.children.size(); ++i) args.positional.push_back(evaluate(*e.children[i], scope));
  for (const auto& [name, value] : e.keywords) args.keyword.emplace_back(name, evaluate(*value, scope));
  return args;
}

Value Interpreter::evaluate_call(const Expr& e, const Scope& scope) {
  const auto callee = evaluate(*e.children[0], scope);
  return call(callee, evaluate_arguments(e, scope, 1), e.line);
}

Template::Template(const std::string& source) {
  auto parsed = std::make_shared<detail::Parsed>();
  parsed->body = parse(tokenize(source));
  parsed_ = std::move(parsed);
}

std::string Template::render(const DictData& variables, const RenderOptions& options) const {
  Scope root;
  for (const auto& [name, value] : variables.items) root.variables[name] = value;
  Interpreter interpreter(options, root);
  return interpreter.render(parsed_->body);
}

}  // namespace accel::models::jinja
