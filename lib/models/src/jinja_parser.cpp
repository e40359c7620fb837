// The chat template parser: jinja2's grammar and operator precedence for the statements and
// expressions chat templates use; anything else is refused naming the line and the construct.
#include "accel/core/text.h"
#include "jinja_ast.h"
#include "jinja_builtins.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <initializer_list>

namespace accel::models::jinja {
namespace {

// Nested expressions and blocks past this depth are refused, so the parser's and the
// evaluator's recursion stay far from the stack's limit on hostile input.
constexpr int kMaxParseDepth = 100;

using ExprP = std::unique_ptr<Expr>;

ExprP make(Expr::Kind kind, int line, std::string name = {}) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  e->name = std::move(name);
  return e;
}

// Adds a child (null: an omitted slice part), keeping the height bounded.
void adopt(Expr& parent, std::unique_ptr<Expr> child) {
  if (child) {
    if (child->height >= 2 * kMaxParseDepth)
      throw TemplateError("template line " + std::to_string(parent.line) + ": an expression nests deeper than " +
                          std::to_string(2 * kMaxParseDepth) + " levels");
    parent.height = std::max(parent.height, child->height + 1);
  }
  parent.children.push_back(std::move(child));
}

ExprP make_with(Expr::Kind kind, int line, std::string name, ExprP first) {
  if (first->height >= 2 * kMaxParseDepth)
    throw TemplateError("template line " + std::to_string(line) + ": an expression nests deeper than " +
                        std::to_string(2 * kMaxParseDepth) + " levels");
  auto e = make(kind, line, std::move(name));
  e->height = first->height + 1;
  e->children.push_back(std::move(first));
  return e;
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  Body parse_template() {
    auto body = parse_body({});
    if (cur().type != Token::Type::kEnd) fail("unexpected " + describe(cur()));
    return body;
  }

 private:
  using Type = Token::Type;

  const Token& cur() const { return t_[i_]; }
  const Token& peek(std::size_t ahead = 1) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  void advance() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw TemplateError("template line " + std::to_string(cur().line) + ": " + message);
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Type::kText: return "text";
      case Type::kVariableBegin: return "'{{'";
      case Type::kVariableEnd: return "'}}'";
      case Type::kBlockBegin: return "'{%'";
      case Type::kBlockEnd: return "'%}'";
      case Type::kEnd: return "the end of the template";
      case Type::kString: return "the string " + text::quote(t.text);
      default: return text::quote(t.text);
    }
  }
  bool at_operator(const char* op) const { return cur().type == Type::kOperator && cur().text == op; }
  bool at_name(const char* name) const { return cur().type == Type::kName && cur().text == name; }
  bool skip_operator(const char* op) {
    if (!at_operator(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!at_name(name)) return false;
    advance();
    return true;
  }
  void expect_operator(const char* op) {
    if (!skip_operator(op)) fail(std::string("expected '") + op + "', found " + describe(cur()));
  }
  void expect(Type type, const char* what) {
    if (cur().type != type) fail(std::string("expected ") + what + ", found " + describe(cur()));
    advance();
  }
  std::string expect_name(const char* what) {
    if (cur().type != Type::kName) fail(std::string("expected ") + what + ", found " + describe(cur()));
    auto name = cur().text;
    advance();
    return name;
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxParseDepth) p_.fail("the template nests deeper than " + std::to_string(kMaxParseDepth) + " levels");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  // Statements up to a block tag named in `ends` (left unread), or the template's end.
  Body parse_body(const std::vector<std::string>& ends) {
    DepthGuard guard(*this);
    Body body;
    for (;;) {
      const auto& t = cur();
      if (t.type == Type::kEnd) {
        if (!ends.empty()) fail("the template ends before '" + ends.back() + "'");
        return body;
      }
      if (t.type == Type::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == Type::kVariableBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = t.line;
        advance();
        s->expr = parse_tuple(true);
        expect(Type::kVariableEnd, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == Type::kBlockBegin) {
        if (peek().type == Type::kName && std::find(ends.begin(), ends.end(), peek().text) != ends.end()) return body;
        advance();
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  // Reads "{% name" of the tag that ended a body.
  std::string end_tag() {
    advance();
    return expect_name("a tag name");
  }

  std::unique_ptr<Stmt> new_stmt(Stmt::Kind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  std::unique_ptr<Stmt> parse_statement() {
    const int line = cur().line;
    const auto tag = expect_name("a tag name");
    if (tag == "if") return parse_if(line);
    if (tag == "for") return parse_for(line);
    if (tag == "set") return parse_set(line);
    if (tag == "macro") return parse_macro(line);
    if (tag == "call") return parse_call_block(line);
    if (tag == "filter") return parse_filter_block(line);
    if (tag == "generation") return parse_simple_block(Stmt::Kind::kGeneration, "endgeneration", line);
    if (tag == "break" || tag == "continue") {
      if (loops_ == 0) fail("'" + tag + "' outside a for loop");
      expect(Type::kBlockEnd, "'%}'");
      return new_stmt(tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, line);
    }
    static const std::vector<std::string> ends = {"elif", "else", "endif", "endfor", "endset", "endmacro", "endcall", "endfilter", "endgeneration"};
    if (std::find(ends.begin(), ends.end(), tag) != ends.end()) fail("'" + tag + "' without the tag it closes");
    fail("the tag '" + tag + "' is not supported in chat templates (supported: if, for, set, macro, call, filter, "
         "break, continue, generation)");
  }

  std::unique_ptr<Stmt> parse_if(int line) {
    auto s = new_stmt(Stmt::Kind::kIf, line);
    s->conditions.push_back(parse_tuple(true));
    expect(Type::kBlockEnd, "'%}'");
    for (;;) {
      s->bodies.push_back(parse_body({"elif", "else", "endif"}));
      const auto tag = end_tag();
      if (tag == "elif") {
        s->conditions.push_back(parse_tuple(true));
        expect(Type::kBlockEnd, "'%}'");
      } else if (tag == "else") {
        expect(Type::kBlockEnd, "'%}'");
        s->bodies.push_back(parse_body({"endif"}));
        end_tag();
        break;
      } else {
        break;
      }
    }
    expect(Type::kBlockEnd, "'%}'");
    return s;
  }

  std::unique_ptr<Stmt> parse_for(int line) {
    auto s = new_stmt(Stmt::Kind::kFor, line);
    do s->targets.push_back(expect_name("a loop variable"));
    while (skip_operator(","));
    if (!skip_name("in")) fail("expected 'in' in the for loop, found " + describe(cur()));
    s->expr = parse_tuple(false);
    if (skip_name("if")) s->condition = parse_expression(true);
    if (at_name("recursive")) fail("recursive for loops are not supported");
    expect(Type::kBlockEnd, "'%}'");
    ++loops_;
    s->bodies.push_back(parse_body({"else", "endfor"}));
    --loops_;
    if (end_tag() == "else") {
      expect(Type::kBlockEnd, "'%}'");
      s->bodies.push_back(parse_body({"endfor"}));
      end_tag();
    }
    expect(Type::kBlockEnd, "'%}'");
    return s;
  }

  std::unique_ptr<Stmt> parse_set(int line) {
    auto s = new_stmt(Stmt::Kind::kSet, line);
    s->targets.push_back(expect_name("a variable name"));
    if (skip_operator(".")) {
      s->text = expect_name("an attribute name");
    } else {
      while (skip_operator(",")) s->targets.push_back(expect_name("a variable name"));
    }
    if (skip_operator("=")) {
      s->expr = parse_tuple(true);
      expect(Type::kBlockEnd, "'%}'");
      return s;
    }
    if (s->targets.size() != 1 || !s->text.empty()) fail("a block set assigns one variable");
    s->kind = Stmt::Kind::kSetBlock;
    if (at_operator("|")) s->expr = parse_filters(make(Expr::Kind::kBlockInput, line));
    expect(Type::kBlockEnd, "'%}'");
    s->bodies.push_back(parse_body({"endset"}));
    end_tag();
    expect(Type::kBlockEnd, "'%}'");
    return s;
  }

  void parse_parameters(Stmt& s) {
    expect_operator("(");
    while (!skip_operator(")")) {
      if (!s.targets.empty()) expect_operator(",");
      if (skip_operator(")")) break;
      s.targets.push_back(expect_name("a parameter name"));
      s.defaults.push_back(skip_operator("=") ? parse_expression(true) : nullptr);
    }
  }

  std::unique_ptr<Stmt> parse_macro(int line) {
    auto s = new_stmt(Stmt::Kind::kMacro, line);
    s->text = expect_name("a macro name");
    parse_parameters(*s);
    expect(Type::kBlockEnd, "'%}'");
    const auto saved = loops_;
    loops_ = 0;
    s->bodies.push_back(parse_body({"endmacro"}));
    loops_ = saved;
    end_tag();
    expect(Type::kBlockEnd, "'%}'");
    return s;
  }

  std::unique_ptr<Stmt> parse_call_block(int line) {
    auto s = new_stmt(Stmt::Kind::kCallBlock, line);
    if (at_operator("(")) parse_parameters(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != Expr::Kind::kCall) fail("a call block needs a macro call, found another expression");
    return finish_block(std::move(s), "endcall");
  }

  std::unique_ptr<Stmt> parse_filter_block(int line) {
    auto s = new_stmt(Stmt::Kind::kFilterBlock, line);
    s->expr = parse_filters(make(Expr::Kind::kBlockInput, line), /*first_bar=*/false);
    return finish_block(std::move(s), "endfilter");
  }

  std::unique_ptr<Stmt> parse_simple_block(Stmt::Kind kind, const char* end, int line) {
    return finish_block(new_stmt(kind, line), end);
  }

  std::unique_ptr<Stmt> finish_block(std::unique_ptr<Stmt> s, const char* end) {
    expect(Type::kBlockEnd, "'%}'");
    s->bodies.push_back(parse_body({end}));
    end_tag();
    expect(Type::kBlockEnd, "'%}'");
    return s;
  }

  // --- expressions -------------------------------------------------------------------------

  ExprP parse_tuple(bool with_condition) {
    const int line = cur().line;
    auto first = parse_expression(with_condition);
    if (!at_operator(",")) return first;
    auto tuple = make(Expr::Kind::kTuple, line);
    adopt(*tuple, std::move(first));
    while (skip_operator(",")) {
      if (at_block_or_variable_end() || at_operator(")")) break;
      adopt(*tuple, parse_expression(with_condition));
    }
    return tuple;
  }

  bool at_block_or_variable_end() const {
    return cur().type == Type::kBlockEnd || cur().type == Type::kVariableEnd;
  }

  ExprP parse_expression(bool with_condition) {
    DepthGuard guard(*this);
    auto e = parse_or();
    while (with_condition && at_name("if")) {
      const int line = cur().line;
      advance();
      auto c = make_with(Expr::Kind::kCondition, line, "", std::move(e));
      adopt(*c, parse_or());
      if (skip_name("else")) adopt(*c, parse_expression(true));
      e = std::move(c);
    }
    return e;
  }

  ExprP binary(ExprP left, const std::string& op, ExprP right, int line) {
    auto e = make_with(Expr::Kind::kBinary, line, op, std::move(left));
    adopt(*e, std::move(right));
    return e;
  }

  // One left-associative level of binary operators (or keywords): next (op next)*.
  ExprP parse_level(ExprP (Parser::*next)(), std::initializer_list<const char*> ops) {
    auto e = (this->*next)();
    for (;;) {
      const char* matched = nullptr;
      for (const char* op : ops)
        if (at_operator(op) || at_name(op)) matched = op;
      if (!matched) return e;
      const int line = cur().line;
      advance();
      e = binary(std::move(e), matched, (this->*next)(), line);
    }
  }

  ExprP parse_or() { return parse_level(&Parser::parse_and, {"or"}); }
  ExprP parse_and() { return parse_level(&Parser::parse_not, {"and"}); }

  ExprP parse_not() {
    if (at_name("not")) {
      DepthGuard guard(*this);
      const int line = cur().line;
      advance();
      return make_with(Expr::Kind::kUnary, line, "not", parse_not());
    }
    return parse_compare();
  }

  ExprP parse_compare() {
    const int line = cur().line;
    auto first = parse_math1();
    ExprP e;
    for (;;) {
      std::string op;
      if (cur().type == Type::kOperator &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (at_name("in")) {
        op = "in";
        advance();
      } else if (at_name("not") && peek().type == Type::kName && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      if (!e) e = make_with(Expr::Kind::kCompare, line, "", std::move(first));
      e->operators.push_back(op);
      adopt(*e, parse_math1());
    }
    return e ? std::move(e) : std::move(first);
  }

  ExprP parse_math1() { return parse_level(&Parser::parse_concat, {"+", "-"}); }
  ExprP parse_concat() { return parse_level(&Parser::parse_math2, {"~"}); }
  ExprP parse_math2() { return parse_level(&Parser::parse_pow, {"*", "/", "//", "%"}); }
  ExprP parse_pow() { return parse_level(&Parser::parse_filtered_unary, {"**"}); }
  ExprP parse_filtered_unary() { return parse_unary(true); }

  ExprP parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    const int line = cur().line;
    ExprP e;
    if (at_operator("-") || at_operator("+")) {
      const auto op = cur().text;
      advance();
      e = make_with(Expr::Kind::kUnary, line, op, parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    return with_filter ? parse_filters(std::move(e)) : std::move(e);
  }

  ExprP parse_primary() {
    const auto& t = cur();
    const int line = t.line;
    auto constant = [&](Value v) {
      auto e = make(Expr::Kind::kConstant, line);
      e->value = std::move(v);
      advance();
      return e;
    };
    switch (t.type) {
      case Type::kName:
        if (t.text == "true" || t.text == "True") return constant(Value::boolean(true));
        if (t.text == "false" || t.text == "False") return constant(Value::boolean(false));
        if (t.text == "none" || t.text == "None") return constant(Value::none());
        advance();
        return make(Expr::Kind::kName, line, t_[i_ - 1].text);
      case Type::kString: {
        std::string s = t.text;
        advance();
        while (cur().type == Type::kString) {  // adjacent literals join, as in Python
          s += cur().text;
          advance();
        }
        auto e = make(Expr::Kind::kConstant, line);
        e->value = Value::string(std::move(s));
        return e;
      }
      case Type::kInteger: return constant(Value::integer(parse_integer(t.text)));
      case Type::kFloat: return constant(Value::number(std::strtod(t.text.c_str(), nullptr)));  // 1e999 -> inf, as Python
      default: break;
    }
    if (skip_operator("(")) {
      if (skip_operator(")")) return make(Expr::Kind::kTuple, line);
      auto e = parse_tuple(true);
      expect_operator(")");
      return e;
    }
    if (at_operator("[")) return parse_sequence(Expr::Kind::kList, "]");
    if (at_operator("{")) return parse_sequence(Expr::Kind::kDict, "}");
    fail("unexpected " + describe(t) + " in an expression");
  }

  std::int64_t parse_integer(const std::string& digits) const {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size()) fail("the integer " + text::quote(digits) + " is too large");
    return value;
  }

  ExprP parse_sequence(Expr::Kind kind, const char* close) {
    auto e = make(kind, cur().line);
    advance();
    while (!skip_operator(close)) {
      if (!e->children.empty()) {
        expect_operator(",");
        if (skip_operator(close)) break;
      }
      adopt(*e, parse_expression(true));
      if (kind == Expr::Kind::kDict) {
        expect_operator(":");
        adopt(*e, parse_expression(true));
      }
    }
    return e;
  }

  ExprP parse_postfix(ExprP e) {
    for (;;) {
      const int line = cur().line;
      if (skip_operator(".")) {
        if (cur().type == Type::kInteger) {
          auto index = make(Expr::Kind::kConstant, line);
          index->value = Value::integer(parse_integer(cur().text));
          advance();
          e = make_with(Expr::Kind::kItem, line, "", std::move(e));
          adopt(*e, std::move(index));
        } else {
          e = make_with(Expr::Kind::kAttribute, line, expect_name("an attribute name"), std::move(e));
        }
      } else if (at_operator("[")) {
        e = parse_subscript(std::move(e));
      } else if (at_operator("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprP parse_subscript(ExprP target) {
    const int line = cur().line;
    advance();
    std::vector<ExprP> parts;
    bool slice = false;
    for (int part = 0; part < 3; ++part) {
      parts.push_back(at_operator(":") || at_operator("]") ? nullptr : parse_expression(true));
      if (!skip_operator(":")) break;
      slice = true;
    }
    expect_operator("]");
    if (!slice) {
      if (!parts[0]) fail("an empty subscript []");
      auto e = make_with(Expr::Kind::kItem, line, "", std::move(target));
      adopt(*e, std::move(parts[0]));
      return e;
    }
    auto e = make_with(Expr::Kind::kSlice, line, "", std::move(target));
    parts.resize(3);
    for (auto& p : parts) adopt(*e, std::move(p));
    return e;
  }

  void parse_arguments(Expr& e) {
    expect_operator("(");
    while (!skip_operator(")")) {
      if (at_operator("*") || at_operator("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().type == Type::kName && peek().type == Type::kOperator && peek().text == "=") {
        auto name = cur().text;
        advance();
        advance();
        e.keywords.emplace_back(std::move(name), parse_expression(true));
      } else {
        if (!e.keywords.empty()) fail("a positional argument after a keyword argument");
        adopt(e, parse_expression(true));
      }
      if (!skip_operator(",")) {
        expect_operator(")");
        break;
      }
    }
  }

  ExprP parse_call(ExprP callee) {
    auto e = make_with(Expr::Kind::kCall, cur().line, "", std::move(callee));
    parse_arguments(*e);
    return e;
  }

  ExprP parse_filters(ExprP e, bool first_bar = true) {
    for (bool first = true;; first = false) {
      const int line = cur().line;
      if ((first && !first_bar) || skip_operator("|")) {
        auto name = expect_name("a filter name");
        if (!is_filter(name)) fail("no filter named " + text::quote(name) + " (supported: " + filter_names() + ")");
        e = make_with(Expr::Kind::kFilter, line, std::move(name), std::move(e));
        if (at_operator("(")) parse_arguments(*e);
      } else if (at_name("is")) {
        advance();
        e = parse_test(std::move(e), line);
      } else if (at_operator("(") && first_bar) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprP parse_test(ExprP subject, int line) {
    const bool negated = skip_name("not");
    std::string name;
    if (cur().type == Type::kName) {
      name = expect_name("a test name");
    } else if (cur().type == Type::kOperator && is_test(cur().text)) {
      name = cur().text;
      advance();
    } else {
      fail("expected a test name after 'is', found " + describe(cur()));
    }
    if (!is_test(name)) fail("no test named " + text::quote(name) + " (supported: " + test_names() + ")");
    auto e = make_with(Expr::Kind::kTest, line, name, std::move(subject));
    e->negated = negated;
    if (at_operator("(")) {
      parse_arguments(*e);
    } else if ((cur().type == Type::kName && cur().text != "else" && cur().text != "or" && cur().text != "and" &&
                cur().text != "if") ||
               cur().type == Type::kString || cur().type == Type::kInteger || cur().type == Type::kFloat ||
               at_operator("(") || at_operator("[") || at_operator("{")) {
      adopt(*e, parse_postfix(parse_primary()));
    }
    return e;
  }

  const std::vector<Token>& t_;
  std::size_t i_ = 0;
  int depth_ = 0;
  int loops_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens) { return Parser(tokens).parse_template(); }

}  // namespace accel::models::jinja
