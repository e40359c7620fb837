#!/usr/bin/env bash
# README command 2: install what is missing, build, and run every test through ctest; then the
# torch-free suites under ASan + UBSan and a short run of each fuzz target (docs/testing.md).
# ACCEL_TEST_SANITIZERS=0 skips those two.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh all
ACCEL_BUILD_TESTS=ON ./scripts/build.sh
ctest --test-dir build --output-on-failure -j "${JOBS:-2}" --timeout 300
if [ "${ACCEL_TEST_SANITIZERS:-1}" != 0 ]; then
  ./scripts/sanitize.sh
  ./scripts/fuzz.sh 20
fi
