// The values of the Jinja subset that renders chat templates (jinja_*.h, chat_template.h): the
// JSON-like Python values a template sees (None, bool, int, float, str, list/tuple, dict) plus
// jinja2's Undefined, namespace() objects and callables (macros, globals). Strings are UTF-8;
// Python's code-point semantics (len, indexing, slicing) are kept by the helpers here. str() and
// repr() print exactly as Python does (True, None, ['a', 1], 1.0, 1e-05), and to_json prints as
// json.dumps does. Not here: sets, bytes, big integers (int is int64), non-string dict keys.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"

namespace llmkit::tokenizer::jinja {

class Value;
using List = std::vector<Value>;

// An insertion-ordered dict with string keys (Python dicts keep insertion order).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

// Arguments of a call: positional, then keyword (name=value) in source order.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kCallable
  };

  Value() = default;  // undefined
  static Value undefined(std::string hint = "");
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value list(List items, bool tuple = false);
  static Value dict(Dict d);
  static Value namespace_object(Dict d);
  static Value function(std::string name, std::function<Value(CallArgs&)> fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python's numbers.Number
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? int64_t{b_} : i_; }  // bool is an int
  double as_float() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(as_int()); }
  const std::string& as_string() const { return s_ ? *s_ : empty_string(); }
  // The containers; calling one of these on a value of another kind is an internal error.
  const List& as_list() const {
    LLMKIT_CHECK(list_, "chat template: internal error: ", type_name(), " used as a list");
    return *list_;
  }
  const Dict& as_dict() const {
    LLMKIT_CHECK(dict_, "chat template: internal error: ", type_name(), " used as a dict");
    return *dict_;
  }
  Dict& namespace_dict() const {  // namespace() objects are shared and mutable
    LLMKIT_CHECK(dict_, "chat template: internal error: ", type_name(), " used as a namespace");
    return *dict_;
  }
  const Callable& as_callable() const {
    LLMKIT_CHECK(fn_, "chat template: internal error: ", type_name(), " called");
    return *fn_;
  }
  // Why this value is undefined, as jinja2 words it ("'x' is undefined").
  const std::string& undefined_hint() const { return as_string(); }

  // How deeply lists, dicts and namespaces nest in this value (a scalar: 0). Printing, comparing
  // and destroying recurse, so a value nested deeper than kMaxNesting is refused when built.
  static constexpr int kMaxNesting = 256;
  int nesting() const { return nesting_; }
  // Whether a namespace or a callable is in this value: assigning one to a namespace attribute
  // could make a cycle (which shared_ptr leaks and printing follows forever), so it is refused.
  bool may_cycle() const { return may_cycle_; }

  bool truthy() const;
  std::string str() const;   // Python str(); undefined prints as ""
  std::string repr() const;  // Python repr()
  // Python's type name ('str', 'int', 'list', 'dict', 'NoneType', ...), used in error messages.
  std::string type_name() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool tuple_ = false;
  bool may_cycle_ = false;
  int nesting_ = 0;
  void set_nesting(const Value& child);
  int64_t i_ = 0;
  double f_ = 0;
  // The string, or the undefined hint; shared so that copying a Value (every lookup does) never
  // copies text.
  std::shared_ptr<const std::string> s_;
  static const std::string& empty_string();
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Callable> fn_;
};

// Python ==: numbers by value (True == 1), strings, lists and dicts element-wise; Undefined
// equals only Undefined.
bool equals(const Value& a, const Value& b);
// Python's <, as -1/0/1; numbers, strings (code-point order) and lists; others throw Error.
// `op` names the operator in the error.
int compare(const Value& a, const Value& b, const char* op = "<");

// Python's repr() of a float ("1.0", "0.1", "1e-05", "1e+16", "inf").
std::string float_repr(double f);
// Python's repr() of a string ('a', "it's", 'a\nb').
std::string string_repr(const std::string& s);

struct JsonOptions {
  std::optional<std::string> indent;  // json.dumps(indent=...): None, or the text of one level
  std::string item_separator = ", ";  // (", ", ": ") without indent, (",", ": ") with indent
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// json.dumps(value, ...) as Python prints it. Undefined and callables throw Error.
std::string to_json(const Value& v, const JsonOptions& options);

// nlohmann::json -> Value (objects keep nlohmann's key order).
Value from_json(const nlohmann::json& j, int depth = 0);  // deeper than kMaxNesting: Error

// UTF-8 <-> code points (Python str semantics). Invalid UTF-8 bytes become U+FFFD.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);

}  // namespace llmkit::tokenizer::jinja
