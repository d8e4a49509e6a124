// The Jinja parser (see jinja_parser.h): recursive descent with jinja2's precedence, loosest
// first: `x if c else y`, or, and, not, comparisons (== != < <= > >= in, not in), + -, ~,
// * / // %, **, unary - +, then postfix (.attr, [item], [a:b:c], call) and filters/tests
// (| f(args), is [not] t arg).
#include "llmkit/tokenizer/jinja_parser.h"

#include <set>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/jinja_builtins.h"
#include "llmkit/tokenizer/jinja_lexer.h"

namespace llmkit::tokenizer::jinja {
namespace {

using K = Expr::Kind;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Template run() {
    Template tpl;
    std::string end;
    tpl.body = subparse({}, &end);
    return tpl;
  }

 private:
  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }

  [[noreturn]] void error(const std::string& what, int line = 0) const {
    fail("chat template line ", line ? line : cur().line, ": ", what);
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kEnd:
        return "end of template";
      case TokenKind::kVarEnd:
        return "'}}'";
      case TokenKind::kBlockEnd:
        return "'%}'";
      case TokenKind::kString:
        return "string";
      case TokenKind::kInteger:
      case TokenKind::kFloat:
        return "number";
      default:
        return "'" + t.text + "'";
    }
  }
  bool is_op(const char* op) const {
    return cur().kind == TokenKind::kOperator && cur().text == op;
  }
  bool is_name(const char* name) const {
    return cur().kind == TokenKind::kName && cur().text == name;
  }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error(std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::kName) error("expected a name, got " + describe(cur()));
    return next().text;
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::kBlockEnd) error("expected '%}', got " + describe(cur()));
    next();
  }

  static ExprPtr make(K kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements ----

  // Parses nodes until a block tag whose name is in `ends` (left unconsumed after {%); its name
  // goes to *end. At the top level (ends empty) it runs to the end of the template.
  Body subparse(const std::set<std::string>& ends, std::string* end) {
    Body body;
    while (true) {
      const Token& tok = cur();
      if (tok.kind == TokenKind::kEnd) {
        for (const std::string& e : ends)
          if (e.starts_with("end")) error("unexpected end of template, expected '" + e + "'");
        return body;
      }
      if (tok.kind == TokenKind::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kText;
        n->line = tok.line;
        n->text = tok.text;
        body.push_back(std::move(n));
        next();
      } else if (tok.kind == TokenKind::kVarBegin) {
        next();
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kOutput;
        n->line = cur().line;
        n->expr = parse_tuple(true);
        if (cur().kind != TokenKind::kVarEnd) error("expected '}}', got " + describe(cur()));
        next();
        body.push_back(std::move(n));
      } else if (tok.kind == TokenKind::kBlockBegin) {
        next();
        if (cur().kind != TokenKind::kName)
          error("expected a statement name, got " + describe(cur()));
        if (ends.count(cur().text)) {
          *end = cur().text;
          next();
          return body;
        }
        body.push_back(statement());
      } else {
        error("unexpected " + describe(tok));
      }
    }
  }

  // Nesting deeper than this (brackets, unary operators, blocks) is refused rather than risking
  // the stack on a hostile template; real templates nest a handful of levels.
  static constexpr int kMaxDepth = 100;
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth)
        p.error("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~DepthGuard() { --p.depth_; }
  };

  NodePtr statement() {
    DepthGuard guard(*this);
    const int line = cur().line;
    const std::string name = next().text;
    auto n = std::make_unique<Node>();
    n->line = line;
    std::string end;
    if (name == "if") {
      n->kind = Node::Kind::kIf;
      n->conditions.push_back(parse_tuple(false));
      expect_block_end();
      while (true) {
        n->bodies.push_back(subparse({"elif", "else", "endif"}, &end));
        if (end == "elif") {
          n->conditions.push_back(parse_tuple(false));
          expect_block_end();
        } else {
          break;
        }
      }
      if (end == "else") {
        expect_block_end();
        n->else_body = subparse({"endif"}, &end);
      }
    } else if (name == "for") {
      n->kind = Node::Kind::kFor;
      n->target = parse_target(false);
      if (!skip_name("in")) error("expected 'in', got " + describe(cur()));
      n->expr = parse_tuple(false, {"recursive", "if"});
      if (skip_name("if")) n->condition = parse_expression(true);
      if (is_name("recursive")) error("recursive for loops are not supported");
      expect_block_end();
      n->body = subparse({"endfor", "else"}, &end);
      if (end == "else") {
        expect_block_end();
        n->else_body = subparse({"endfor"}, &end);
      }
    } else if (name == "set") {
      n->target = parse_target(true);
      if (skip_op("=")) {
        n->kind = Node::Kind::kSet;
        n->expr = parse_tuple(true);
      } else {
        n->kind = Node::Kind::kSetBlock;
        if (n->target.tuple) error("a block {% set %} assigns one name");
        if (is_op("|")) n->expr = parse_filters(body_placeholder(line));
        expect_block_end();
        n->body = subparse({"endset"}, &end);
      }
    } else if (name == "macro") {
      n->kind = Node::Kind::kMacro;
      n->text = expect_name();
      parse_signature(*n);
      expect_block_end();
      n->body = subparse({"endmacro"}, &end);
    } else if (name == "call") {
      n->kind = Node::Kind::kCallBlock;
      if (is_op("(")) parse_signature(*n);
      n->expr = parse_expression(true);
      if (n->expr->kind != K::kCall) error("expected a call after {% call %}", line);
      expect_block_end();
      n->body = subparse({"endcall"}, &end);
    } else if (name == "filter") {
      n->kind = Node::Kind::kFilterBlock;
      n->expr = parse_filters(body_placeholder(line), true);
      expect_block_end();
      n->body = subparse({"endfilter"}, &end);
    } else if (name == "break" || name == "continue") {
      n->kind = name == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
    } else if (name == "generation") {
      n->kind = Node::Kind::kScope;
      expect_block_end();
      n->body = subparse({"endgeneration"}, &end);
    } else {
      error("{% " + name + " %} is not supported", line);
    }
    expect_block_end();
    return n;
  }

  static ExprPtr body_placeholder(int line) {
    auto e = make(K::kName, line);
    e->name = kBodyVariable;
    return e;
  }

  Target parse_target(bool allow_attribute) {
    Target t;
    const bool paren = skip_op("(");
    t.names.push_back(expect_name());
    if (allow_attribute && !paren && skip_op(".")) {
      t.attribute = expect_name();
      return t;
    }
    while (skip_op(",")) {
      t.tuple = true;
      if (cur().kind != TokenKind::kName) break;
      t.names.push_back(expect_name());
    }
    if (paren) {
      expect_op(")");
      t.tuple = true;
    }
    return t;
  }

  void parse_signature(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n.params.empty()) expect_op(",");
      if (is_op(")")) break;
      n.params.push_back(expect_name());
      n.defaults.push_back(skip_op("=") ? parse_expression(true) : nullptr);
    }
    next();
  }

  // ---- expressions ----

  bool tuple_end(const std::vector<std::string>& extra) const {
    if (cur().kind == TokenKind::kVarEnd || cur().kind == TokenKind::kBlockEnd ||
        cur().kind == TokenKind::kEnd || is_op(")"))
      return true;
    for (const auto& e : extra)
      if (cur().kind == TokenKind::kName && cur().text == e) return true;
    return false;
  }

  // Expressions separated by commas: one expression, or a tuple when a comma appears.
  ExprPtr parse_tuple(bool with_cond, const std::vector<std::string>& extra = {},
                      bool explicit_parens = false) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        comma = true;
      }
      if (tuple_end(extra)) break;
      items.push_back(parse_expression(with_cond));
    }
    if (!comma) {
      if (items.size() == 1) return std::move(items[0]);
      if (!explicit_parens) error("expected an expression, got " + describe(cur()));
    }
    auto e = make(K::kTuple, line);
    e->args = std::move(items);
    return e;
  }

  ExprPtr parse_expression(bool with_cond) { return with_cond ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    DepthGuard guard(*this);
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const int line = next().line;
      auto c = make(K::kCond, line);
      c->args.push_back(parse_or());
      c->args.push_back(std::move(e));
      c->args.push_back(skip_name("else") ? parse_condexpr() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(std::string op, ExprPtr left, ExprPtr right, int line) {
    auto e = make(K::kBinary, line);
    e->name = std::move(op);
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) e = binary("or", std::move(e), (next(), parse_and()), cur().line);
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) e = binary("and", std::move(e), (next(), parse_not()), cur().line);
    return e;
  }
  ExprPtr parse_not() {
    DepthGuard guard(*this);
    if (is_name("not")) {
      auto e = make(K::kUnary, next().line);
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    auto e = make(K::kCompare, line);
    e->args.push_back(std::move(first));
    while (true) {
      static const std::set<std::string> kOps = {"==", "!=", "<", "<=", ">", ">="};
      if (cur().kind == TokenKind::kOperator && kOps.count(cur().text)) {
        e->ops.push_back(next().text);
      } else if (skip_name("in")) {
        e->ops.push_back("in");
      } else if (is_name("not") && peek().kind == TokenKind::kName && peek().text == "in") {
        next();
        next();
        e->ops.push_back("notin");
      } else {
        break;
      }
      e->args.push_back(parse_math1());
    }
    if (e->ops.empty()) return std::move(e->args[0]);
    return e;
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = next().text;
      e = binary(std::move(op), std::move(e), parse_concat(), cur().line);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (skip_op("~")) e = binary("~", std::move(e), parse_math2(), cur().line);
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().text;
      e = binary(std::move(op), std::move(e), parse_pow(), cur().line);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (skip_op("**")) e = binary("**", std::move(e), parse_unary(true), cur().line);
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = make(K::kUnary, cur().line);
      e->name = next().text;
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    const int line = tok.line;
    if (tok.kind == TokenKind::kName) {
      const std::string n = next().text;
      auto e = make(K::kConst, line);
      if (n == "true" || n == "True") {
        e->value = Value::boolean(true);
      } else if (n == "false" || n == "False") {
        e->value = Value::boolean(false);
      } else if (n == "none" || n == "None") {
        e->value = Value::none();
      } else {
        e->kind = K::kName;
        e->name = n;
      }
      return e;
    }
    if (tok.kind == TokenKind::kString) {
      std::string s;
      while (cur().kind == TokenKind::kString) s += next().text;
      auto e = make(K::kConst, line);
      e->value = Value::string(std::move(s));
      return e;
    }
    if (tok.kind == TokenKind::kInteger || tok.kind == TokenKind::kFloat) {
      auto e = make(K::kConst, line);
      e->value =
          tok.kind == TokenKind::kInteger ? Value::integer(tok.integer) : Value::number(tok.number);
      next();
      return e;
    }
    if (skip_op("(")) {
      ExprPtr e = parse_tuple(true, {}, true);
      expect_op(")");
      return e;
    }
    if (is_op("[") || is_op("{")) {
      const bool is_list = next().text == "[";
      auto e = make(is_list ? K::kList : K::kDict, line);
      const char* close = is_list ? "]" : "}";
      while (!is_op(close)) {
        if (!e->args.empty()) {
          expect_op(",");
          if (is_op(close)) break;
        }
        e->args.push_back(parse_expression(true));
        if (!is_list) {
          expect_op(":");
          e->args.push_back(parse_expression(true));
        }
      }
      next();
      return e;
    }
    error("unexpected " + describe(tok));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const int line = cur().line;
      if (skip_op(".")) {
        if (cur().kind == TokenKind::kInteger) {
          auto item = make(K::kItem, line);
          item->args.push_back(std::move(e));
          item->args.push_back(make(K::kConst, line));
          item->args.back()->value = Value::integer(next().integer);
          e = std::move(item);
        } else {
          auto attr = make(K::kAttr, line);
          attr->name = expect_name();
          attr->args.push_back(std::move(e));
          e = std::move(attr);
        }
      } else if (skip_op("[")) {
        e = parse_subscript(std::move(e), line);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj, int line) {
    ExprPtr parts[3];
    int n = 0;
    bool slice = false;
    while (true) {
      if (is_op(":")) {
        next();
        slice = true;
        if (++n > 2) error("a slice takes at most three parts");
      } else if (is_op("]")) {
        break;
      } else {
        if (parts[n]) error("expected ':' or ']', got " + describe(cur()));
        parts[n] = parse_expression(true);
      }
    }
    next();
    auto e = make(slice ? K::kSlice : K::kItem, line);
    e->args.push_back(std::move(obj));
    if (!slice && !parts[0]) error("empty subscript", line);
    for (int k = 0; k < (slice ? 3 : 1); ++k) e->args.push_back(std::move(parts[k]));
    return e;
  }

  void parse_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (cur().kind == TokenKind::kName && peek().kind == TokenKind::kOperator &&
          peek().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (is_op("*") || is_op("**")) error("*args and **kwargs in calls are not supported");
        if (!e.kwargs.empty()) error("a positional argument follows a keyword argument");
        e.args.push_back(parse_expression(true));
      }
      if (!skip_op(",")) break;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = make(K::kCall, cur().line);
    e->args.push_back(std::move(callee));
    parse_args(*e);
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filters(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  // `| f(args) | g ...` applied to e (`start_inline`: the first `|` is already implied).
  ExprPtr parse_filters(ExprPtr e, bool start_inline = false) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const int line = cur().line;
      auto f = make(K::kFilter, line);
      f->name = expect_name();
      while (skip_op(".")) f->name.append(".").append(expect_name());
      if (!has_filter(f->name)) error("filter '" + f->name + "' is not supported", line);
      f->args.push_back(std::move(e));
      if (is_op("(")) parse_args(*f);
      e = std::move(f);
    }
    return e;
  }

  ExprPtr parse_test(ExprPtr e) {
    next();  // is
    auto t = make(K::kTest, cur().line);
    t->negated = skip_name("not");
    t->name = expect_name();
    while (skip_op(".")) t->name.append(".").append(expect_name());
    if (!has_test(t->name)) error("test '" + t->name + "' is not supported", t->line);
    t->args.push_back(std::move(e));
    const TokenKind k = cur().kind;
    if (is_op("(")) {
      parse_args(*t);
    } else if ((k == TokenKind::kName || k == TokenKind::kString || k == TokenKind::kInteger ||
                k == TokenKind::kFloat || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) error("you cannot chain multiple tests with is");
      t->args.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

Template parse(std::string_view source) {
  return Parser(tokenize(source)).run();
}

}  // namespace llmkit::tokenizer::jinja
