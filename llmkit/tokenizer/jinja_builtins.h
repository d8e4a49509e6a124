// The built-ins of the chat-template Jinja subset: jinja2's filters and tests, Python's str /
// dict / list methods that templates call, and attribute/item/slice access with jinja2's
// sandboxed getattr/getitem semantics (a dict key is reachable as d.key and d['key']; a missing
// one is Undefined; anything on an Undefined is an error; mutating methods are refused as the
// ImmutableSandboxedEnvironment refuses them). Errors are llmkit::Error with jinja2's wording;
// the evaluator prefixes the template line. Not here: statements, scopes, macros.
#pragma once

#include <string>
#include <string_view>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/jinja_value.h"

namespace llmkit::tokenizer::jinja {

// An error whose message is final (raise_exception's "chat template: msg", or one that already
// names its line): the evaluator passes it on unchanged.
class TemplateError : public Error {
 public:
  using Error::Error;
};

bool has_filter(std::string_view name);
bool has_test(std::string_view name);

// value | name(args...)
Value apply_filter(const std::string& name, const Value& value, CallArgs& args);
// value is name(args...)
bool apply_test(const std::string& name, const Value& value, CallArgs& args);

// obj.name (jinja2's sandboxed getattr: Python attribute first, then obj['name']).
Value get_attr(const Value& obj, const std::string& name);
// obj[key] (jinja2's getitem: obj[key] first, then the attribute named key).
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] with Python's slice rules (null Values = omitted).
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// Whether obj.name(...) is a Python method call (str/dict/list methods) handled by call_method.
bool is_method(const Value& obj, const std::string& name);
Value call_method(const Value& obj, const std::string& name, CallArgs& args);

// Throws jinja2's UndefinedError for a use of `v` that needs a value.
[[noreturn]] void fail_undefined(const Value& v);

// Python semantics shared with the evaluator.
Value python_add(const Value& a, const Value& b);
Value python_arith(const std::string& op, const Value& a, const Value& b);  // - * / // % **
bool python_contains(const Value& container, const Value& item);            // item in container
List python_iterate(const Value& v);  // for x in v (dict: keys; str: characters)
int64_t python_len(const Value& v);

// Bounds on what a template may build or do, where Python would run out of memory or time (and
// jinja2 has no limit of its own), so that no template renders for more than about a second:
// a string or list of more than kMaxBuilt bytes or items, more than kMaxBuiltTotal bytes or
// items built by concatenation, repetition and join in one render, more than kMaxSteps loop
// iterations and macro calls in one render, and an integer beyond 64 bits (Python's are
// unbounded) are llmkit::Errors.
inline constexpr int64_t kMaxBuilt = int64_t{1} << 26;       // 64 Mi
inline constexpr int64_t kMaxBuiltTotal = int64_t{1} << 28;  // 256 Mi
inline constexpr int64_t kMaxSteps = 100'000;
void check_built(size_t size, const char* what);     // fails when size > kMaxBuilt
void count_built(size_t size, const char* what);     // check_built + the render's total
void reset_built();                                  // a new render: the total is 0
int64_t checked_int(char op, int64_t a, int64_t b);  // a op b for + - *, or an overflow error
int64_t checked_neg(int64_t a);
int64_t float_to_int(double d);  // Python's int(d) when it fits 64 bits, else an error
int64_t parse_int(const std::string& digits);  // an optional sign and decimal digits

// Argument `index` (positional) or `name` (keyword) of a call, or `fallback`.
Value arg(const CallArgs& args, size_t index, const char* name, Value fallback = Value());

}  // namespace llmkit::tokenizer::jinja
