// Atomic writes: a commit replaces the target in one step, an abandoned writer leaves the old
// file and no temporary file behind, and failures name the path and the system's reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "llmkit/core/error.h"
#include "llmkit/io/atomic_file.h"
#include "tests/common/temp_dir.h"

namespace fs = std::filesystem;
using llmkit::Error;
using llmkit::io::AtomicFile;
using llmkit::io::write_file_atomic;

namespace {

using llmkit::testing::TempDir;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

TEST(AtomicFile, WriteCreatesThenReplaces) {
  TempDir d;
  const std::string p = (d.path / "a.txt").string();
  write_file_atomic(p, "one");
  EXPECT_EQ(slurp(p), "one");
  write_file_atomic(p, std::string("two\0bytes", 9));
  EXPECT_EQ(slurp(p), std::string("two\0bytes", 9));
  write_file_atomic(p, "");
  EXPECT_EQ(slurp(p), "");
  EXPECT_EQ(entries(d.path), 1u);  // no temporary file left
}

TEST(AtomicFile, StreamingPiecesAndTempName) {
  TempDir d;
  const std::string p = (d.path / "b.bin").string();
  AtomicFile f(p);
  EXPECT_EQ(f.temp_path(), p + ".tmp." + std::to_string(getpid()));
  EXPECT_TRUE(fs::exists(f.temp_path()));
  EXPECT_FALSE(fs::exists(p));  // nothing visible before commit
  std::string want;
  for (int i = 0; i < 1000; ++i) {
    const std::string piece = std::to_string(i) + ",";
    f.write(piece.data(), piece.size());
    want += piece;
  }
  f.write(nullptr, 0);
  f.commit();
  EXPECT_EQ(slurp(p), want);
  EXPECT_FALSE(fs::exists(f.temp_path()));
  EXPECT_THROW(f.commit(), Error);
  EXPECT_THROW(f.write("x", 1), Error);
}

// A reader holding the old file keeps reading the old bytes: the commit is a rename, not an
// overwrite in place.
TEST(AtomicFile, CommitReplacesAtomically) {
  TempDir d;
  const fs::path p = d.path / "c.txt";
  write_file_atomic(p.string(), "old contents");
  std::ifstream reader(p, std::ios::binary);
  write_file_atomic(p.string(), "new");
  std::ostringstream s;
  s << reader.rdbuf();
  EXPECT_EQ(s.str(), "old contents");
  EXPECT_EQ(slurp(p), "new");
}

TEST(AtomicFile, UncommittedWriterLeavesOldFile) {
  TempDir d;
  const std::string p = (d.path / "d.txt").string();
  write_file_atomic(p, "old");
  std::string tmp;
  {
    AtomicFile f(p);
    tmp = f.temp_path();
    f.write("new new new", 11);
    EXPECT_TRUE(fs::exists(tmp));
  }
  EXPECT_EQ(slurp(p), "old");
  EXPECT_FALSE(fs::exists(tmp));
  // The same when an exception unwinds through the writer.
  try {
    AtomicFile f(p);
    f.write("partial", 7);
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(slurp(p), "old");
  EXPECT_EQ(entries(d.path), 1u);
}

TEST(AtomicFile, MissingDirectoryIsAClearError) {
  TempDir d;
  const std::string p = (d.path / "no" / "such" / "dir" / "x.json").string();
  try {
    write_file_atomic(p, "{}");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_THROW(AtomicFile{p}, Error);
}

TEST(AtomicFile, TargetIsADirectory) {
  TempDir d;
  fs::create_directory(d.path / "sub");
  EXPECT_THROW(write_file_atomic((d.path / "sub").string(), "x"), Error);
  EXPECT_TRUE(fs::is_directory(d.path / "sub"));
  EXPECT_EQ(entries(d.path), 1u);  // the temporary file was removed after the failed rename
}
