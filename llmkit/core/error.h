// Errors. Bad user input and I/O raise llmkit::Error with a message that names the op, file,
// field or shapes involved; internal invariants use LLMKIT_CHECK, which is always on (also in
// Release) and raises the same type. The library never calls exit().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace llmkit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// Throws llmkit::Error whose message is the arguments streamed together.
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::concat(args...));
}

}  // namespace llmkit

// LLMKIT_CHECK(cond, "op: message ", value, ...): throws llmkit::Error when cond is false.
#define LLMKIT_CHECK(cond, ...)    \
  do {                             \
    if (!(cond)) [[unlikely]]      \
      ::llmkit::fail(__VA_ARGS__); \
  } while (0)
