#!/usr/bin/env bash
# Builds tests/consumer against accel and runs it under accel-launch on 2 processes.
#   check.sh installed    <accel build dir> <work dir>   cmake --install, then find_package(accel);
#                                                        run under the installed accel-launch
#   check.sh subdirectory <accel source dir> <work dir> <accel-launch>
#                                                        add_subdirectory(accel), tests off
set -euo pipefail
mode=$1 accel=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
trap 'echo "FAIL: a step failed; the end of its log:" >&2; tail -n 25 "$(ls -t "$work"/*.log | head -n1)" >&2' ERR
# No build type: no optimisation and no debug info, the quickest build of torch code.
configure=(cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=)
command -v ccache >/dev/null && configure+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
case "$mode" in
  installed)
    cmake --install "$accel" --prefix "$work/prefix" >"$work/install.log"
    "${configure[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log"
    cmake --build "$work/build" -j1 >"$work/build.log"
    launcher="$work/prefix/bin/accel-launch"
    ;;
  subdirectory)
    "${configure[@]}" -DACCEL_SOURCE_DIR="$accel" -DACCEL_CONSUMER_LINKS=accel::runtime >"$work/configure.log"
    if grep -q "_tests" "$work/build/build.ninja"; then
      echo "FAIL: accel added with add_subdirectory() still builds its tests" >&2
      exit 1
    fi
    cmake --build "$work/build" -j1 --target squares >"$work/build.log"
    launcher=$4
    ;;
  *) echo "usage: $0 installed <accel build dir> <work dir> | subdirectory <accel source dir> <work dir> <accel-launch>" >&2; exit 2 ;;
esac
squares=$(find "$work/build" -name squares -type f -perm -u+x | head -n1)
output=$("$launcher" --num_processes 2 "$squares")
echo "$output"
expected="squares on 2 processes: 0 1 4 9 16 25 36"
if ! grep -qF "$expected" <<<"$output"; then
  echo "FAIL: expected a line '$expected'" >&2
  exit 1
fi
