// The CLI's subcommand registry. Each tools/llmkit/cmd_*.cpp defines one subcommand and registers
// it with a static LLMKIT_COMMAND(...) object, so main.cpp never lists them. A subcommand file
// stays small: parse flags -> build a config -> one library call -> print.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
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
