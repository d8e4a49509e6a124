// llmkit: the command-line entry point. Parses the subcommand and runs it; every error ends as one
// line on stderr and exit status 1 (2 for a usage error).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>

#include "llmkit/core/error.h"
#include "tools/llmkit/command.h"

namespace llmkit::cli {
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

std::vector<std::string> read_lines(const std::string& path, const std::string& what) {
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    LLMKIT_CHECK(file.good(), what, ": cannot open '", path, "'");
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}
}  // namespace llmkit::cli

int main(int argc, char** argv) {
  using namespace llmkit::cli;
  CLI::App app{"llmkit: how large language models work, as a C++ toolkit", "llmkit"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "llmkit 0.1.0");
  auto& commands = registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  std::function<void()> run;
  for (auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    auto fn = c.setup(*sub);
    sub->callback([&run, fn] { run = fn; });
  }
  // CLI11 reports an unknown subcommand as "A subcommand is required"; name it instead.
  if (argc > 1 && argv[1][0] != '-' &&
      std::none_of(commands.begin(), commands.end(),
                   [&](const Command& c) { return c.name == argv[1]; })) {
    std::string names;
    for (const auto& c : commands) names += (names.empty() ? "" : ", ") + c.name;
    std::fprintf(stderr, "llmkit: error: unknown subcommand '%s' (one of: %s)\n", argv[1],
                 names.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // CLI11 prints two lines by default; our contract is one line and exit status 2.
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    std::fprintf(stderr, "llmkit: error: %s (see --help)\n", msg.c_str());
    return 2;
  }
  try {
    if (run) run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmkit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
