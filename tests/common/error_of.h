// error_of(f): the message of the llmkit::Error that f() throws, or "(no error)", so a test can
// check that a failure names what it should (EXPECT_NE(error_of(...).find("shape"), npos)).
#pragma once

#include <string>

#include "llmkit/core/error.h"

namespace llmkit::testing {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace llmkit::testing
