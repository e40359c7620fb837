#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on the shipped batch file
# data/batch-example.jsonl: two processes pull its requests and decode them with continuous
# batching; the main process prints each result (and the error lines of the bad requests).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
# -o results.jsonl writes the OpenAI batch output; a rerun continues it (--overwrite starts afresh).
exec ./build/bin/accel-launch --num_processes 2 ./build/bin/distributed_inference -i data/batch-example.jsonl "$@"
