// jinja2's filters and tests for the chat-template subset (see jinja_builtins.h), each with
// jinja2 3.1's argument names and behaviour on Undefined; `tojson` is transformers' override
// (json.dumps with ensure_ascii=False, indent, separators, sort_keys). Filters that return
// generators in jinja2 (map, select, selectattr, reject, rejectattr, unique, batch) return lists.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

#include "llmkit/tokenizer/jinja_builtins.h"

namespace llmkit::tokenizer::jinja {
namespace {

using Filter = std::function<Value(const Value&, CallArgs&)>;
using Test = std::function<bool(const Value&, CallArgs&)>;

CallArgs rest_args(const CallArgs& a, size_t from) {
  CallArgs r;
  if (from < a.args.size()) r.args.assign(a.args.begin() + from, a.args.end());
  r.kwargs = a.kwargs;
  return r;
}

Value call_str_method(const Value& v, const char* name, CallArgs args = {}) {
  return call_method(Value::string(v.str()), name, args);
}

// jinja2's make_attrgetter: "a.b.0" -> item lookups one part at a time.
Value lookup_path(const Value& v, const Value& path) {
  if (path.is_int()) return get_item(v, path);
  std::string p = path.str();
  Value cur = v;
  size_t start = 0;
  while (true) {
    const size_t dot = p.find('.', start);
    const std::string part =
        p.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = get_item(cur, digits ? Value::integer(parse_int(part)) : Value::string(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Value sort_key(const Value& v, bool case_sensitive) {
  CallArgs none;
  if (!case_sensitive && v.is_string()) return call_method(v, "lower", none);
  return v;
}

// select/reject/selectattr/rejectattr: `attr` = whether the first argument names an attribute.
Value select(const Value& seq, CallArgs& a, bool attr, bool keep) {
  size_t i = 0;
  Value attribute;
  if (attr) attribute = arg(a, i++, "attr");
  const bool has_test = i < a.args.size();
  const std::string test = has_test ? a.args[i].str() : "";
  CallArgs targs = rest_args(a, i + 1);
  List out;
  for (const Value& item : python_iterate(seq)) {
    const Value x = attr ? lookup_path(item, attribute) : item;
    const bool ok = has_test ? apply_test(test, x, targs) : x.truthy();
    if (ok == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::optional<double> parse_float(const std::string& s) {
  CallArgs none;
  const std::string t = call_method(Value::string(s), "strip", none).as_string();
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return d;
}

Value to_int(const Value& v, const Value& fallback) {
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float())
    return std::isfinite(v.as_float()) ? Value::integer(float_to_int(v.as_float())) : fallback;
  if (v.is_string()) {
    CallArgs none;
    const std::string t = call_method(v, "strip", none).as_string();
    size_t k = (t.size() && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
    if (k < t.size() && std::all_of(t.begin() + k, t.end(), ::isdigit))
      return Value::integer(parse_int(t));
    if (auto d = parse_float(t); d && std::isfinite(*d)) return Value::integer(float_to_int(*d));
  }
  return fallback;
}

// n spaces (none when n < 0), at most kMaxBuilt.
std::string spaces(int64_t n) {
  if (n > kMaxBuilt) check_built(static_cast<size_t>(n), "indent");
  return std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
}

Value tojson(const Value& v, CallArgs& a) {
  JsonOptions o;
  o.ensure_ascii = arg(a, 0, "ensure_ascii", Value::boolean(false)).truthy();
  const Value indent = arg(a, 1, "indent", Value::none());
  if (indent.is_string()) o.indent = indent.as_string();
  if (indent.is_int()) o.indent = spaces(indent.as_int());
  if (o.indent) o.item_separator = ",";
  const Value seps = arg(a, 2, "separators", Value::none());
  if (seps.is_list()) {
    if (seps.as_list().size() != 2) fail("tojson: separators must be a pair");
    o.item_separator = seps.as_list()[0].str();
    o.key_separator = seps.as_list()[1].str();
  }
  o.sort_keys = arg(a, 3, "sort_keys", Value::boolean(false)).truthy();
  return Value::string(to_json(v, o));
}

Value indent(const Value& v, CallArgs& a) {
  const Value width = arg(a, 0, "width", Value::integer(4));
  const std::string ind = width.is_string() ? width.as_string() : spaces(width.as_int());
  const bool first = arg(a, 1, "first", Value::boolean(false)).truthy();
  const bool blank = arg(a, 2, "blank", Value::boolean(false)).truthy();
  CallArgs none;
  const List lines = call_method(Value::string(v.str() + "\n"), "splitlines", none).as_list();
  std::string rv;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i].as_string();
    if (i == 0)
      rv = line;
    else
      rv += "\n" + ((blank || !line.empty()) ? ind + line : line);
  }
  return Value::string(first ? ind + rv : rv);
}

Value sorted(const Value& v, CallArgs& a) {
  const bool reverse = arg(a, 0, "reverse", Value::boolean(false)).truthy();
  const bool cs = arg(a, 1, "case_sensitive", Value::boolean(false)).truthy();
  const Value attribute = arg(a, 2, "attribute", Value::none());
  List l = python_iterate(v);
  auto key = [&](const Value& x) {
    return sort_key(attribute.is_none() ? x : lookup_path(x, attribute), cs);
  };
  std::stable_sort(l.begin(), l.end(), [&](const Value& x, const Value& y) {
    return reverse ? compare(key(y), key(x)) < 0 : compare(key(x), key(y)) < 0;
  });
  return Value::list(std::move(l));
}

Value python_round(const Value& v, CallArgs& a) {
  const int64_t precision = arg(a, 0, "precision", Value::integer(0)).as_int();
  const std::string method = arg(a, 1, "method", Value::string("common")).str();
  if (!v.is_number()) fail("round: a number is required, not ", v.type_name());
  if (method == "common") {
    if (!v.is_float()) return Value::integer(v.as_int());
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::clamp<int64_t>(precision, 0, 300)),
                  v.as_float());
    return Value::number(std::strtod(buf, nullptr));
  }
  if (method != "floor" && method != "ceil") fail("method must be common, ceil or floor");
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_float() * scale;
  return Value::number((method == "floor" ? std::floor(x) : std::ceil(x)) / scale);
}

const std::map<std::string, Filter, std::less<>>& filters() {
  static const std::map<std::string, Filter, std::less<>> kFilters = [] {
    std::map<std::string, Filter, std::less<>> f;
    f["abs"] = [](const Value& v, CallArgs&) {
      if (v.is_float()) return Value::number(std::fabs(v.as_float()));
      if (v.is_int() || v.is_bool())
        return Value::integer(v.as_int() < 0 ? checked_neg(v.as_int()) : v.as_int());
      if (v.is_undefined()) fail_undefined(v);
      fail("bad operand type for abs(): '", v.type_name(), "'");
    };
    f["batch"] = [](const Value& v, CallArgs& a) {
      const int64_t n = arg(a, 0, "linecount").as_int();
      if (n <= 0) fail("batch: linecount must be positive");
      check_built(static_cast<size_t>(n), "batch");
      const Value fill = arg(a, 1, "fill_with", Value::none());
      List out, cur;
      for (const Value& x : python_iterate(v)) {
        cur.push_back(x);
        if (static_cast<int64_t>(cur.size()) == n)
          out.push_back(Value::list(std::move(cur))), cur.clear();
      }
      if (!cur.empty()) {
        if (!fill.is_none())
          while (static_cast<int64_t>(cur.size()) < n) cur.push_back(fill);
        out.push_back(Value::list(std::move(cur)));
      }
      return Value::list(std::move(out));
    };
    f["capitalize"] = [](const Value& v, CallArgs&) { return call_str_method(v, "capitalize"); };
    f["count"] =
        f["length"] = [](const Value& v, CallArgs&) { return Value::integer(python_len(v)); };
    f["d"] = f["default"] = [](const Value& v, CallArgs& a) {
      const bool boolean = arg(a, 1, "boolean", Value::boolean(false)).truthy();
      if (v.is_undefined() || (boolean && !v.truthy()))
        return arg(a, 0, "default_value", Value::string(""));
      return v;
    };
    f["dictsort"] = [](const Value& v, CallArgs& a) {
      if (!v.is_dict()) fail("dictsort: a dict is required");
      const bool cs = arg(a, 0, "case_sensitive", Value::boolean(false)).truthy();
      const std::string by = arg(a, 1, "by", Value::string("key")).str();
      const bool reverse = arg(a, 2, "reverse", Value::boolean(false)).truthy();
      CallArgs none;
      List items = call_method(v, "items", none).as_list();
      const size_t pos = by == "value" ? 1 : 0;
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        const Value kx = sort_key(x.as_list()[pos], cs), ky = sort_key(y.as_list()[pos], cs);
        return reverse ? compare(ky, kx) < 0 : compare(kx, ky) < 0;
      });
      return Value::list(std::move(items));
    };
    f["e"] =
        f["escape"] = [](const Value& v, CallArgs&) { return Value::string(html_escape(v.str())); };
    f["first"] = [](const Value& v, CallArgs&) {
      const List l = python_iterate(v);
      return l.empty() ? Value::undefined("No first item, sequence was empty.") : l.front();
    };
    f["last"] = [](const Value& v, CallArgs&) {
      const List l = python_iterate(v);
      return l.empty() ? Value::undefined("No last item, sequence was empty.") : l.back();
    };
    f["float"] = [](const Value& v, CallArgs& a) {
      const Value fallback = arg(a, 0, "default", Value::number(0.0));
      if (v.is_number()) return Value::number(v.as_float());
      if (v.is_string())
        if (auto d = parse_float(v.as_string())) return Value::number(*d);
      return fallback;
    };
    f["int"] = [](const Value& v, CallArgs& a) {
      return to_int(v, arg(a, 0, "default", Value::integer(0)));
    };
    f["items"] = [](const Value& v, CallArgs&) {
      if (v.is_undefined()) return Value::list({});
      if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
      CallArgs none;
      return call_method(v, "items", none);
    };
    f["join"] = [](const Value& v, CallArgs& a) {
      const std::string sep = arg(a, 0, "d", Value::string("")).str();
      const Value attribute = arg(a, 1, "attribute", Value::none());
      std::string out;
      bool first = true;
      for (const Value& x : python_iterate(v)) {
        out += (first ? "" : sep) + (attribute.is_none() ? x : lookup_path(x, attribute)).str();
        check_built(out.size(), "string");
        first = false;
      }
      count_built(out.size(), "string");
      return Value::string(out);
    };
    f["list"] = [](const Value& v, CallArgs&) { return Value::list(python_iterate(v)); };
    f["lower"] = [](const Value& v, CallArgs&) { return call_str_method(v, "lower"); };
    f["upper"] = [](const Value& v, CallArgs&) { return call_str_method(v, "upper"); };
    f["map"] = [](const Value& v, CallArgs& a) {
      List out;
      const Value attribute = arg(a, 1000, "attribute", Value::none());
      if (!attribute.is_none()) {
        const Value dflt = arg(a, 1000, "default");
        for (const Value& x : python_iterate(v)) {
          Value y = lookup_path(x, attribute);
          out.push_back(y.is_undefined() && !dflt.is_undefined() ? dflt : y);
        }
      } else {
        if (a.args.empty()) fail("map requires a filter argument");
        const std::string name = a.args[0].str();
        if (!has_filter(name)) fail("No filter named '", name, "'.");
        CallArgs fargs = rest_args(a, 1);
        for (const Value& x : python_iterate(v)) out.push_back(apply_filter(name, x, fargs));
      }
      return Value::list(std::move(out));
    };
    f["reject"] = [](const Value& v, CallArgs& a) { return select(v, a, false, false); };
    f["rejectattr"] = [](const Value& v, CallArgs& a) { return select(v, a, true, false); };
    f["select"] = [](const Value& v, CallArgs& a) { return select(v, a, false, true); };
    f["selectattr"] = [](const Value& v, CallArgs& a) { return select(v, a, true, true); };
    f["replace"] = [](const Value& v, CallArgs& a) {
      const std::string s = v.str(), old = arg(a, 0, "old").str(), repl = arg(a, 1, "new").str();
      const Value count_v = arg(a, 2, "count", Value::none());
      int64_t count = count_v.is_none() ? -1 : count_v.as_int();
      if (old.empty()) {
        const std::u32string u = utf8_decode(s);
        std::string out;
        for (size_t i = 0; i <= u.size(); ++i) {
          if (count != 0) out += repl, --count;
          if (i < u.size()) out += utf8_encode(u.substr(i, 1));
        }
        return Value::string(out);
      }
      std::string out;
      size_t start = 0;
      for (size_t p = s.find(old); p != std::string::npos && count != 0;
           p = s.find(old, start), --count) {
        out += s.substr(start, p - start) + repl;
        start = p + old.size();
      }
      return Value::string(out + s.substr(start));
    };
    f["reverse"] = [](const Value& v, CallArgs&) {
      if (v.is_string()) {
        std::u32string u = utf8_decode(v.as_string());
        std::reverse(u.begin(), u.end());
        return Value::string(utf8_encode(u));
      }
      List l = python_iterate(v);
      std::reverse(l.begin(), l.end());
      return Value::list(std::move(l));
    };
    f["round"] = python_round;
    f["safe"] = [](const Value& v, CallArgs&) { return Value::string(v.str()); };
    f["sort"] = sorted;
    f["string"] = [](const Value& v, CallArgs&) { return Value::string(v.str()); };
    f["sum"] = [](const Value& v, CallArgs& a) {
      const Value attribute = arg(a, 0, "attribute", Value::none());
      Value total = arg(a, 1, "start", Value::integer(0));
      for (const Value& x : python_iterate(v))
        total = python_add(total, attribute.is_none() ? x : lookup_path(x, attribute));
      return total;
    };
    f["title"] = [](const Value& v, CallArgs&) {
      // jinja2's do_title: each word (split at -, whitespace, brackets) upper-cased first.
      const std::string s = v.str();
      std::string out;
      bool word_start = true;
      for (char c : s) {
        const bool boundary = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' ||
                              std::isspace(static_cast<unsigned char>(c));
        if (boundary) {
          out += c;
          word_start = true;
        } else {
          out += static_cast<char>(static_cast<unsigned char>(c) < 0x80
                                       ? (word_start ? std::toupper(c) : std::tolower(c))
                                       : c);
          word_start = false;
        }
      }
      return Value::string(out);
    };
    f["tojson"] = tojson;
    f["trim"] = [](const Value& v, CallArgs& a) {
      CallArgs sa;
      sa.args.push_back(arg(a, 0, "chars", Value::none()));
      return call_method(Value::string(v.str()), "strip", sa);
    };
    f["unique"] = [](const Value& v, CallArgs& a) {
      const bool cs = arg(a, 0, "case_sensitive", Value::boolean(false)).truthy();
      const Value attribute = arg(a, 1, "attribute", Value::none());
      List out, seen;
      for (const Value& x : python_iterate(v)) {
        const Value k = sort_key(attribute.is_none() ? x : lookup_path(x, attribute), cs);
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, k); })) {
          seen.push_back(k);
          out.push_back(x);
        }
      }
      return Value::list(std::move(out));
    };
    f["indent"] = indent;
    f["wordcount"] = [](const Value& v, CallArgs&) {
      int64_t n = 0;
      bool in_word = false;
      for (char32_t c : utf8_decode(v.str())) {
        const bool w =
            c == U'_' || (c < 0x80 ? std::isalnum(static_cast<int>(c)) != 0
                                   : !(c == 0xa0 || c == 0x3000 || (c >= 0x2000 && c <= 0x206f)));
        if (w && !in_word) ++n;
        in_word = w;
      }
      return Value::integer(n);
    };
    for (const char* name : {"max", "min"}) {
      const bool is_max = name[1] == 'a';
      f[name] = [is_max](const Value& v, CallArgs& a) {
        const bool cs = arg(a, 0, "case_sensitive", Value::boolean(false)).truthy();
        const Value attribute = arg(a, 1, "attribute", Value::none());
        const List l = python_iterate(v);
        if (l.empty())
          return Value::undefined(std::string("No aggregated item, sequence was empty."));
        size_t best = 0;
        for (size_t i = 1; i < l.size(); ++i) {
          auto key = [&](const Value& x) {
            return sort_key(attribute.is_none() ? x : lookup_path(x, attribute), cs);
          };
          const int c = compare(key(l[i]), key(l[best]), is_max ? ">" : "<");
          if (is_max ? c > 0 : c < 0) best = i;
        }
        return l[best];
      };
    }
    return f;
  }();
  return kFilters;
}

bool divisible(const Value& v, const Value& n) {
  if (!v.is_number() || !n.is_number()) fail("divisibleby needs numbers");
  if (n.as_float() == 0) fail("integer division or modulo by zero");
  return python_arith("%", v, n).as_float() == 0;
}

bool sameas(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  if (a.is_none()) return true;
  if (a.is_bool()) return a.as_bool() == b.as_bool();
  if (a.is_int()) return a.as_int() == b.as_int() && a.as_int() >= -5 && a.as_int() <= 256;
  if (a.is_namespace() || a.is_callable()) return equals(a, b);
  return false;
}

const std::map<std::string, Test, std::less<>>& tests() {
  static const std::map<std::string, Test, std::less<>> kTests = [] {
    std::map<std::string, Test, std::less<>> t;
    t["boolean"] = [](const Value& v, CallArgs&) { return v.is_bool(); };
    t["callable"] = [](const Value& v, CallArgs&) { return v.is_callable(); };
    t["defined"] = [](const Value& v, CallArgs&) { return !v.is_undefined(); };
    t["undefined"] = [](const Value& v, CallArgs&) { return v.is_undefined(); };
    t["divisibleby"] = [](const Value& v, CallArgs& a) { return divisible(v, arg(a, 0, "num")); };
    t["odd"] = [](const Value& v, CallArgs&) { return !divisible(v, Value::integer(2)); };
    t["even"] = [](const Value& v, CallArgs&) { return divisible(v, Value::integer(2)); };
    t["eq"] = t["equalto"] =
        t["=="] = [](const Value& v, CallArgs& a) { return equals(v, arg(a, 0, "other")); };
    t["ne"] = t["!="] = [](const Value& v, CallArgs& a) { return !equals(v, arg(a, 0, "other")); };
    t["lt"] = t["lessthan"] =
        t["<"] = [](const Value& v, CallArgs& a) { return compare(v, arg(a, 0, "other")) < 0; };
    t["le"] =
        t["<="] = [](const Value& v, CallArgs& a) { return compare(v, arg(a, 0, "other")) <= 0; };
    t["gt"] = t["greaterthan"] =
        t[">"] = [](const Value& v, CallArgs& a) { return compare(v, arg(a, 0, "other")) > 0; };
    t["ge"] =
        t[">="] = [](const Value& v, CallArgs& a) { return compare(v, arg(a, 0, "other")) >= 0; };
    t["false"] = [](const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); };
    t["true"] = [](const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); };
    t["float"] = [](const Value& v, CallArgs&) { return v.is_float(); };
    t["integer"] = [](const Value& v, CallArgs&) { return v.is_int(); };
    t["number"] = [](const Value& v, CallArgs&) { return v.is_number(); };
    t["in"] = [](const Value& v, CallArgs& a) { return python_contains(arg(a, 0, "seq"), v); };
    t["iterable"] = [](const Value& v, CallArgs&) {
      return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
    };
    // jinja2's Undefined has __len__ and __getitem__, so it passes as a sequence.
    t["sequence"] = [](const Value& v, CallArgs&) {
      return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
    };
    t["mapping"] = [](const Value& v, CallArgs&) { return v.is_dict(); };
    t["none"] = [](const Value& v, CallArgs&) { return v.is_none(); };
    t["string"] = [](const Value& v, CallArgs&) { return v.is_string(); };
    t["lower"] = [](const Value& v, CallArgs&) { return call_str_method(v, "islower").as_bool(); };
    t["upper"] = [](const Value& v, CallArgs&) { return call_str_method(v, "isupper").as_bool(); };
    t["sameas"] = [](const Value& v, CallArgs& a) { return sameas(v, arg(a, 0, "other")); };
    t["escaped"] = [](const Value&, CallArgs&) { return false; };
    t["filter"] = [](const Value& v, CallArgs&) {
      return v.is_string() && has_filter(v.as_string());
    };
    t["test"] = [](const Value& v, CallArgs&) { return v.is_string() && has_test(v.as_string()); };
    return t;
  }();
  return kTests;
}

}  // namespace

bool has_filter(std::string_view name) {
  return filters().find(name) != filters().end();
}
bool has_test(std::string_view name) {
  return tests().find(name) != tests().end();
}

Value apply_filter(const std::string& name, const Value& value, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail("No filter named '", name, "'.");
  return it->second(value, args);
}

bool apply_test(const std::string& name, const Value& value, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) fail("No test named '", name, "'.");
  return it->second(value, args);
}

}  // namespace llmkit::tokenizer::jinja
