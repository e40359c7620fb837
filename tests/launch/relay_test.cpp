#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

#include "error_file.h"
#include "line_relay.h"
#include "status.h"

using accel::launch::LineRelay;
using accel::launch::RelayTargets;

namespace {

// A temporary file standing in for the console or a log file.
struct Capture {
  FILE* file = std::tmpfile();
  ~Capture() { std::fclose(file); }
  int fd() const { return fileno(file); }
  std::string text() const {
    std::string out;
    std::rewind(file);
    for (int c; (c = std::fgetc(file)) != EOF;) out += static_cast<char>(c);
    return out;
  }
};

}  // namespace

TEST_CASE("launch relay: whole lines only, each prefixed on the console and plain in the log") {
  Capture console, log;
  LineRelay relay(RelayTargets{console.fd(), log.fd(), "[rank3]: ", 2});
  relay.feed("hel", 3);
  CHECK(console.text().empty());
  relay.feed("lo\nwor", 6);
  CHECK(console.text() == "[rank3]: hello\n");
  relay.feed("ld\nthree\nfou", 12);
  relay.finish();
  CHECK(console.text() == "[rank3]: hello\n[rank3]: world\n[rank3]: three\n[rank3]: fou\n");
  CHECK(log.text() == "hello\nworld\nthree\nfou\n");
  CHECK(std::vector<std::string>(relay.tail().begin(), relay.tail().end()) == std::vector<std::string>{"three", "fou"});
}

TEST_CASE("launch relay: a filtered rank reaches only its log, --quiet has no prefix") {
  Capture log, console;
  LineRelay filtered(RelayTargets{-1, log.fd(), "[rank1]: ", 0});
  filtered.feed("x\n", 2);
  CHECK(log.text() == "x\n");
  CHECK(filtered.tail().empty());
  LineRelay quiet(RelayTargets{console.fd(), -1, "", 0});
  quiet.feed("a\nb\n", 4);
  CHECK(console.text() == "a\nb\n");
}

TEST_CASE("launch relay: an endless line is cut at the limit so memory stays bounded") {
  Capture console;
  LineRelay relay(RelayTargets{console.fd(), -1, "", 0});
  const std::string chunk(LineRelay::kMaxLine, 'x');
  relay.feed(chunk.data(), chunk.size());
  relay.feed("y\n", 2);
  CHECK(console.text() == chunk + "\ny\n");
}

TEST_CASE("launch status: wait statuses in words and as exit codes") {
  CHECK(accel::launch::describe_wait_status(3 << 8) == "exited with status 3");
  CHECK(accel::launch::describe_wait_status(SIGKILL) == "killed by signal 9 (SIGKILL)");
  CHECK(accel::launch::describe_wait_status(SIGSEGV) == "killed by signal 11 (SIGSEGV)");
  CHECK(accel::launch::exit_code_of(3 << 8) == 3);
  CHECK(accel::launch::exit_code_of(SIGKILL) == 137);
  CHECK(accel::launch::exit_code_of(0) == 0);
}

TEST_CASE("launch error file: torch's JSON shapes, plain text, and no file") {
  char path[] = "/tmp/accel-error-XXXXXX";
  ::close(::mkstemp(path));
  const auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write(R"({"message": {"message": "RuntimeError: boom", "extraInfo": {"timestamp": "1"}}})");
  CHECK(accel::launch::read_error_file(path) == "RuntimeError: boom");
  write(R"({"message": "ValueError: bad"})");
  CHECK(accel::launch::read_error_file(path) == "ValueError: bad");
  write("not json at all\nsecond line");
  CHECK(accel::launch::read_error_file(path) == "not json at all");
  ::unlink(path);
  CHECK_FALSE(accel::launch::read_error_file(path));
}
