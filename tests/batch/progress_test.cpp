#include <catch2/catch.hpp>

#include <sstream>
#include <thread>
#include <vector>

#include "accel/batch/progress.h"

namespace {
using namespace accel::batch;

// A clock the test moves by hand.
struct FakeClock {
  double now = 1000;
  Clock clock() {
    return [this] { return now; };
  }
};
}  // namespace

TEST_CASE("progress lines give requests done of the total, tokens/s, elapsed time and ETA", "[batch][progress]") {
  FakeClock time;
  std::ostringstream out;
  Progress progress(100, 20, out, ProgressOptions{.interval_s = 5}, time.clock());
  CHECK(progress.line() == "progress: 20/100 requests (20%), 0.0 tokens/s, elapsed 0s, ETA unknown");
  time.now += 2;
  progress.add(4, 300);
  CHECK(out.str().empty());  // not due yet: one line every 5 s
  time.now += 3;
  progress.add(6, 200);  // 10 requests in 5 s, 70 left: 35 s
  CHECK(out.str() == "progress: 30/100 requests (30%), 100.0 tokens/s, elapsed 5s, ETA 35s\n");
  time.now += 1;
  progress.add(1, 10);
  CHECK(out.str().find('\n') == out.str().size() - 1);  // still one line
  time.now += 200;
  progress.add(69, 6990);
  progress.finish();  // the report just written is current: not repeated
  progress.finish();
  CHECK(out.str() ==
        "progress: 30/100 requests (30%), 100.0 tokens/s, elapsed 5s, ETA 35s\n"
        "progress: 100/100 requests (100%), 36.4 tokens/s, elapsed 3m26s, ETA 0s\n");
}

TEST_CASE("on a terminal progress is rewritten in place and ended by finish", "[batch][progress]") {
  FakeClock time;
  std::ostringstream out;
  Progress progress(10, 0, out, ProgressOptions{.in_place = true}, time.clock());
  time.now += 1;
  progress.add(1, 50);
  time.now += 0.1;
  progress.add(1, 50);  // within in_place_interval_s: not rewritten
  time.now += 0.1;
  progress.add(1, 50);
  progress.finish();
  CHECK(out.str() ==
        "\rprogress: 1/10 requests (10%), 50.0 tokens/s, elapsed 1s, ETA 9s\033[K"
        "\rprogress: 3/10 requests (30%), 125.0 tokens/s, elapsed 1s, ETA 3s\033[K\n");
}

TEST_CASE("progress counts every addition made from several threads", "[batch][progress]") {
  std::ostringstream out;
  Progress progress(4000, 0, out, ProgressOptions{.interval_s = 1e9});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) progress.add(1, 2);
    });
  for (auto& thread : threads) thread.join();
  CHECK_THAT(progress.line(), Catch::StartsWith("progress: 4000/4000 requests (100%), "));
  CHECK(out.str().empty());
  progress.finish();  // nothing was reported yet: the last report is written
  CHECK_THAT(out.str(), Catch::StartsWith("progress: 4000/4000 requests (100%), ") && Catch::EndsWith("ETA 0s\n"));
}

TEST_CASE("the per-rank summary line and durations", "[batch][progress]") {
  CHECK(summary_line(RankSummary{.rank = 1, .requests = 64, .tokens = 8123, .busy_s = 12.3, .idle_s = 0.4}) ==
        "rank 1: 64 requests, 8123 tokens, busy 12.30 s, idle 0.40 s (3.1% idle)");
  CHECK(summary_line(RankSummary{}) == "rank 0: 0 requests, 0 tokens, busy 0.00 s, idle 0.00 s (0.0% idle)");
  CHECK(format_duration(0.4) == "0s");
  CHECK(format_duration(59.6) == "1m00s");
  CHECK(format_duration(187) == "3m07s");
  CHECK(format_duration(3720) == "1h02m");
  CHECK(format_duration(-3) == "0s");
  CHECK_FALSE(is_terminal(-1));
}
