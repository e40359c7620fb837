#!/usr/bin/env bash
# Builds the torch-free suites (core, launch, config, with the launcher and its test helpers)
# under AddressSanitizer + UndefinedBehaviorSanitizer into build-asan and runs them through
# ctest. Any report (memory error, leak, undefined behaviour) fails the test it happened in.
# scripts/test.sh runs this after the main suite; docs/testing.md says how to run it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-asan
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DACCEL_WITH_TORCH=OFF \
    -DACCEL_SANITIZE=address,undefined >/dev/null
fi
cmake --build "$build" -j "${JOBS:-2}"
# abort_on_error: a report kills the process with SIGABRT, so a child that the launcher tests
# start cannot pass off a report as an ordinary exit code.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --test-dir "$build" --output-on-failure -j "${JOBS:-2}" --timeout 600
