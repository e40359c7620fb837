#pragma once
// The chat template evaluator's state, shared by the statements' evaluation and the built-in
// filters, tests, methods and globals. Private to lib/models; torch-free.
#include "jinja.h"
#include "jinja_ast.h"

#include <unordered_map>

namespace accel::models::jinja {

struct Scope {
  std::unordered_map<std::string, Value> variables;
  const Scope* parent = nullptr;
};

class Interpreter {
 public:
  Interpreter(const RenderOptions& options, const Scope& root);

  std::string render(const Body& body);

  // Counts one step of work; TemplateError past the step limit.
  void step(int line);
  // Counts `bytes` a new string or list takes; TemplateError past the allocation limit.
  void charge(std::size_t bytes, int line);
  // Charges a walk over every element of `v` (comparing, searching), as if it were copied, so
  // repeated walks over a large value end at the allocation limit instead of running for hours.
  void charge_walk(const Value& v, int line);
  [[noreturn]] void fail(int line, const std::string& message) const;
  std::time_t now() const;

  Value call(const Value& callee, Args args, int line);
  // A macro's body rendered with its parameters bound (the macro's own scope sees the
  // template's top-level variables and macros, its parameters and `caller`).
  Value call_macro(const Stmt& macro, Args args, const Value& caller, int line);
  // A call block's body, rendered for caller(...) with the call block's parameters bound.
  Value call_caller(const Stmt& block, const Scope& scope, Args args, int line);
  Value evaluate(const Expr& e, const Scope& scope);

  // RAII nesting counter for the evaluator's recursion.
  class Nesting {
   public:
    Nesting(Interpreter& in, int line);
    ~Nesting() { --in_.depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    Interpreter& in_;
  };

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  Flow execute(const Body& body, Scope& scope);
  Flow execute_statement(const Stmt& s, Scope& scope);
  Flow execute_for(const Stmt& s, Scope& scope);
  void execute_set(const Stmt& s, Scope& scope);
  void execute_call_block(const Stmt& s, Scope& scope);
  std::string capture(const Body& body, Scope& scope);
  void write(const std::string& text, int line);
  void bind_parameters(const Stmt& s, Scope& scope, Args& args, const std::string& what, int line);
  Value lookup(const std::string& name, const Scope& scope) const;

  Value evaluate_binary(const Expr& e, const Scope& scope);
  Value evaluate_compare(const Expr& e, const Scope& scope);
  Value evaluate_sequence(const Expr& e, const Scope& scope);
  Value evaluate_call(const Expr& e, const Scope& scope);
  Args evaluate_arguments(const Expr& e, const Scope& scope, std::size_t first);

  const RenderOptions& options_;
  const Scope& root_;      // the render's variables
  const Scope* top_ = nullptr;  // the template's top level, which macros see
  std::string* out_ = nullptr;
  std::int64_t steps_ = 0;
  std::size_t allocated_ = 0;
  int depth_ = 0;
  const Value* block_input_ = nullptr;
};

}  // namespace accel::models::jinja
