#!/usr/bin/env bash
# Builds tests/consumer against accel and runs it under accel-launch on 2 processes.
#   check.sh installed    <accel build dir> <work dir>   cmake --install, then find_package(accel);
#                                                        run under the installed accel-launch; also
#                                                        the installed GPT-2 vocabulary and pkg-config
#   check.sh subdirectory <accel source dir> <work dir> <accel-launch>
#                                                        add_subdirectory(accel), tests off
set -Eeuo pipefail
mode=$1 accel=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
trap 'echo "FAIL: a step failed; the end of its log:" >&2; tail -n 25 "$(ls -t "$work"/*.log | head -n1)" >&2' ERR
# No build type: no optimisation and no debug info, the quickest build of torch code.
configure=(cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=)
command -v ccache >/dev/null && configure+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Installed programs read the prefix's GPT-2 vocabulary, not the source tree's and without
# ACCEL_GPT2_VOCAB_DIR: the consumer's own program and accel's example job.
check_installed_data() {
  local prefix=$1 report
  report=$(env -u ACCEL_GPT2_VOCAB_DIR "$prefix/bin/vocabulary")
  echo "$report"
  if ! grep -qxF "vocabulary: $prefix/share/accel/gpt2" <<<"$report" || ! grep -qxF "Hello world: 15496 995" <<<"$report"; then
    echo "FAIL: the installed program should read $prefix/share/accel/gpt2 and encode 'Hello world' as 15496 995" >&2
    exit 1
  fi
  env -u ACCEL_GPT2_VOCAB_DIR "$prefix/bin/accel-launch" --num_processes 1 --cpu "$prefix/bin/distributed_inference" \
    --max_new_tokens 2 -o "$work/generated.jsonl" --overwrite >"$work/generate.log" 2>&1
  echo "installed distributed_inference: $(wc -l <"$work/generated.jsonl") completion(s)"
}
# The torch-free libraries through pkg-config alone: compile, link and run a small program.
check_pkg_config() {
  local prefix=$1 flags output
  flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs accel-config)
  # shellcheck disable=SC2086 # the flags are words
  c++ -o "$work/pkg_config" "$here/pkg_config.cpp" $flags >"$work/pkg-config.log" 2>&1
  output=$("$work/pkg_config")
  echo "pkg-config accel-config: $output"
  [ "$output" = "num_processes 3" ] || {
    echo "FAIL: the pkg-config program printed '$output'" >&2
    exit 1
  }
}

case "$mode" in
  installed)
    cmake --install "$accel" --prefix "$work/prefix" >"$work/install.log"
    "${configure[@]}" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log"
    cmake --build "$work/build" -j1 >"$work/build.log"
    cmake --install "$work/build" --prefix "$work/prefix" >>"$work/install.log"
    launcher="$work/prefix/bin/accel-launch"
    check_installed_data "$work/prefix"
    check_pkg_config "$work/prefix"
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
