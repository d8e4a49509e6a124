// Runs the `llmkit` command line as a real process for the CLI tests: argv in, exit status,
// signal, stdout and stderr out, with a wall-clock limit so that a hang fails the test instead of
// stalling ctest. ChildProcess keeps the pid so a test can send SIGKILL or SIGINT at a moment of
// its choosing (the kill -9 / Ctrl-C resume tests). POSIX only (fork/exec); output goes to files
// in a private temp directory, so a chatty child can never block on a full pipe.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/temp_dir.h"

namespace llmkit::testing {

struct ProcessResult {
  int exit_code = -1;      // exit status when the child exited normally, else -1
  int term_signal = 0;     // the signal that ended the child, else 0
  bool timed_out = false;  // the limit passed and the child was killed with SIGKILL
  std::string out, err;
};

// The llmkit binary under test: $LLMKIT_BIN (set by tests/CMakeLists.txt for test_cli).
inline std::string llmkit_binary() {
  const char* p = getenv("LLMKIT_BIN");
  if (!p || !*p) throw std::runtime_error("LLMKIT_BIN is not set (run through ctest)");
  return p;
}

class ChildProcess {
 public:
  // Starts argv[0] with the given arguments; stdin is fed from `input`.
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string& input = "") {
    if (argv.empty()) throw std::runtime_error("ChildProcess: empty argv");
    {
      std::ofstream f(dir_.file("stdin"), std::ios::binary);
      f << input;
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::string in = dir_.file("stdin"), out = dir_.file("stdout"), err = dir_.file("stderr");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + strerror(errno));
    if (pid_ == 0) {
      int fi = open(in.c_str(), O_RDONLY);
      int fo = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int fe = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fi < 0 || fo < 0 || fe < 0) _exit(126);
      dup2(fi, 0);
      dup2(fo, 1);
      dup2(fe, 2);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) { ::kill(pid_, sig); }
  // What the child has written to stdout so far (tests poll it to kill at a chosen moment).
  std::string stdout_so_far() const { return slurp(dir_.file("stdout")); }
  std::string stderr_so_far() const { return slurp(dir_.file("stderr")); }

  // Waits for the child to end, at most timeout_s seconds (then SIGKILL and timed_out).
  ProcessResult wait(double timeout_s = 120) {
    ProcessResult r;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    int status = 0;
    while (true) {
      pid_t w = waitpid(pid_, &status, WNOHANG);
      if (w == pid_) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        r.timed_out = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    reaped_ = true;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
    r.out = stdout_so_far();
    r.err = stderr_so_far();
    return r;
  }

 private:
  static std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  TempDir dir_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Runs `llmkit args...` to completion (or the limit) and returns what it did.
inline ProcessResult run_llmkit(const std::vector<std::string>& args, const std::string& input = "",
                                double timeout_s = 120) {
  std::vector<std::string> argv{llmkit_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv, input);
  return p.wait(timeout_s);
}

}  // namespace llmkit::testing
