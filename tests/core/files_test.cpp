#include <catch2/catch.hpp>
#include <dirent.h>
#include <sys/stat.h>
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

TEST_CASE("read_whole returns every byte and names the file it cannot read", "[core][files]") {
  accel::test::TempDir dir("files");
  const std::string binary("a\0b\nc\xff", 6);
  accel::files::replace_atomically(dir.path("data"), binary);
  CHECK(accel::files::read_whole(dir.path("data")) == binary);
  CHECK(accel::files::read_if_present(dir.path("data")) == binary);

  CHECK_THROWS_AS(accel::files::read_whole(dir.path("absent")), accel::FileError);
  CHECK_THROWS_WITH(accel::files::read_whole(dir.path("absent"), "cannot read the vocabulary"),
                    dir.path("absent") + ": cannot read the vocabulary: No such file or directory");
  CHECK_THROWS_WITH(accel::files::read_whole(dir.root()), dir.root() + ": cannot read: Is a directory");
  CHECK(accel::files::try_read_whole(dir.path("absent")).error == ENOENT);
  CHECK_FALSE(accel::files::read_if_present(dir.path("absent")));
  CHECK_FALSE(accel::files::read_if_present(dir.path("data/under-a-file")));
}

TEST_CASE("make_directories creates every missing parent and names the one that failed", "[core][files]") {
  accel::test::TempDir dir("files");
  accel::files::make_directories(dir.path("a/b/c"));
  accel::files::make_directories(dir.path("a/b/c/"));  // existing: nothing to do
  accel::files::replace_atomically(dir.path("a/b/c/f"), "x");
  CHECK(accel::files::read_whole(dir.path("a/b/c/f")) == "x");

  CHECK_THROWS_WITH(accel::files::make_directories(dir.path("a/b/c/f/g")),
                    dir.path("a/b/c/f") + ": cannot create the directory: Not a directory");
  CHECK_THROWS_WITH(accel::files::make_directories("/proc/accel-no-such-dir/logs"),
                    Catch::StartsWith("/proc/accel-no-such-dir: cannot create the directory: "));
}

TEST_CASE("a pending file is removed unless committed", "[core][files]") {
  accel::test::TempDir dir("files");
  std::string temporary;
  {
    accel::files::PendingFile file(dir.path("out"));
    file.write("half of it");
    temporary = file.path();
    CHECK(temporary.rfind(dir.path("out.tmp."), 0) == 0);
    CHECK(entries_in(dir.root()) == 1);
  }
  CHECK(entries_in(dir.root()) == 0);

  accel::files::PendingFile file(dir.path("out"));
  file.write(std::string(200000, 'z'));  // more than one write() may take
  file.commit_replacing();
  CHECK(accel::files::read_whole(dir.path("out")) == std::string(200000, 'z'));
  CHECK(entries_in(dir.root()) == 1);
}

TEST_CASE("replacing keeps the target's permissions, a new file follows the umask or the mode given", "[core][files]") {
  accel::test::TempDir dir("files");
  struct stat info {};
  const mode_t mask = ::umask(022);
  accel::files::replace_atomically(dir.path("new"), "1");
  REQUIRE(::stat(dir.path("new").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0644);
  ::umask(mask);

  ::chmod(dir.path("new").c_str(), 0600);
  accel::files::replace_atomically(dir.path("new"), "2");
  REQUIRE(::stat(dir.path("new").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0600);

  accel::files::PendingFile file(dir.path("exact"), 0640);
  file.write("3");
  REQUIRE(file.commit_if_absent());
  REQUIRE(::stat(dir.path("exact").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0640);
}

TEST_CASE("a no-clobber create leaves an existing target alone and names it", "[core][files]") {
  accel::test::TempDir dir("files");
  accel::files::create_new(dir.path("once"), "first");
  CHECK_THROWS_AS(accel::files::create_new(dir.path("once"), "second"), accel::FileError);
  CHECK_THROWS_WITH(accel::files::create_new(dir.path("once"), "second"),
                    dir.path("once") + ": already exists and was left unchanged");
  CHECK(accel::files::read_whole(dir.path("once")) == "first");

  accel::files::PendingFile file(dir.path("once"));
  file.write("third");
  CHECK_FALSE(file.commit_if_absent());
  CHECK(accel::files::read_whole(dir.path("once")) == "first");
  CHECK(entries_in(dir.root()) == 1);  // the temporary is gone too
}

TEST_CASE("a file in an unwritable directory is named with the reason", "[core][files]") {
  accel::test::TempDir dir("files");
  accel::files::make_directories(dir.path("locked"));
  ::chmod(dir.path("locked").c_str(), 0500);
  const std::string target = dir.path("locked/out");
  if (::geteuid() == 0) {
    WARN("running as root: permissions do not stop writing, the unwritable directory is not exercised");
  } else {
    CHECK_THROWS_WITH(accel::files::create_new(target, "x"),
                      Catch::StartsWith(target + ".tmp.") && Catch::EndsWith(": cannot create: Permission denied"));
  }
  // Unwritable for root as well: a directory of the proc file system.
  CHECK_THROWS_WITH(accel::files::replace_atomically("/proc/self/accel-out", "x"),
                    Catch::StartsWith("/proc/self/accel-out.tmp.") && Catch::Contains(": cannot create: "));
}
