// The CLI's subcommand registry. Each tools/llmkit/cmd_*.cpp defines one subcommand and registers
// it with a static LLMKIT_COMMAND(...) object, so main.cpp never lists them. A subcommand file
// stays small: parse flags -> build a config -> one library call -> print.
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace llmkit::cli {

struct Command {
  std::string name;
  std::string help;
  // Adds the subcommand's options to `sub` and returns the function that runs it once parsed.
  std::function<std::function<void()>(CLI::App& sub)> setup;
};

std::vector<Command>& registry();

// "a,b,,c" -> {"a", "b", "c"}: the list flags (--lora-targets, --freeze).
inline std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

// The lines of a text file ("-": stdin), each without its "\n" and a trailing "\r"; blank
// lines included. `what` names the file in the error ("embed: cannot open --file 'x'").
std::vector<std::string> read_lines(const std::string& path, const std::string& what);

// A finite number in [lo, hi] (an open end when `open_lo` / `open_hi`), with a short message
// ("must be > 0, got -3"): CLI11's PositiveNumber writes its upper bound, 1.8e308, in full.
inline CLI::Validator number_in(double lo, double hi, bool open_lo = false, bool open_hi = false) {
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        // strtod, not stod: stod throws on a denormal such as 4.9e-324, a valid tiny value.
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size()) return "'" + s + "' is not a number";
        const bool ok =
            std::isfinite(v) && (open_lo ? v > lo : v >= lo) && (open_hi ? v < hi : v <= hi);
        if (ok) return "";
        auto num = [](double x) {
          std::ostringstream o;
          o << x;
          return o.str();
        };
        std::string range;
        if (hi == HUGE_VAL)
          range = (open_lo ? "> " : ">= ") + num(lo);
        else
          range = std::string("in ") + (open_lo ? "(" : "[") + num(lo) + ", " + num(hi) +
                  (open_hi ? ")" : "]");
        return "must be a finite number " + range + ", got " + s;
      },
      "", "number_in");
}
inline CLI::Validator positive() {
  return number_in(0, HUGE_VAL, true);
}
inline CLI::Validator non_negative() {
  return number_in(0, HUGE_VAL);
}

struct Registrar {
  explicit Registrar(Command c) { registry().push_back(std::move(c)); }
};

}  // namespace llmkit::cli

#define LLMKIT_CONCAT_INNER(a, b) a##b
#define LLMKIT_CONCAT(a, b) LLMKIT_CONCAT_INNER(a, b)
// Usage: LLMKIT_COMMAND({"name", "help", setup});
#define LLMKIT_COMMAND(...)                                      \
  static ::llmkit::cli::Registrar LLMKIT_CONCAT(llmkit_command_, \
                                                __LINE__)(::llmkit::cli::Command __VA_ARGS__)
