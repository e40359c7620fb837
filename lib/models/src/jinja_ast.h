#pragma once
// The chat template interpreter's tokens and syntax tree. Private to lib/models; torch-free.
#include "jinja_value.h"

#include <memory>
#include <string>
#include <vector>

namespace accel::models::jinja {

struct Token {
  enum class Type { kText, kVariableBegin, kVariableEnd, kBlockBegin, kBlockEnd, kName, kString, kInteger, kFloat, kOperator, kEnd };
  Type type;
  std::string text;  // the text, name, operator, or a literal's value (strings unescaped)
  int line;
};

// The template's text as jinja2's lexer splits it with transformers' settings (trim_blocks,
// lstrip_blocks, a single trailing newline dropped). TemplateError naming the line otherwise.
std::vector<Token> tokenize(const std::string& source);

struct Expr {
  enum class Kind {
    kConstant,   // value
    kName,       // name
    kList,       // children
    kTuple,      // children
    kDict,       // children: key, value, key, value...
    kAttribute,  // children[0].name
    kItem,       // children[0][children[1]]
    kSlice,      // children[0][children[1]:children[2]:children[3]] (null parts allowed)
    kCall,       // children[0](children[1..], keywords)
    kFilter,     // children[0] | name(children[1..], keywords)
    kTest,       // children[0] is [not] name(children[1..]); negated
    kUnary,      // name ("not", "-", "+") children[0]
    kBinary,     // children[0] name children[1]; and/or short-circuit
    kCompare,    // children[0] operators[0] children[1] operators[1] children[2]...
    kCondition,  // children[0] if children[1] else children[2] (absent: undefined)
    kBlockInput  // the body of a {% filter %} or {% set x | f %} block
  };
  Kind kind;
  int line;
  int height = 1;  // of the tree below, bounded so that evaluating and freeing it recurse little
  std::string name;
  Value value;
  bool negated = false;
  std::vector<std::unique_ptr<Expr>> children;
  std::vector<std::string> operators;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> keywords;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind {
    kText,       // text
    kOutput,     // {{ expr }}
    kIf,         // conditions[i] -> bodies[i]; a last extra body is the else
    kFor,        // for targets in expr [if condition]: bodies[0], else bodies[1]
    kSet,        // set targets = expr, or set targets[0].attribute = expr
    kSetBlock,   // set targets[0] [| filter] ... endset: bodies[0] through expr (or as is)
    kMacro,      // macro name(targets = defaults): bodies[0]
    kCallBlock,  // call(targets = defaults) expr: bodies[0] is the caller
    kFilterBlock,  // filter expr: bodies[0]
    kBreak,
    kContinue,
    kGeneration  // transformers' {% generation %}: bodies[0] rendered as is
  };
  Kind kind;
  int line;
  std::string text;       // kText; kMacro's name; kSet's attribute when set ns.attribute
  std::unique_ptr<Expr> expr;
  std::unique_ptr<Expr> condition;
  std::vector<std::unique_ptr<Expr>> conditions;
  std::vector<std::string> targets;
  std::vector<std::unique_ptr<Expr>> defaults;  // per target of kMacro / kCallBlock, may be null
  std::vector<Body> bodies;
};

// The template's statements, or TemplateError naming the line and the construct it refuses
// ("line 3: the tag 'include' is not supported ...", "line 5: no filter named 'wordwrap' ...").
Body parse(const std::vector<Token>& tokens);

}  // namespace accel::models::jinja
