#pragma once
// Ranks as threads of one process, each with its own Gloo group over one shared in-memory store
// (c10d's own tests do the same): no fork, one link against Torch, fast.
#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "accel/runtime/group.h"

namespace accel::test {

// Runs fn(group) on `world` threads and returns each rank's exception (null when it returned).
// Every group is formed before any fn starts and torn down after every fn ended, so a rank that
// fails at once does not close connections its peers are still opening. A test that wants a
// rank to vanish, or its group to close when fn ends, resets or moves `group` itself.
// Catch2's assertions are not thread-safe: fn records, the test asserts afterwards.
std::vector<std::exception_ptr> run_ranks(int world, const std::function<void(runtime::GroupHandle&)>& fn,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(20));

// what() of the exception, "(no error)" for none.
std::string message_of(const std::exception_ptr& error);

}  // namespace accel::test
