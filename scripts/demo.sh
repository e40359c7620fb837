#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job: prompts split
# between two processes, each running the model on its share; the main process prints all.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
exec ./build/bin/accel-launch --num_processes 2 ./build/bin/distributed_inference "$@"
