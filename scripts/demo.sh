#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job: prompts split
# between two processes, each running the model on its share; the main process prints all.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the main job needs: the test peers and the tests come with scripts/test.sh.
./scripts/install-deps.sh main
ACCEL_BUILD_TESTS=OFF ./scripts/build.sh accel-launch distributed_inference
exec ./build/bin/accel-launch --num_processes 2 ./build/bin/distributed_inference "$@"
