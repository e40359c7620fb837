#pragma once
// A scratch directory per test and whole-file reads: the one way the test suites do both.
#include <string>

namespace accel::test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end, even
// subdirectories a test made read-only.
class TempDir {
 public:
  // `purpose` names the directory (accel-<purpose>-XXXXXX) so a leftover says which test made it.
  explicit TempDir(const std::string& purpose = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& root() const { return root_; }
  // root()/name; `name` may hold slashes.
  std::string path(const std::string& name) const { return root_ + "/" + name; }
  // Writes `contents` to path(name), creating the directories on the way; returns the path.
  std::string write(const std::string& name, const std::string& contents) const;

 private:
  std::string root_;
};

// The whole content of `path`; empty when it cannot be read.
std::string slurp(const std::string& path);

}  // namespace accel::test
