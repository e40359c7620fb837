#include <catch2/catch.hpp>
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>

#include "accel/core/error.h"
#include "accel/core/files.h"

#include "support/temp_dir.h"

namespace {
using accel::test::slurp;

int entries_in(const std::string& directory) {
  int count = 0;
  DIR* dir = ::opendir(directory.c_str());
  while (const dirent* entry = ::readdir(dir)) count += entry->d_name[0] != '.';
  ::closedir(dir);
  return count;
}
}  // namespace

TEST_CASE("replace_atomically writes, replaces, and leaves no temporary behind", "[core][files]") {
  const accel::test::TempDir scratch("files-test");
  const std::string& dir = scratch.root();
  const std::string path = dir + "/out.txt";
  accel::files::replace_atomically(path, "first\n");
  CHECK(slurp(path) == "first\n");
  accel::files::replace_atomically(path, "second\n");
  CHECK(slurp(path) == "second\n");
  CHECK(entries_in(dir) == 1);

  // A destination that cannot be replaced (a non-empty directory) is named, and the old content
  // and the directory are left as they were.
  const std::string blocked = dir + "/blocked";
  REQUIRE(std::system(("mkdir -p '" + blocked + "/inner'").c_str()) == 0);
  CHECK_THROWS_AS(accel::files::replace_atomically(blocked, "x"), accel::FileError);
  CHECK_THROWS_WITH(accel::files::replace_atomically(blocked, "x"), Catch::StartsWith(blocked + ": cannot replace it with"));
  CHECK(entries_in(dir) == 2);
  CHECK_THROWS_WITH(accel::files::replace_atomically(dir + "/missing/out.txt", "x"),
                    Catch::Contains("missing/out.txt.tmp.") && Catch::Contains("cannot create"));
}
