// The evaluator of the chat-template Jinja subset (see jinja_eval.h): statements, expressions,
// scopes, macros and the globals. Python semantics of values live in jinja_methods.cpp and the
// filters and tests in jinja_filters.cpp.
#include "llmkit/tokenizer/jinja_eval.h"

#include <ctime>
#include <unordered_map>

#include "llmkit/tokenizer/jinja_builtins.h"

namespace llmkit::tokenizer::jinja {
namespace {

using K = Expr::Kind;
using Frame = std::unordered_map<std::string, Value>;

enum class Flow { kNormal, kBreak, kContinue };

// Re-raises an error from a built-in with the template line in front, once.
[[noreturn]] void relocate(const Error& e, int line) {
  throw TemplateError("chat template line " + std::to_string(line) + ": " + e.what());
}

Value range_global(CallArgs& a) {
  if (!a.kwargs.empty() || a.args.empty() || a.args.size() > 3)
    fail("range expects 1 to 3 integer arguments");
  for (const Value& v : a.args)
    if (!v.is_int() && !v.is_bool())
      fail("'", v.type_name(), "' object cannot be interpreted as an integer");
  int64_t start = 0, stop = 0, step = 1;
  if (a.args.size() == 1) stop = a.args[0].as_int();
  if (a.args.size() >= 2) start = a.args[0].as_int(), stop = a.args[1].as_int();
  if (a.args.size() == 3) step = a.args[2].as_int();
  if (step == 0) fail("range() arg 3 must not be zero");
  List out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
    if (out.size() >= 100000)
      fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    out.push_back(Value::integer(i));
    if (__builtin_add_overflow(i, step, &i)) break;  // past stop: the range ends
  }
  return Value::list(std::move(out));
}

Dict kwargs_dict(CallArgs& a, const char* fn) {
  Dict d;
  for (const Value& v : a.args) {
    if (!v.is_dict()) fail(fn, "() takes a dict or keyword arguments");
    for (const auto& [k, x] : v.as_dict().items) d.set(k, x);
  }
  for (const auto& [k, v] : a.kwargs) d.set(k, v);
  return d;
}

void add_globals(Frame& f) {
  f["range"] = Value::function("range", range_global);
  f["namespace"] = Value::function("namespace", [](CallArgs& a) {
    return Value::namespace_object(kwargs_dict(a, "namespace"));
  });
  f["dict"] =
      Value::function("dict", [](CallArgs& a) { return Value::dict(kwargs_dict(a, "dict")); });
  f["raise_exception"] = Value::function("raise_exception", [](CallArgs& a) -> Value {
    throw TemplateError("chat template: " + arg(a, 0, "message").str());
  });
  f["strftime_now"] = Value::function("strftime_now", [](CallArgs& a) {
    const std::string format = arg(a, 0, "format").str();
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[512];
    const size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
    return Value::string(std::string(buf, n));
  });
}

class Renderer {
 public:
  explicit Renderer(const Dict& variables) {
    auto root = std::make_shared<Frame>();
    add_globals(*root);
    for (const auto& [k, v] : variables.items) (*root)[k] = v;
    frames_.push_back(std::move(root));
  }

  Flow exec(const Body& body, std::string& out) {
    for (const NodePtr& n : body) {
      const Flow f = exec(*n, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

 private:
  Flow exec(const Node& n, std::string& out) {
    try {
      return exec_node(n, out);
    } catch (const TemplateError&) {
      throw;
    } catch (const Error& e) {
      relocate(e, n.line);
    }
  }

  Flow exec_node(const Node& n, std::string& out) {
    using NK = Node::Kind;
    switch (n.kind) {
      case NK::kText:
        out += n.text;
        return Flow::kNormal;
      case NK::kOutput:
        out += eval(*n.expr).str();
        return Flow::kNormal;
      case NK::kIf:
        for (size_t i = 0; i < n.conditions.size(); ++i)
          if (eval(*n.conditions[i]).truthy()) return exec(n.bodies[i], out);
        return exec(n.else_body, out);
      case NK::kFor:
        return exec_for(n, out);
      case NK::kSet:
        assign(n.target, eval(*n.expr));
        return Flow::kNormal;
      case NK::kSetBlock: {
        std::string body;
        exec(n.body, body);
        assign(n.target, n.expr ? apply_body_filters(*n.expr, body) : Value::string(body));
        return Flow::kNormal;
      }
      case NK::kFilterBlock: {
        std::string body;
        exec(n.body, body);
        out += apply_body_filters(*n.expr, body).str();
        return Flow::kNormal;
      }
      case NK::kMacro: {
        const Node* macro = &n;
        (*frames_.back())[n.text] =
            Value::function(n.text, [this, macro](CallArgs& a) { return call_macro(*macro, a); });
        return Flow::kNormal;
      }
      case NK::kCallBlock: {
        const Node* block = &n;
        auto frames = frames_;
        Value caller = Value::function("caller", [this, block, frames](CallArgs& a) {
          auto saved = frames_;
          frames_ = frames;
          frames_.push_back(bind_params(*block, a, "caller"));
          std::string body;
          exec(block->body, body);
          frames_ = saved;
          return Value::string(body);
        });
        const Expr& call = *n.expr;
        CallArgs a = eval_args(call);
        a.kwargs.emplace_back("caller", caller);
        out += call_value(eval(*call.args[0]), a).str();
        return Flow::kNormal;
      }
      case NK::kBreak:
        return Flow::kBreak;
      case NK::kContinue:
        return Flow::kContinue;
      case NK::kScope:
        return exec(n.body, out);
    }
    return Flow::kNormal;
  }

  Value apply_body_filters(const Expr& filters, const std::string& body) {
    frames_.push_back(std::make_shared<Frame>());
    (*frames_.back())[kBodyVariable] = Value::string(body);
    Value v = eval(filters);
    frames_.pop_back();
    return v;
  }

  // Each iteration gets a fresh scope (as in jinja2, a `set` in one iteration is gone in the
  // next); the loop filter sees the target but not `loop`.
  Flow exec_for(const Node& n, std::string& out) {
    List items = python_iterate(eval(*n.expr));
    if (n.condition) {
      List kept;
      for (const Value& item : items) {
        frames_.push_back(std::make_shared<Frame>());
        assign(n.target, item);
        if (eval(*n.condition).truthy()) kept.push_back(item);
        frames_.pop_back();
      }
      items = std::move(kept);
    }
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < len; ++i) {
      step();
      check_built(out.size(), "output");
      frames_.push_back(std::make_shared<Frame>());
      assign(n.target, items[i]);
      (*frames_.back())["loop"] = loop_object(items, i);
      const Flow f = exec(n.body, out);
      frames_.pop_back();
      if (f == Flow::kBreak) break;
    }
    if (len == 0) exec(n.else_body, out);
    return Flow::kNormal;
  }

  static Value loop_object(const List& items, int64_t i) {
    const int64_t len = static_cast<int64_t>(items.size());
    Dict loop;
    loop.items.reserve(12);
    auto put = [&](const char* key, Value v) { loop.items.emplace_back(key, std::move(v)); };
    put("index", Value::integer(i + 1));
    put("index0", Value::integer(i));
    put("revindex", Value::integer(len - i));
    put("revindex0", Value::integer(len - i - 1));
    put("first", Value::boolean(i == 0));
    put("last", Value::boolean(i == len - 1));
    put("length", Value::integer(len));
    put("depth", Value::integer(1));
    put("depth0", Value::integer(0));
    put("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    put("nextitem", i + 1 < len ? items[i + 1] : Value::undefined("there is no next item"));
    put("cycle", Value::function("cycle", [i](CallArgs& a) {
          if (a.args.empty()) fail("no items for cycling given");
          return a.args[i % a.args.size()];
        }));
    return Value::dict(std::move(loop));
  }

  void assign(const Target& t, const Value& v) {
    Frame& frame = *frames_.back();
    if (!t.attribute.empty()) {
      const Value ns = lookup(t.names[0]);
      if (!ns.is_namespace()) fail("cannot assign attribute on non-namespace object");
      // A namespace attribute holding a namespace or a function could close a cycle.
      if (v.may_cycle())
        fail("assigning a namespace or a function (or a list or dict holding one) to a namespace ",
             "attribute is not supported");
      // The namespace's own nesting was fixed when it was made: its attributes stay within it.
      if (v.nesting() >= Value::kMaxNesting)
        fail("lists, dicts and namespaces nested deeper than ", Value::kMaxNesting, " levels");
      ns.namespace_dict().set(t.attribute, v);
    } else if (t.tuple) {
      if (!v.is_list() && !v.is_string() && !v.is_dict() && !v.is_undefined())
        fail("cannot unpack non-iterable ", v.type_name(), " object");
      const List items = python_iterate(v);
      if (items.size() != t.names.size())
        fail(items.size() > t.names.size() ? "too many" : "not enough",
             " values to unpack (expected ", t.names.size(), ", got ", items.size(), ")");
      for (size_t i = 0; i < items.size(); ++i) frame[t.names[i]] = items[i];
    } else {
      frame[t.names[0]] = v;
    }
  }

  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      auto f = (*it)->find(name);
      if (f != (*it)->end()) return f->second;
    }
    return Value::undefined("'" + name + "' is undefined");
  }

  std::shared_ptr<Frame> bind_params(const Node& m, CallArgs& a, const std::string& what) {
    auto frame = std::make_shared<Frame>();
    if (a.args.size() > m.params.size())
      fail(what, " takes not more than ", m.params.size(), " argument(s)");
    frames_.push_back(frame);  // defaults see the parameters bound before them
    for (size_t i = 0; i < m.params.size(); ++i) {
      Value v = i < a.args.size()
                    ? a.args[i]
                    : Value::undefined("parameter '" + m.params[i] + "' was not provided");
      if (i >= a.args.size()) {
        bool found = false;
        for (const auto& [k, x] : a.kwargs)
          if (k == m.params[i]) v = x, found = true;
        if (!found && m.defaults[i]) v = eval(*m.defaults[i]);
      }
      (*frame)[m.params[i]] = v;
    }
    frames_.pop_back();
    for (const auto& [k, x] : a.kwargs) {
      if (k == "caller") {
        (*frame)["caller"] = x;
        continue;
      }
      bool known = false;
      for (const auto& p : m.params) known = known || p == k;
      if (!known) fail(what, " takes no keyword argument '", k, "'");
    }
    return frame;
  }

  Value call_macro(const Node& m, CallArgs& a) {
    // jinja2 stops runaway recursion with Python's RecursionError; so do we, before the stack.
    if (macro_depth_ >= 100) fail("maximum recursion depth exceeded in macro '", m.text, "'");
    step();
    ++macro_depth_;
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{macro_depth_};
    auto saved = frames_;
    frames_ = {frames_.front()};
    frames_.push_back(bind_params(m, a, "macro '" + m.text + "'"));
    std::string body;
    try {
      exec(m.body, body);
    } catch (...) {
      frames_ = saved;
      throw;
    }
    frames_ = saved;
    return Value::string(body);
  }

  static Value call_value(const Value& f, CallArgs& a) {
    if (f.is_callable()) return f.as_callable().fn(a);
    if (f.is_undefined()) fail_undefined(f);
    fail("'", f.type_name(), "' object is not callable");
  }

  CallArgs eval_args(const Expr& e) {
    CallArgs a;
    for (size_t i = 1; i < e.args.size(); ++i) a.args.push_back(eval(*e.args[i]));
    for (const auto& [k, x] : e.kwargs) a.kwargs.emplace_back(k, eval(*x));
    return a;
  }

  Value eval(const Expr& e) {
    try {
      return eval_expr(e);
    } catch (const TemplateError&) {
      throw;
    } catch (const Error& err) {
      relocate(err, e.line);
    }
  }

  Value eval_expr(const Expr& e) {
    switch (e.kind) {
      case K::kConst:
        return e.value;
      case K::kName:
        return lookup(e.name);
      case K::kList:
      case K::kTuple: {
        List l;
        for (const auto& x : e.args) l.push_back(eval(*x));
        return Value::list(std::move(l), e.kind == K::kTuple);
      }
      case K::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value k = eval(*e.args[i]);
          if (!k.is_string()) fail("dict keys must be strings (this subset has only string keys)");
          d.set(k.as_string(), eval(*e.args[i + 1]));
        }
        return Value::dict(std::move(d));
      }
      case K::kAttr:
        return get_attr(eval(*e.args[0]), e.name);
      case K::kItem:
        return get_item(eval(*e.args[0]), eval(*e.args[1]));
      case K::kSlice: {
        auto part = [&](const ExprPtr& p) { return p ? eval(*p) : Value::none(); };
        return get_slice(eval(*e.args[0]), part(e.args[1]), part(e.args[2]), part(e.args[3]));
      }
      case K::kCall: {
        const Expr& callee = *e.args[0];
        if (callee.kind == K::kAttr) {
          const Value obj = eval(*callee.args[0]);
          CallArgs a = eval_args(e);
          if (is_method(obj, callee.name)) return call_method(obj, callee.name, a);
          return call_value(get_attr(obj, callee.name), a);
        }
        const Value f = eval(callee);
        CallArgs a = eval_args(e);
        return call_value(f, a);
      }
      case K::kFilter: {
        const Value v = eval(*e.args[0]);
        CallArgs a = eval_args(e);
        return apply_filter(e.name, v, a);
      }
      case K::kTest: {
        const Value v = eval(*e.args[0]);
        CallArgs a = eval_args(e);
        return Value::boolean(apply_test(e.name, v, a) != e.negated);
      }
      case K::kUnary: {
        const Value v = eval(*e.args[0]);
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_number()) fail("bad operand type for unary ", e.name, ": '", v.type_name(), "'");
        if (e.name == "+") return v.is_float() ? v : Value::integer(v.as_int());
        return v.is_float() ? Value::number(-v.as_float())
                            : Value::integer(checked_neg(v.as_int()));
      }
      case K::kBinary: {
        if (e.name == "and" || e.name == "or") {
          Value l = eval(*e.args[0]);
          if (l.truthy() == (e.name == "or")) return l;
          return eval(*e.args[1]);
        }
        const Value l = eval(*e.args[0]), r = eval(*e.args[1]);
        if (e.name == "~") {
          std::string s = l.str();
          const std::string rs = r.str();
          count_built(s.size() + rs.size(), "string");
          return Value::string(s + rs);
        }
        if (e.name == "+") return python_add(l, r);
        return python_arith(e.name, l, r);
      }
      case K::kCompare: {
        Value l = eval(*e.args[0]);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value r = eval(*e.args[i + 1]);
          if (!compare_op(e.ops[i], l, r)) return Value::boolean(false);
          l = std::move(r);
        }
        return Value::boolean(true);
      }
      case K::kCond: {
        if (eval(*e.args[0]).truthy()) return eval(*e.args[1]);
        if (e.args[2]) return eval(*e.args[2]);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
      }
    }
    fail("unknown expression");
  }

  static bool compare_op(const std::string& op, const Value& l, const Value& r) {
    if (op == "==") return equals(l, r);
    if (op == "!=") return !equals(l, r);
    if (op == "in") return python_contains(r, l);
    if (op == "notin") return !python_contains(r, l);
    if (l.is_undefined()) fail_undefined(l);
    if (r.is_undefined()) fail_undefined(r);
    const int c = compare(l, r, op.c_str());
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
  }

  // Counts loop iterations and macro calls: a template that nests loops over large ranges would
  // otherwise run for hours (as it does in jinja2).
  void step() {
    if (++steps_ > kMaxSteps)
      fail("too many loop iterations and macro calls (the limit is ", kMaxSteps, " per render)");
  }

  std::vector<std::shared_ptr<Frame>> frames_;
  int macro_depth_ = 0;
  int64_t steps_ = 0;
};

}  // namespace

std::string render(const Template& tpl, const Dict& variables) {
  Renderer r(variables);
  reset_built();
  std::string out;
  r.exec(tpl.body, out);
  return out;
}

}  // namespace llmkit::tokenizer::jinja
