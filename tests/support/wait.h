#pragma once
// Waiting for something a test can observe (a file, a line of output, a process gone) rather
// than sleeping for a guessed time.
#include <chrono>
#include <functional>

namespace accel::test {

// Checks `condition` until it holds and returns true; false once `limit` has passed without it.
// It polls every few milliseconds because what it watches (another process, a file) cannot
// signal this one. The limit bounds a hung test and is generous for a loaded machine: it is
// never the expected duration.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit = std::chrono::seconds(20));

}  // namespace accel::test
