// The chat template evaluator: statements and expressions with jinja2's scoping (a for loop's
// body gets a fresh scope each iteration, macros see the template's top level) and Python's
// semantics for the values.
#include "jinja_interpreter.h"

#include "jinja_builtins.h"

#include <algorithm>

namespace accel::models::jinja {

namespace {

// A macro as a value: the statement lives as long as the template, which outlives the render.
class Macro : public Callable {
 public:
  explicit Macro(const Stmt& s) : s_(s) {}
  std::string name() const override { return s_.text; }
  Value call(Interpreter& in, Args args, int line) const override { return in.call_macro(s_, std::move(args), Value(), line); }
  const Stmt& statement() const { return s_; }

 private:
  const Stmt& s_;
};

void unpack(Interpreter& in, const std::vector<std::string>& targets, const Value& value, Scope& scope, int line) {
  if (targets.size() == 1) {
    scope.variables[targets[0]] = value;
    return;
  }
  const auto items = iterate(in, value, line);
  if (items.size() != targets.size())
    in.fail(line, "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(targets.size()) + " names");
  for (std::size_t i = 0; i < targets.size(); ++i) scope.variables[targets[i]] = items[i];
}

}  // namespace

Interpreter::Interpreter(const RenderOptions& options, const Scope& root) : options_(options), root_(root) {}

Interpreter::Nesting::Nesting(Interpreter& in, int line) : in_(in) {
  if (++in_.depth_ > in_.options_.limits.max_depth) {
    --in_.depth_;
    in_.fail(line, "the render nests deeper than " + std::to_string(in_.options_.limits.max_depth) +
                       " levels (runaway recursion?)");
  }
}

void Interpreter::fail(int line, const std::string& message) const {
  throw TemplateError("template line " + std::to_string(line) + ": " + message);
}

void Interpreter::step(int line) {
  if (++steps_ > options_.limits.max_steps)
    fail(line, "the render took more than " + std::to_string(options_.limits.max_steps) + " steps (a runaway loop?)");
}

void Interpreter::charge(std::size_t bytes, int line) {
  allocated_ += bytes;
  if (allocated_ > options_.limits.max_allocated_bytes)
    fail(line, "the render built more than " + std::to_string(options_.limits.max_allocated_bytes) + " bytes of values");
}

namespace {
std::size_t elements(const Value& v) {
  std::size_t n = 0;
  if (v.is(Value::Kind::kList))
    for (const auto& item : v.as_list().items) n += 1 + elements(item);
  if (v.is(Value::Kind::kDict))
    for (const auto& item : v.as_dict().items) n += 1 + elements(item.second);
  return n;
}
}  // namespace

void Interpreter::charge_walk(const Value& v, int line) {
  if (v.is(Value::Kind::kList) || v.is(Value::Kind::kDict)) charge(elements(v) * sizeof(Value), line);
}

std::time_t Interpreter::now() const { return options_.now ? *options_.now : std::time(nullptr); }

std::string Interpreter::render(const Body& body) {
  std::string out;
  out_ = &out;
  Scope top{{}, &root_};
  top_ = &top;
  execute(body, top);
  return out;
}

void Interpreter::write(const std::string& text, int line) {
  charge(text.size(), line);
  if (out_->size() + text.size() > options_.limits.max_output_bytes)
    fail(line, "the rendered text would exceed " + std::to_string(options_.limits.max_output_bytes) + " bytes");
  out_->append(text);
}

std::string Interpreter::capture(const Body& body, Scope& scope) {
  std::string buffer;
  auto* saved = out_;
  out_ = &buffer;
  try {
    const auto flow = execute(body, scope);
    (void)flow;  // loop controls cannot cross a block (the parser confines them)
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

Interpreter::Flow Interpreter::execute(const Body& body, Scope& scope) {
  for (const auto& s : body) {
    const auto flow = execute_statement(*s, scope);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::execute_statement(const Stmt& s, Scope& scope) {
  step(s.line);
  Nesting nesting(*this, s.line);
  switch (s.kind) {
    case Stmt::Kind::kText: write(s.text, s.line); break;
    case Stmt::Kind::kOutput: write(to_str(evaluate(*s.expr, scope)), s.line); break;
    case Stmt::Kind::kIf:
      for (std::size_t i = 0; i < s.bodies.size(); ++i)
        if (i == s.conditions.size() || evaluate(*s.conditions[i], scope).truthy()) return execute(s.bodies[i], scope);
      break;
    case Stmt::Kind::kFor: return execute_for(s, scope);
    case Stmt::Kind::kSet:
    case Stmt::Kind::kSetBlock: execute_set(s, scope); break;
    case Stmt::Kind::kMacro: scope.variables[s.text] = Value::callable(std::make_shared<Macro>(s)); break;
    case Stmt::Kind::kCallBlock: execute_call_block(s, scope); break;
    case Stmt::Kind::kFilterBlock: {
      const auto body = Value::string(capture(s.bodies[0], scope));
      const auto* saved = block_input_;
      block_input_ = &body;
      const auto filtered = evaluate(*s.expr, scope);
      block_input_ = saved;
      write(to_str(filtered), s.line);
      break;
    }
    case Stmt::Kind::kBreak: return Flow::kBreak;
    case Stmt::Kind::kContinue: return Flow::kContinue;
    case Stmt::Kind::kGeneration: return execute(s.bodies[0], scope);
  }
  return Flow::kNormal;
}

void Interpreter::execute_call_block(const Stmt& s, Scope& scope) {
  const Scope& caller_scope = scope;
  auto caller = make_function("caller", [&s, &caller_scope](Interpreter& in, Args args, int line) {
    return in.call_caller(s, caller_scope, std::move(args), line);
  });
  const auto& call = *s.expr;
  const auto callee = evaluate(*call.children[0], scope);
  const auto* macro = callee.is(Value::Kind::kCallable) ? dynamic_cast<const Macro*>(&callee.as_callable()) : nullptr;
  if (!macro) fail(s.line, "a call block must call a macro");
  write(to_str(call_macro(macro->statement(), evaluate_arguments(call, scope, 1), caller, s.line)), s.line);
}

Interpreter::Flow Interpreter::execute_for(const Stmt& s, Scope& scope) {
  std::vector<Value> items;
  for (auto& item : iterate(*this, evaluate(*s.expr, scope), s.line)) {
    if (s.condition) {
      Scope filter_scope{{}, &scope};
      unpack(*this, s.targets, item, filter_scope, s.line);
      if (!evaluate(*s.condition, filter_scope).truthy()) continue;
    }
    items.push_back(std::move(item));
  }
  const auto n = static_cast<std::int64_t>(items.size());
  for (std::int64_t i = 0; i < n; ++i) {
    step(s.line);
    Scope iteration{{}, &scope};
    unpack(*this, s.targets, items[static_cast<std::size_t>(i)], iteration, s.line);
    DictData loop;
    loop.put("index", Value::integer(i + 1));
    loop.put("index0", Value::integer(i));
    loop.put("revindex", Value::integer(n - i));
    loop.put("revindex0", Value::integer(n - i - 1));
    loop.put("first", Value::boolean(i == 0));
    loop.put("last", Value::boolean(i == n - 1));
    loop.put("length", Value::integer(n));
    loop.put("depth", Value::integer(1));
    loop.put("depth0", Value::integer(0));
    loop.put("previtem", i > 0 ? items[static_cast<std::size_t>(i - 1)] : Value::undefined("there is no previous item"));
    loop.put("nextitem", i + 1 < n ? items[static_cast<std::size_t>(i + 1)] : Value::undefined("there is no next item"));
    loop.put("cycle", make_function("loop.cycle", [i](Interpreter& in, Args args, int line) {
      if (args.positional.empty()) in.fail(line, "loop.cycle() needs at least one value");
      return args.positional[static_cast<std::size_t>(i) % args.positional.size()];
    }));
    iteration.variables["loop"] = Value::dict(std::move(loop));
    if (execute(s.bodies[0], iteration) == Flow::kBreak) break;
  }
  if (n == 0 && s.bodies.size() > 1) return execute(s.bodies[1], scope);
  return Flow::kNormal;
}

void Interpreter::execute_set(const Stmt& s, Scope& scope) {
  Value value;
  if (s.kind == Stmt::Kind::kSetBlock) {
    value = Value::string(capture(s.bodies[0], scope));
    if (s.expr) {
      const auto* saved = block_input_;
      block_input_ = &value;
      value = evaluate(*s.expr, scope);
      block_input_ = saved;
    }
  } else {
    value = evaluate(*s.expr, scope);
  }
  if (s.text.empty()) {
    unpack(*this, s.targets, value, scope, s.line);
    return;
  }
  const auto target = lookup(s.targets[0], scope);
  if (!target.is(Value::Kind::kNamespace))
    fail(s.line, "cannot assign the attribute '" + s.text + "' of '" + s.targets[0] + "' (a " + target.type_name() +
                     "); only a namespace() has assignable attributes");
  if (value.holds_namespace()) fail(s.line, "a namespace attribute cannot hold a namespace or a function");
  charge(s.text.size() + 64, s.line);
  target.as_namespace().attributes.put(s.text, std::move(value));
}

Value Interpreter::lookup(const std::string& name, const Scope& scope) const {
  for (const Scope* at = &scope; at; at = at->parent) {
    const auto it = at->variables.find(name);
    if (it != at->variables.end()) return it->second;
  }
  if (auto g = global(name)) return *g;
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::bind_parameters(const Stmt& s, Scope& scope, Args& args, const std::string& what, int line) {
  if (args.positional.size() > s.targets.size())
    fail(line, what + " takes " + std::to_string(s.targets.size()) + " argument(s), " +
                   std::to_string(args.positional.size()) + " given");
  for (std::size_t i = 0; i < args.positional.size(); ++i) scope.variables[s.targets[i]] = std::move(args.positional[i]);
  for (auto& [name, value] : args.keyword) {
    const auto it = std::find(s.targets.begin(), s.targets.end(), name);
    if (it == s.targets.end()) fail(line, what + " has no parameter '" + name + "'");
    scope.variables[name] = std::move(value);
  }
  for (std::size_t i = 0; i < s.targets.size(); ++i) {
    if (scope.variables.count(s.targets[i])) continue;
    scope.variables[s.targets[i]] = s.defaults[i] ? evaluate(*s.defaults[i], scope)
                                                  : Value::undefined("parameter '" + s.targets[i] + "' was not given");
  }
}

Value Interpreter::call_macro(const Stmt& macro, Args args, const Value& caller, int line) {
  Nesting nesting(*this, line);
  Scope scope{{}, top_};
  bind_parameters(macro, scope, args, "macro '" + macro.text + "'", line);
  if (!caller.is_undefined()) scope.variables["caller"] = caller;
  return Value::string(capture(macro.bodies[0], scope));
}

Value Interpreter::call_caller(const Stmt& block, const Scope& scope, Args args, int line) {
  Nesting nesting(*this, line);
  Scope inner{{}, &scope};
  bind_parameters(block, inner, args, "caller()", line);
  return Value::string(capture(block.bodies[0], inner));
}

Value Interpreter::call(const Value& callee, Args args, int line) {
  if (callee.is_undefined()) fail(line, callee.undefined_hint());
  if (!callee.is(Value::Kind::kCallable)) fail(line, "'" + callee.type_name() + "' object is not callable");
  Nesting nesting(*this, line);
  return callee.as_callable().call(*this, std::move(args), line);
}

}  // namespace accel::models::jinja
