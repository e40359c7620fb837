#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sys/wait.h>
#include <unistd.h>

#include "error_file.h"
#include "line_relay.h"
#include "status.h"
#include "support/terminal_screen.h"

using accel::launch::Console;
using accel::launch::LineRelay;
using accel::launch::RelayTargets;
using accel::test::terminal_screen;
using namespace std::chrono_literals;

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
  Console screen{console.fd()};
  LineRelay relay(RelayTargets{&screen, log.fd(), "[rank3]: ", 2});
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
  LineRelay filtered(RelayTargets{nullptr, log.fd(), "[rank1]: ", 0});
  filtered.feed("x\n", 2);
  CHECK(log.text() == "x\n");
  CHECK(filtered.tail().empty());
  Console screen{console.fd()};
  LineRelay quiet(RelayTargets{&screen, -1, "", 0});
  quiet.feed("a\nb\n", 4);
  CHECK(console.text() == "a\nb\n");
}

TEST_CASE("launch relay: a line of any length passes whole, however it is split") {
  Capture console, log;
  Console screen{console.fd()};
  LineRelay relay(RelayTargets{&screen, log.fd(), "[rank0]: ", 1});
  std::string line = "{\"data\": \"";
  line += std::string(200 * 1024, 'x');
  line += "\"}";
  const auto start = LineRelay::Clock::now();
  for (std::size_t at = 0; at < line.size(); at += 65536) {
    relay.feed(line.data() + at, std::min<std::size_t>(65536, line.size() - at), start);
  }
  relay.feed("\n", 1, start);
  CHECK(console.text() == "[rank0]: " + line + "\n");
  CHECK(log.text() == line + "\n");
  // The failure report keeps a bounded piece of it.
  REQUIRE(relay.tail().size() == 1);
  CHECK(relay.tail().front() == line.substr(0, LineRelay::kMaxTailLine) + "... (" +
                                    std::to_string(line.size() - LineRelay::kMaxTailLine) + " more bytes)");
}

TEST_CASE("launch relay: a prompt without newline is written after a short delay") {
  Capture console, log;
  Console screen{console.fd()};
  LineRelay relay(RelayTargets{&screen, log.fd(), "[rank0]: ", 0});
  const auto start = LineRelay::Clock::now();
  relay.feed("Name? ", 6, start);
  REQUIRE(relay.partial_due());
  CHECK(*relay.partial_due() == start + LineRelay::kPartialDelay);
  relay.flush_due(start + LineRelay::kPartialDelay - 1ms);
  CHECK(console.text().empty());
  relay.flush_due(start + LineRelay::kPartialDelay);
  CHECK(console.text() == "[rank0]: Name? ");
  CHECK_FALSE(relay.partial_due());
  // Redraws after it (off a terminal) show as the last one, once the line ends.
  relay.feed("10%\r20%\r", 8, start);
  relay.flush_due(start + LineRelay::kPartialDelay);
  relay.feed("done\n", 5, start);
  CHECK(console.text() == "[rank0]: Name? done\n");
  CHECK(log.text() == "Name? 10%\r20%\rdone\n");
}

TEST_CASE("launch relay: another rank's line after an unfinished one starts on a line of its own") {
  Capture console, log;
  Console screen{console.fd()};
  LineRelay first(RelayTargets{&screen, log.fd(), "[rank0]: ", 0});
  LineRelay second(RelayTargets{&screen, -1, "[rank1]: ", 0});
  const auto start = LineRelay::Clock::now();
  first.feed("step 1/2", 8, start);
  first.flush_due(start + LineRelay::kPartialDelay);
  second.feed("hello\n", 6, start);
  first.feed(" ok\n", 4, start);
  CHECK(console.text() == "[rank0]: step 1/2\n[rank1]: hello\n[rank0]:  ok\n");
  CHECK(log.text() == "step 1/2 ok\n");
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

TEST_CASE("launch relay: off a terminal a line redrawn with a carriage return shows once, as its last redraw, when finished") {
  Capture console, log;
  Console screen{console.fd()};
  LineRelay relay(RelayTargets{&screen, log.fd(), "[rank0]: ", 2});
  const auto start = LineRelay::Clock::now();
  relay.feed("\r 10%", 5, start);
  relay.feed("\r 20%", 5, start);
  CHECK_FALSE(relay.partial_due());  // nothing to wake up for: the bar waits for its end
  relay.flush_due(start + 1s);
  CHECK(console.text().empty());
  relay.feed("\r100%\n", 6, start + 2s);
  relay.feed("done\r\n", 6, start + 2s);  // "\r\n" line ends are lines too
  CHECK(console.text() == "[rank0]: 100%\n[rank0]: done\n");
  CHECK(log.text() == "\r 10%\r 20%\r100%\ndone\r\n");  // the log keeps every byte
}

TEST_CASE("launch relay: on a terminal a redrawn line is its rank's live row, prefix kept, replaced in place") {
  Capture console;
  Console screen{console.fd(), true};
  LineRelay relay(RelayTargets{&screen, -1, "[rank1]: ", 0});
  const auto start = LineRelay::Clock::now();
  relay.feed("\r 10%", 5, start);
  relay.flush_due(start + LineRelay::kPartialDelay);
  CHECK(terminal_screen(console.text()) == std::vector<std::string>{"[rank1]:  10%"});
  relay.feed("\r 20%\r 30%", 10, start + 1s);  // only the last redraw is drawn
  relay.flush_due(start + 2s);
  CHECK(console.text() == "[rank1]:  10%\n\x1b[1A\x1b[J[rank1]:  30%\n");
  relay.feed("\n", 1, start + 2s);
  CHECK(terminal_screen(console.text()) == std::vector<std::string>{"[rank1]:  30%"});
}

TEST_CASE("launch relay: stdout and stderr on one terminal: a line never lands on an unfinished bar") {
  Capture terminal;
  Console out{terminal.fd(), true};
  Console err{terminal.fd(), true};
  err.shares_screen_with = &out;
  LineRelay bar(RelayTargets{&err, -1, "[rank0]: ", 0});
  LineRelay lines(RelayTargets{&out, -1, "[rank0]: ", 0});
  const auto start = LineRelay::Clock::now();
  bar.feed("\r 50%", 5, start);
  bar.flush_due(start + 1s);
  lines.feed("loss 0.1\n", 9, start + 1s);
  CHECK(terminal_screen(terminal.text()) == std::vector<std::string>{"[rank0]: loss 0.1", "[rank0]:  50%"});
  bar.feed("\r 60%", 5, start + 2s);
  bar.flush_due(start + 3s);
  CHECK(terminal_screen(terminal.text()) == std::vector<std::string>{"[rank0]: loss 0.1", "[rank0]:  60%"});
}

TEST_CASE("launch relay: on a terminal the bars of several ranks keep one row each, finished lines above them") {
  Capture terminal;
  Console screen{terminal.fd(), true};
  auto relay = [&](int rank) {
    return std::make_unique<LineRelay>(RelayTargets{&screen, -1, "[rank" + std::to_string(rank) + "]: ", 0});
  };
  auto rank0 = relay(0), rank1 = relay(1), rank2 = relay(2);
  auto t = LineRelay::Clock::now();
  auto draw = [&](LineRelay& r, std::string_view bytes) {
    t += 1s;
    r.feed(bytes.data(), bytes.size(), t);
    r.flush_due(t + 1s);
  };
  draw(*rank0, "\r 10%");
  draw(*rank1, "\r 20%");
  draw(*rank2, "loading\n");
  draw(*rank0, "\r 30%");
  draw(*rank2, "a prompt> ");  // an unfinished line while bars are live is drawn as a row too
  CHECK(terminal_screen(terminal.text()) ==
        std::vector<std::string>{"[rank2]: loading", "[rank0]:  30%", "[rank1]:  20%", "[rank2]: a prompt> "});
  draw(*rank2, "\n");
  draw(*rank0, "\r100%\n");  // a finished bar leaves the live rows and stays above them
  draw(*rank1, "\r 90%");
  CHECK(terminal_screen(terminal.text()) ==
        std::vector<std::string>{"[rank2]: loading", "[rank2]: a prompt> ", "[rank0]: 100%", "[rank1]:  90%"});
  // A row never wraps, so that it can be redrawn: it is cut to the terminal's width (80 off a tty).
  draw(*rank2, "\r" + std::string(200, '#'));
  CHECK(terminal_screen(terminal.text()).back() == "[rank2]: " + std::string(79 - 9, '#'));
  // A relay that goes away (its worker's stream closed) takes its live row with it.
  rank1.reset();
  rank2.reset();
  CHECK(terminal_screen(terminal.text()) ==
        std::vector<std::string>{"[rank2]: loading", "[rank2]: a prompt> ", "[rank0]: 100%"});
}
