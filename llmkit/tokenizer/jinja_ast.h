// The syntax tree of the chat-template Jinja subset: expressions (Expr) and statements (Node),
// as jinja_parser.cpp builds them and jinja_eval.cpp walks them. Plain structs with a kind tag;
// every node keeps its template line for error messages. Not here: evaluation, parsing.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llmkit/tokenizer/jinja_value.h"

namespace llmkit::tokenizer::jinja {

// The variable through which a {% filter %} or {% set x | f %} block's rendered body reaches
// its filter chain (not a valid template name, so templates cannot see it).
inline constexpr const char* kBodyVariable = "\x01body";

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kConst,    // value
    kName,     // name
    kList,     // args = items
    kTuple,    // args = items
    kDict,     // args = key0, value0, key1, value1, ...
    kAttr,     // args[0].name
    kItem,     // args[0][args[1]]
    kSlice,    // args[0][args[1]:args[2]:args[3]] (null = omitted)
    kCall,     // args[0](args[1:], kwargs)
    kFilter,   // args[0] | name(args[1:], kwargs)
    kTest,     // args[0] is [not] name(args[1:]); negated
    kUnary,    // name ("-", "+", "not") args[0]
    kBinary,   // args[0] name args[1]: + - * / // % ** ~ and or
    kCompare,  // args[0] ops[0] args[1] ops[1] args[2] ... (== != < <= > >= in notin)
    kCond,     // args[1] if args[0] else args[2] (args[2] null: undefined)
  };
  Kind kind = Kind::kConst;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

// An assignment target: a name, a tuple of names, or `ns.attr`.
struct Target {
  std::vector<std::string> names;  // one name, or a tuple's names
  std::string attribute;           // non-empty: names[0].attribute
  bool tuple = false;
};

struct Node {
  enum class Kind {
    kText,         // text
    kOutput,       // {{ expr }}
    kIf,           // conditions[i] -> bodies[i]; else_body
    kFor,          // for target in expr [if condition]: body; else_body
    kSet,          // set target = expr
    kSetBlock,     // set target [| filters] ... endset: body
    kMacro,        // macro name(params = defaults): body
    kCallBlock,    // call[(caller params)] expr: body (the caller)
    kFilterBlock,  // filter <expr on kName "__body__">: body
    kBreak,
    kContinue,
    kScope,  // a plain body (the `generation` block transformers adds)
  };
  Kind kind = Kind::kText;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  Target target;
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // same size as params; null = no default
};

struct Template {
  Body body;
};

}  // namespace llmkit::tokenizer::jinja
