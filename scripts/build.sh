#!/usr/bin/env bash
# Configures and builds (Release by default) into ./build with two jobs (JOBS=N to change):
# every target, or only the targets named as arguments (scripts/build.sh accel-launch).
# ACCEL_BUILD_TESTS=OFF leaves the tests out of the configuration (no Catch2 needed).
# Which LibTorch: TORCH=debian (default) | pip (the torch of $PYTHON), or Torch_DIR=<archive>;
# see scripts/select-torch.sh. Switching LibTorch reconfigures from scratch (objects come back
# from ccache). Warnings in our own code are errors (WERROR=0 to relax while editing).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
mapfile -t torch_args < <(./scripts/select-torch.sh)
args=(-G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" -DACCEL_WERROR="$([ "${WERROR:-1}" = 0 ] && echo OFF || echo ON)"
      -DACCEL_BUILD_TESTS="${ACCEL_BUILD_TESTS:-ON}" "${torch_args[@]}")
# A cache made for another LibTorch keeps that one's library paths: start the cache afresh.
selection="TORCH=${TORCH:-debian} ${torch_args[*]}"
if [ -f "$build/CMakeCache.txt" ] && [ "$(cat "$build/.accel-torch-selection" 2>/dev/null)" != "$selection" ]; then
  echo "build: LibTorch choice changed to '$selection'; reconfiguring $build" >&2
  rm -f "$build/CMakeCache.txt"
fi
cmake -S . -B "$build" "${args[@]}" >/dev/null
echo "$selection" >"$build/.accel-torch-selection"
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$build" -j "${JOBS:-2}" "${targets[@]}"
