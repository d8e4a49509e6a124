// Python object semantics for the Jinja subset (see jinja_builtins.h): attribute, item and slice
// access as jinja2's sandbox does them, the str/dict/list methods templates call, and the
// arithmetic, `in`, iteration and len() rules. Strings are handled as code points where Python
// would (indexing, slicing, len, strip sets); case mapping is ASCII-only.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "llmkit/tokenizer/jinja_builtins.h"

namespace llmkit::tokenizer::jinja {
namespace {

// jinja2's object_type_repr: "'dict object'", "None".
std::string type_repr(const Value& v) {
  if (v.is_none()) return "None";
  return llmkit::detail::concat("'", v.type_name(), " object'");
}

const std::set<std::string>& mutators() {
  static const std::set<std::string> kNames = {
      "append",  "extend", "insert",     "pop",     "remove",      "clear",      "sort",
      "reverse", "update", "setdefault", "popitem", "__setitem__", "__delitem__"};
  return kNames;
}

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
         c == 0x205f || c == 0x3000;
}

std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  const std::u32string u = utf8_decode(s);
  std::u32string set;
  const bool whitespace = chars.is_none() || chars.is_undefined();
  if (!whitespace) {
    if (!chars.is_string()) fail("strip arg must be None or str");
    set = utf8_decode(chars.as_string());
  }
  auto strippable = [&](char32_t c) {
    return whitespace ? is_python_space(c) : set.find(c) != std::u32string::npos;
  };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strippable(u[b])) ++b;
  if (right)
    while (e > b && strippable(u[e - 1])) --e;
  return utf8_encode(u.substr(b, e - b));
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(c));
  return s;
}

bool ascii_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Python's str.title() for ASCII letters.
std::string py_title(std::string s) {
  bool prev_cased = false;
  for (char& c : s) {
    if (ascii_alpha(c)) {
      c = static_cast<char>(prev_cased ? std::tolower(c) : std::toupper(c));
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return s;
}

List py_split(const std::string& s, const Value& sep, int64_t maxsplit) {
  List out;
  if (sep.is_none() || sep.is_undefined()) {
    const std::u32string u = utf8_decode(s);
    size_t i = 0;
    while (true) {
      while (i < u.size() && is_python_space(u[i])) ++i;
      if (i >= u.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        std::u32string rest = u.substr(i);
        while (!rest.empty() && is_python_space(rest.back())) rest.pop_back();
        out.push_back(Value::string(utf8_encode(rest)));
        break;
      }
      size_t j = i;
      while (j < u.size() && !is_python_space(u[j])) ++j;
      out.push_back(Value::string(utf8_encode(u.substr(i, j - i))));
      i = j;
    }
    return out;
  }
  if (!sep.is_string()) fail("must be str or None, not ", sep.type_name());
  const std::string& d = sep.as_string();
  if (d.empty()) fail("empty separator");
  size_t start = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    const size_t p = s.find(d, start);
    if (p == std::string::npos) break;
    out.push_back(Value::string(s.substr(start, p - start)));
    start = p + d.size();
  }
  out.push_back(Value::string(s.substr(start)));
  return out;
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string())
      fail(prefix ? "startswith" : "endswith", " first arg must be str or a tuple of str");
    const std::string& x = a.as_string();
    return prefix ? s.starts_with(x) : s.ends_with(x);
  };
  if (affix.is_list()) {
    for (const Value& a : affix.as_list())
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

// str.format with "{}", "{0}" and "{name}" fields and no format specs.
std::string py_format(const std::string& f, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == '{' && i + 1 < f.size() && f[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (f[i] == '}' && i + 1 < f.size() && f[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (f[i] == '{') {
      const size_t e = f.find('}', i);
      if (e == std::string::npos) fail("str.format: single '{' encountered in format string");
      const std::string field = f.substr(i + 1, e - i - 1);
      if (field.find_first_of(":!.[") != std::string::npos)
        fail("str.format: field '{", field, "}' is not supported (only {}, {0} and {name})");
      Value v;
      if (field.empty() || std::isdigit(static_cast<unsigned char>(field[0]))) {
        const size_t k = field.empty() ? auto_index++ : std::stoul(field);
        if (k >= args.args.size()) fail("str.format: replacement index ", k, " out of range");
        v = args.args[k];
      } else {
        bool found = false;
        for (const auto& [name, value] : args.kwargs)
          if (name == field) v = value, found = true;
        if (!found) fail("str.format: no argument named '", field, "'");
      }
      out += v.str();
      i = e;
    } else {
      out += f[i];
    }
  }
  return out;
}

Value string_method(const std::string& s, const std::string& name, CallArgs& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value::string(
        strip(s, arg(a, 0, "chars", Value::none()), name != "rstrip", name != "lstrip"));
  if (name == "upper") return Value::string(ascii_map(s, ::toupper));
  if (name == "lower") return Value::string(ascii_map(s, ::tolower));
  if (name == "title") return Value::string(py_title(s));
  if (name == "capitalize") {
    std::string r = ascii_map(s, ::tolower);
    if (!r.empty() && ascii_alpha(r[0])) r[0] = static_cast<char>(std::toupper(r[0]));
    return Value::string(r);
  }
  if (name == "split") {
    const Value max = arg(a, 1, "maxsplit", Value::integer(-1));
    return Value::list(py_split(s, arg(a, 0, "sep", Value::none()), max.as_int()));
  }
  if (name == "splitlines") {
    List out;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        out.push_back(Value::string(s.substr(start, i - start)));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) out.push_back(Value::string(s.substr(start)));
    return Value::list(std::move(out));
  }
  if (name == "startswith" || name == "endswith")
    return Value::boolean(affix_match(s, arg(a, 0, "prefix"), name == "startswith"));
  if (name == "replace") {
    const Value old_v = arg(a, 0, "old"), new_v = arg(a, 1, "new");
    if (!old_v.is_string() || !new_v.is_string()) fail("replace arguments must be str");
    return apply_filter("replace", Value::string(s), a);
  }
  if (name == "find" || name == "rfind" || name == "count" || name == "index") {
    const Value sub = arg(a, 0, "sub");
    if (!sub.is_string()) fail("must be str, not ", sub.type_name());
    const std::string& x = sub.as_string();
    if (name == "count") {
      if (x.empty()) return Value::integer(python_len(Value::string(s)) + 1);
      int64_t n = 0;
      for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
      return Value::integer(n);
    }
    const size_t p = name == "rfind" ? s.rfind(x) : s.find(x);
    if (p == std::string::npos) {
      if (name == "index") fail("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(utf8_decode(s.substr(0, p)).size()));
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value& v : python_iterate(arg(a, 0, "iterable"))) {
      if (!v.is_string()) fail("sequence item: expected str instance, ", v.type_name(), " found");
      out += (first ? "" : s) + v.as_string();
      first = false;
    }
    return Value::string(out);
  }
  if (name == "format") return Value::string(py_format(s, a));
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
      name == "islower" || name == "isupper") {
    if (s.empty()) return Value::boolean(false);
    bool all = true, cased = false;
    for (char c : s) {
      const int u = static_cast<unsigned char>(c);
      if (name == "isdigit") all = all && std::isdigit(u);
      if (name == "isalpha") all = all && std::isalpha(u);
      if (name == "isalnum") all = all && std::isalnum(u);
      if (name == "isspace") all = all && std::isspace(u);
      if (name == "islower") all = all && !std::isupper(u), cased = cased || std::islower(u);
      if (name == "isupper") all = all && !std::islower(u), cased = cased || std::isupper(u);
    }
    if (name == "islower" || name == "isupper") all = all && cased;
    return Value::boolean(all);
  }
  fail("'str' object has no attribute '", name, "'");
}

const std::set<std::string>& string_methods() {
  static const std::set<std::string> kNames = {
      "strip",      "lstrip",  "rstrip",     "upper",      "lower",    "title",
      "capitalize", "split",   "splitlines", "startswith", "endswith", "replace",
      "find",       "rfind",   "count",      "index",      "join",     "format",
      "isdigit",    "isalpha", "isalnum",    "isspace",    "islower",  "isupper"};
  return kNames;
}

int64_t normalise_index(int64_t i, int64_t n) {
  return i < 0 ? i + n : i;
}

}  // namespace

void fail_undefined(const Value& v) {
  throw Error(v.undefined_hint().empty() ? "undefined value" : v.undefined_hint());
}

bool is_method(const Value& obj, const std::string& name) {
  if (obj.is_string()) return string_methods().count(name) > 0;
  if (obj.is_dict())
    return name == "items" || name == "keys" || name == "values" || name == "get" ||
           mutators().count(name);
  if (obj.is_list()) return name == "index" || name == "count" || mutators().count(name);
  return false;
}

Value call_method(const Value& obj, const std::string& name, CallArgs& a) {
  if (mutators().count(name))
    fail("access to attribute '", name, "' of '", obj.type_name(), "' object is unsafe.");
  if (obj.is_string()) return string_method(obj.as_string(), name, a);
  if (obj.is_dict()) {
    const Dict& d = obj.as_dict();
    if (name == "get") {
      const Value key = arg(a, 0, "key");
      const Value* v = key.is_string() ? d.find(key.as_string()) : nullptr;
      return v ? *v : arg(a, 1, "default", Value::none());
    }
    List out;
    for (const auto& [k, v] : d.items) {
      if (name == "items") out.push_back(Value::list({Value::string(k), v}, true));
      if (name == "keys") out.push_back(Value::string(k));
      if (name == "values") out.push_back(v);
    }
    return Value::list(std::move(out));
  }
  if (obj.is_list()) {
    const Value x = arg(a, 0, "value");
    int64_t n = 0;
    const List& l = obj.as_list();
    for (size_t i = 0; i < l.size(); ++i) {
      if (!equals(l[i], x)) continue;
      if (name == "index") return Value::integer(static_cast<int64_t>(i));
      ++n;
    }
    if (name == "index") fail(x.repr(), " is not in list");
    return Value::integer(n);
  }
  fail("'", obj.type_name(), "' object has no attribute '", name, "'");
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_namespace()) {
    const Value* v = obj.namespace_dict().find(name);
    return v ? *v : Value::undefined("'Namespace object' has no attribute '" + name + "'");
  }
  if (is_method(obj, name)) {
    Value self = obj;
    return Value::function(name, [self, name](CallArgs& a) { return call_method(self, name, a); });
  }
  if (obj.is_dict())
    if (const Value* v = obj.as_dict().find(name)) return *v;
  return Value::undefined(type_repr(obj) + " has no attribute '" + name + "'");
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict() && key.is_string())
    if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    if (obj.is_list()) {
      const List& l = obj.as_list();
      const int64_t i = normalise_index(key.as_int(), static_cast<int64_t>(l.size()));
      if (i >= 0 && i < static_cast<int64_t>(l.size())) return l[i];
    } else {
      const std::u32string u = utf8_decode(obj.as_string());
      const int64_t i = normalise_index(key.as_int(), static_cast<int64_t>(u.size()));
      if (i >= 0 && i < static_cast<int64_t>(u.size()))
        return Value::string(utf8_encode(u.substr(i, 1)));
    }
  }
  if (key.is_string()) {
    if (obj.is_dict() && !is_method(obj, key.as_string()))
      return Value::undefined(type_repr(obj) + " has no attribute '" + key.as_string() + "'");
    return get_attr(obj, key.as_string());
  }
  return Value::undefined(type_repr(obj) + " has no element " + key.repr());
}

Value get_slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) fail_undefined(obj);
  auto given = [](const Value& v) { return !v.is_none() && !v.is_undefined(); };
  for (const Value* v : {&start_v, &stop_v, &step_v})
    if (given(*v) && !v->is_int() && !v->is_bool()) fail("slice indices must be integers or None");
  const int64_t step = given(step_v) ? step_v.as_int() : 1;
  if (step == 0) fail("slice step cannot be zero");
  const bool is_str = obj.is_string();
  if (!is_str && !obj.is_list()) fail("'", obj.type_name(), "' object is not subscriptable");
  const std::u32string u = is_str ? utf8_decode(obj.as_string()) : std::u32string();
  const int64_t n =
      is_str ? static_cast<int64_t>(u.size()) : static_cast<int64_t>(obj.as_list().size());
  auto clamp = [&](const Value& v, int64_t dflt) {
    if (!given(v)) return dflt;
    int64_t i = v.as_int();
    if (i < 0) i = std::max<int64_t>(i + n, step < 0 ? -1 : 0);
    return std::min<int64_t>(i, step < 0 ? n - 1 : n);
  };
  const int64_t start = clamp(start_v, step < 0 ? n - 1 : 0);
  const int64_t stop = clamp(stop_v, step < 0 ? -1 : n);
  std::u32string s;
  List l;
  for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
    if (is_str)
      s += u[i];
    else
      l.push_back(obj.as_list()[i]);
    if (__builtin_add_overflow(i, step, &i)) break;  // past the end
  }
  if (is_str) return Value::string(utf8_encode(s));
  return Value::list(std::move(l), obj.is_tuple());
}

namespace {
thread_local int64_t built_total = 0;  // of the render running on this thread
}  // namespace

void check_built(size_t size, const char* what) {
  if (size > static_cast<size_t>(kMaxBuilt))
    fail(what, " too large: ", size, " bytes or items (the limit is 64 Mi)");
}

void count_built(size_t size, const char* what) {
  check_built(size, what);
  built_total += static_cast<int64_t>(size);
  if (built_total > kMaxBuiltTotal)
    fail("the template built more than 256 Mi bytes or items of strings and lists (the limit)");
}

void reset_built() {
  built_total = 0;
}

int64_t checked_int(char op, int64_t a, int64_t b) {
  int64_t r = 0;
  const bool over = op == '+'   ? __builtin_add_overflow(a, b, &r)
                    : op == '-' ? __builtin_sub_overflow(a, b, &r)
                                : __builtin_mul_overflow(a, b, &r);
  if (over)
    fail("integer overflow: ", a, " ", op, " ", b, " does not fit 64 bits (this subset's integers ",
         "are 64-bit)");
  return r;
}

int64_t checked_neg(int64_t a) {
  return checked_int('-', 0, a);
}

int64_t float_to_int(double d) {
  if (std::isnan(d)) fail("cannot convert float NaN to integer");
  // [-2^63, 2^63): the doubles whose truncation fits int64_t.
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
    fail("cannot convert float ", d, " to a 64-bit integer");
  return static_cast<int64_t>(d);
}

int64_t parse_int(const std::string& digits) {
  int64_t r = 0;
  const char* b = digits.data() + (!digits.empty() && digits[0] == '+' ? 1 : 0);
  const char* e = digits.data() + digits.size();
  const auto [p, ec] = std::from_chars(b, e, r);
  if (ec != std::errc() || p != e) fail("integer ", digits, " does not fit 64 bits");
  return r;
}

Value python_add(const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_string() && b.is_string()) {
    count_built(a.as_string().size() + b.as_string().size(), "string");
    return Value::string(a.as_string() + b.as_string());
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    count_built(a.as_list().size() + b.as_list().size(), "list");
    List l = a.as_list();
    l.insert(l.end(), b.as_list().begin(), b.as_list().end());
    return Value::list(std::move(l), a.is_tuple());
  }
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value::number(a.as_float() + b.as_float());
    return Value::integer(checked_int('+', a.as_int(), b.as_int()));
  }
  if (a.is_string() || (a.is_list() && !a.is_tuple()))
    fail("can only concatenate ", a.type_name(), " (not \"", b.type_name(), "\") to ",
         a.type_name());
  fail("unsupported operand type(s) for +: '", a.type_name(), "' and '", b.type_name(), "'");
}

Value python_arith(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (op == "*" && ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool()))) {
    // A bound on what a template may build (Python would try, then raise MemoryError).
    const int64_t unit = a.is_string() ? static_cast<int64_t>(a.as_string().size())
                                       : static_cast<int64_t>(a.as_list().size());
    if (b.as_int() > 0 && unit > 0 && b.as_int() > (int64_t{1} << 26) / unit)
      fail("repetition too large: ", unit, " * ", b.as_int(), " items (the limit is 64 Mi)");
    if (b.as_int() > 0) count_built(static_cast<size_t>(unit * b.as_int()), "repetition");
    if (a.is_string()) {
      std::string out;
      for (int64_t i = 0; i < b.as_int(); ++i) out += a.as_string();
      return Value::string(out);
    }
    List out;
    for (int64_t i = 0; i < b.as_int(); ++i)
      out.insert(out.end(), a.as_list().begin(), a.as_list().end());
    return Value::list(std::move(out), a.is_tuple());
  }
  if (op == "*" && (b.is_string() || b.is_list()) && (a.is_int() || a.is_bool()))
    return python_arith(op, b, a);
  if (!a.is_number() || !b.is_number())
    fail("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(),
         "'");
  const bool fl = a.is_float() || b.is_float();
  if (op == "-")
    return fl ? Value::number(a.as_float() - b.as_float())
              : Value::integer(checked_int('-', a.as_int(), b.as_int()));
  if (op == "*")
    return fl ? Value::number(a.as_float() * b.as_float())
              : Value::integer(checked_int('*', a.as_int(), b.as_int()));
  if (op == "/") {
    if (b.as_float() == 0) fail("division by zero");
    return Value::number(a.as_float() / b.as_float());
  }
  if (op == "//" || op == "%") {
    if (b.as_float() == 0)
      fail(op == "//" ? "integer division or modulo by zero" : "modulo by zero");
    if (fl) {
      const double x = a.as_float(), y = b.as_float();
      const double m = std::fmod(x, y);
      const double mod = (m != 0 && ((m < 0) != (y < 0))) ? m + y : m;
      return op == "%" ? Value::number(mod) : Value::number(std::floor(x / y));
    }
    const int64_t x = a.as_int(), y = b.as_int();
    if (y == -1) return Value::integer(op == "//" ? checked_neg(x) : 0);  // INT64_MIN / -1
    int64_t q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) --q, r += y;
    return Value::integer(op == "//" ? q : r);
  }
  if (op == "**") {
    if (!fl && b.as_int() >= 0) {
      // |a| >= 2 overflows within 63 steps; 0, 1 and -1 need no loop.
      const int64_t x = a.as_int(), n = b.as_int();
      if (x == 0 || x == 1) return Value::integer(n == 0 ? 1 : x);
      if (x == -1) return Value::integer(n % 2 == 0 ? 1 : -1);
      int64_t r = 1;
      for (int64_t i = 0; i < n; ++i) r = checked_int('*', r, x);
      return Value::integer(r);
    }
    return Value::number(std::pow(a.as_float(), b.as_float()));
  }
  fail("unknown operator ", op);
}

bool python_contains(const Value& c, const Value& item) {
  if (c.is_string()) {
    if (!item.is_string())
      fail("'in <string>' requires string as left operand, not ", item.type_name());
    return c.as_string().find(item.as_string()) != std::string::npos;
  }
  if (c.is_dict()) return item.is_string() && c.as_dict().find(item.as_string()) != nullptr;
  if (c.is_list()) {
    for (const Value& v : c.as_list())
      if (equals(v, item)) return true;
    return false;
  }
  if (c.is_undefined()) return false;
  fail("argument of type '", c.type_name(), "' is not iterable");
}

List python_iterate(const Value& v) {
  if (v.is_list()) return v.as_list();
  if (v.is_undefined()) return {};
  List out;
  if (v.is_string()) {
    for (char32_t c : utf8_decode(v.as_string()))
      out.push_back(Value::string(utf8_encode(std::u32string(1, c))));
    return out;
  }
  if (v.is_dict()) {
    for (const auto& kv : v.as_dict().items) out.push_back(Value::string(kv.first));
    return out;
  }
  fail("'", v.type_name(), "' object is not iterable");
}

int64_t python_len(const Value& v) {
  if (v.is_string()) return static_cast<int64_t>(utf8_decode(v.as_string()).size());
  if (v.is_list()) return static_cast<int64_t>(v.as_list().size());
  if (v.is_dict()) return static_cast<int64_t>(v.as_dict().items.size());
  if (v.is_undefined()) return 0;
  fail("object of type '", v.type_name(), "' has no len()");
}

Value arg(const CallArgs& args, size_t index, const char* name, Value fallback) {
  if (index < args.args.size()) return args.args[index];
  for (const auto& [k, v] : args.kwargs)
    if (k == name) return v;
  return fallback;
}

}  // namespace llmkit::tokenizer::jinja
